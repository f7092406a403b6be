"""Batched mask pasting that gives exactly the masks of the one-box-at-a-time paste (`paste_mask_in_image`).

The geometry (grown, truncated boxes; their clipping to the image) is computed for all detections at once
with the same float32 operations as the one-box version. The bilinear resize itself stays torch's
`F.interpolate`: its float32 results depend on how the compiled kernel was built (which products it
fuses into FMAs, and it has two kernels chosen by output size), so a re-implementation could not
promise the same bits on every build. Detections whose resized masks have the same size share one
call (the kernel computes each batch element alone, so batching does not change a bit), and no
image-sized canvas is made per detection: `pasted_crops` returns each mask's part inside the image,
which is all that run-length encoding needs (evaluation/coco/rle.py).

Box convention: `boxes` are xyxy in image pixels (docs/CONVENTIONS.md#mask-pasting); `masks` are
[N, M, M] probabilities.
"""

from typing import Iterator, List, NamedTuple, Tuple

import numpy as np
import torch
from torch.nn import functional as F

from .inference import expand_boxes, expand_masks


def grown_boxes(boxes: torch.Tensor, mask_size: int, padding: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """([N, 4] int64 grown boxes (bx1, by1, bx2, by2), inclusive; [N] bool: finite) of [N, 4] xyxy boxes.

    As `paste_mask_in_image`: the box grows by (M + 2 * padding) / M around its centre in float32 and
    is truncated toward zero; a box with a non-finite coordinate pastes nothing."""
    scale = float(mask_size + 2 * padding) / mask_size
    expanded = expand_boxes(boxes.float(), scale)
    finite = torch.isfinite(expanded).all(dim=1)
    # int() of a float32 truncates toward zero, as does the cast; the clamp only keeps huge values defined
    limit = float(2**40)
    grown = torch.where(finite[:, None], expanded, 0.0).clamp(-limit, limit).to(torch.int64)
    return grown, finite


def pasted_regions(
    grown: torch.Tensor, finite: torch.Tensor, im_h: int, im_w: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """([N, 4] (x0, y0, x1, y1) parts of the grown boxes inside the image, end-exclusive; [N] bool: not empty)."""
    regions = torch.stack(
        [
            grown[:, 0].clamp(min=0),
            grown[:, 1].clamp(min=0),
            (grown[:, 2] + 1).clamp(max=im_w),
            (grown[:, 3] + 1).clamp(max=im_h),
        ],
        dim=1,
    )
    inside = finite & (regions[:, 2] > regions[:, 0]) & (regions[:, 3] > regions[:, 1])
    return regions, inside


class PasteLayout(NamedTuple):
    """Where the masks of the detections that paste something land, sorted by resized size (int64 numpy).

    index: [K] their detection indices; sizes: [K, 2] resized (h, w); regions: [K, 4] (x0, y0, x1, y1)
    in the image, end-exclusive; offsets: [K, 2] (ox, oy) of the region's corner inside the resized
    mask; groups: [start, end) of each run of one size. Detection index[k]'s pasted mask is
    `resized[oy : oy + y1 - y0, ox : ox + x1 - x0] > thresh` at `[y0:y1, x0:x1]`, 0 elsewhere."""

    index: np.ndarray
    sizes: np.ndarray
    regions: np.ndarray
    offsets: np.ndarray
    groups: List[Tuple[int, int]]


def paste_layout(boxes: torch.Tensor, mask_size: int, im_h: int, im_w: int, padding: int = 1) -> PasteLayout:
    """The PasteLayout of [N, 4] xyxy boxes for M x M masks in an im_h x im_w image."""
    grown, finite = grown_boxes(boxes.detach().cpu(), mask_size, padding)
    regions, inside = pasted_regions(grown, finite, im_h, im_w)
    keep = torch.nonzero(inside).flatten()
    grown = grown[keep]
    sizes = torch.stack([grown[:, 3] - grown[:, 1] + 1, grown[:, 2] - grown[:, 0] + 1], dim=1).clamp(min=1)
    # Sorted by size (stable), each size is one slice and one F.interpolate call.
    order = torch.argsort(sizes[:, 0] * (2**32) + sizes[:, 1], stable=True)
    keep, grown, sizes = keep[order].numpy(), grown[order].numpy(), sizes[order].numpy()
    regions = regions.numpy()[keep]
    new = np.ones(len(keep), dtype=bool)
    new[1:] = (sizes[1:] != sizes[:-1]).any(axis=1)
    starts = np.flatnonzero(new).tolist() + [len(keep)]
    return PasteLayout(keep, sizes, regions, regions[:, :2] - grown[:, :2], list(zip(starts[:-1], starts[1:])))


def resized_groups(
    masks: torch.Tensor, layout: PasteLayout, padding: int = 1
) -> Iterator[Tuple[int, int, torch.Tensor]]:
    """(start, end, [end - start, h, w] float32 resized padded masks) of each group of the layout: the
    masks of detections layout.index[start:end], resized by F.interpolate as paste_mask_in_image does."""
    if len(layout.index) == 0:
        return
    padded, _ = expand_masks(masks.detach()[torch.from_numpy(layout.index).to(masks.device)][:, None].float(), padding)
    for a, b in layout.groups:
        h, w = layout.sizes[a].tolist()
        yield a, b, F.interpolate(padded[a:b], size=(h, w), mode="bilinear", align_corners=False)[:, 0]


def _to_output(resized: torch.Tensor, thresh: float) -> torch.Tensor:
    if thresh >= 0:
        return resized > thresh  # NaN compares False
    return (torch.nan_to_num(resized, nan=0.0) * 255).to(torch.uint8)


def pasted_crops(
    masks: torch.Tensor, boxes: torch.Tensor, im_h: int, im_w: int, thresh: float = 0.5, padding: int = 1
) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """The part inside the image of each pasted mask, without image-sized canvases.

    Returns ([N, 4] int64 regions (x0, y0, x1, y1), end-exclusive, all 0 where nothing lands inside
    the image, and N crops of shape [y1 - y0, x1 - x0], bool (thresh >= 0) or uint8) such that
    `paste_mask_in_image(masks[k], boxes[k], ...)` is zero except `[y0:y1, x0:x1] == crops[k]`."""
    n = masks.shape[0]
    dtype = torch.bool if thresh >= 0 else torch.uint8
    layout = paste_layout(boxes, masks.shape[-1], im_h, im_w, padding)
    regions = torch.zeros((n, 4), dtype=torch.int64)
    regions[torch.from_numpy(layout.index)] = torch.from_numpy(layout.regions)
    crops: List[torch.Tensor] = [torch.zeros((0, 0), dtype=dtype, device=masks.device)] * n
    rows = np.concatenate([layout.index[:, None], layout.regions, layout.offsets], axis=1).tolist()
    for a, b, resized in resized_groups(masks, layout, padding):
        out = _to_output(resized, thresh)
        for j, (k, x0, y0, x1, y1, ox, oy) in enumerate(rows[a:b]):
            crops[k] = out[j, oy : oy + y1 - y0, ox : ox + x1 - x0]
    return regions, crops


def paste_masks_exact(
    masks: torch.Tensor, boxes: torch.Tensor, im_h: int, im_w: int, thresh: float = 0.5, padding: int = 1
) -> torch.Tensor:
    """[N, M, M] masks and [N, 4] xyxy boxes -> [N, im_h, im_w], equal to stacking `paste_mask_in_image`
    of each detection (bool for thresh >= 0, else uint8 probabilities 0..255)."""
    dtype = torch.bool if thresh >= 0 else torch.uint8
    out = torch.zeros((masks.shape[0], im_h, im_w), dtype=dtype, device=masks.device)
    regions, crops = pasted_crops(masks, boxes, im_h, im_w, thresh, padding)
    for k, (x0, y0, x1, y1) in enumerate(regions.tolist()):
        if x1 > x0 and y1 > y0:
            out[k, y0:y1, x0:x1] = crops[k]
    return out
