"""Small tensor helpers shared by the model pieces.

Host synchronisation: on a GPU, every read of a device value on the host (`.item()`, `.tolist()`,
`bool(tensor)`, boolean-mask indexing, `torch.nonzero`) waits for all queued kernels and stalls the
device. The training and inference paths therefore read values on the host only where a shape
depends on the data, and do it through `host_values`, which also marks the read for profilers
(benchmarks/syncs.py counts these marks, which a CPU profile would otherwise not show).
"""

from typing import List, Sequence

import torch

HOST_READ = "maskrcnn_benchmark::host_read"


def cat(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """torch.cat that returns a single tensor as is (no copy)."""
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(list(tensors), dim)


def host_values(tensor: torch.Tensor) -> list:
    """`tensor.tolist()`: one device->host synchronisation, marked for profilers as HOST_READ."""
    with torch.profiler.record_function(HOST_READ):
        return tensor.tolist()


def nonzero_per_segment(masks: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """The indices of the True entries of each 1-D bool mask (ascending, int64, as torch.nonzero),
    with one host synchronisation for all the masks together (their counts)."""
    if not masks:
        return []
    counts = host_values(torch.stack([m.sum() for m in masks]))
    return [torch.nonzero_static(m, size=c).squeeze(1) for m, c in zip(masks, counts)]


def nonzero_per_image(selected: torch.Tensor, image: torch.Tensor, num_images: int) -> List[torch.Tensor]:
    """Positions of the True entries of `selected` [M], cut per image by `image` [M] (ascending
    image indices), with one host read (the counts per image)."""
    counts = torch.zeros(num_images, dtype=torch.int64, device=selected.device)
    counts = host_values(counts.scatter_add_(0, image, selected.long()))
    return list(torch.nonzero_static(selected, size=sum(counts)).squeeze(1).split(counts))


def order_by_group_then_score(scores: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """[M] permutation sorting by ascending group, then descending score (ties: lower index first)."""
    by_score = scores.argsort(descending=True, stable=True)
    return by_score[groups[by_score].argsort(stable=True)]


def rank_within_sorted_groups(groups: torch.Tensor) -> torch.Tensor:
    """[M] position of each element within its run of equal values; `groups` sorted ascending."""
    return torch.arange(len(groups), device=groups.device) - torch.searchsorted(groups, groups)


def within_detection_limit(scores: torch.Tensor, image: torch.Tensor, num_images: int, limit: int) -> torch.Tensor:
    """[M] bool: in an image (`image` [M]) with more than `limit` detections, those scoring >= its
    limit-th best score (ties keep a few more); every detection otherwise (and for limit <= 0)."""
    if limit <= 0 or len(scores) == 0:
        return torch.ones_like(scores, dtype=torch.bool)
    order = order_by_group_then_score(scores, image)
    sorted_scores, sorted_image = scores[order], image[order]
    images = torch.arange(num_images, device=scores.device)
    start = torch.searchsorted(sorted_image, images)
    count = torch.searchsorted(sorted_image, images, right=True) - start
    kth_best = sorted_scores[(start + limit - 1).clamp(max=len(scores) - 1)]
    threshold = torch.where(count > limit, kth_best, float("-inf"))
    return scores >= threshold[image]
