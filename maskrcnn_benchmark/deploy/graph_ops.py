"""Tensor-only pieces of the exported inference graph (deploy/graph.py).

Each function computes what an eager post-processor computes (same operations in the same order,
so the same float results), but on flat tensors with an image index instead of lists of BoxLists,
without host reads: sizes that depend on the data (how many boxes pass a threshold or NMS) stay
inside the graph as unbacked sizes. Only ops that torch.export, AOTInductor and the ONNX exporter all
handle are used (no searchsorted, no cummax, no Python branch on a data-dependent value).

Box convention: (x1, y1, x2, y2) in network-input pixels, inclusive (the +1 rule of
docs/CONVENTIONS.md#inclusive-pixels); `image` tensors hold each row's image index in the batch.
"""

from typing import Sequence, Tuple

import torch
from torch import Tensor

from ..modeling.box_coder import BoxCoder
from ..modeling.poolers import Pooler
from ..modeling.rpn.utils import permute_and_flatten
from ..structures.boxlist_ops import boxes_large_enough

_ops = torch.ops.maskrcnn_benchmark

# Upper bound declared for every data-dependent row count. Without one, torch.export bounds such a
# count by int64's maximum, and the count of a nonzero() over [count, C] by C times that, which
# AOTInductor cannot write as a C++ integer literal. 2**31 - 1 rows is far above any real count.
MAX_ROWS = 2**31 - 1


def nonzero(mask: Tensor) -> Tensor:
    """torch.nonzero(mask) [n, mask.dim()] with n declared <= MAX_ROWS (see MAX_ROWS)."""
    idx = torch.nonzero(mask)
    torch._check(idx.shape[0] <= MAX_ROWS)
    return idx


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float) -> Tensor:
    """The library's batched_nms op (docs/CONVENTIONS.md#nms), with its kept count declared <= its input's."""
    keep = _ops.batched_nms(boxes, scores, groups, float(iou_threshold))
    torch._check(keep.shape[0] <= boxes.shape[0])
    torch._check(keep.shape[0] <= MAX_ROWS)
    return keep


def image_upper_bounds(image_sizes: Tensor, image: Tensor, dtype: torch.dtype) -> Tensor:
    """[M, 4] clip bounds (w - 1, h - 1, w - 1, h - 1) of the image of each row; image_sizes [B, 2] (h, w)."""
    h = image_sizes[:, 0].to(dtype) - 1
    w = image_sizes[:, 1].to(dtype) - 1
    return torch.stack((w, h, w, h), dim=1)[image]


def clip(boxes: Tensor, upper: Tensor) -> Tensor:
    """Boxes [..., 4] clamped to [0, upper] as BoxList.clip_to_image does (NaN stays NaN)."""
    return torch.minimum(boxes.clamp(min=0), upper)


def group_starts(groups: Tensor, num_groups: int) -> Tuple[Tensor, Tensor]:
    """[G] position of the first element of each group in `groups` [M] (sorted ascending), and the
    counts per group, as (starts, counts)."""
    counts = torch.zeros(num_groups, dtype=torch.int64, device=groups.device)
    counts = counts.scatter_add(0, groups, torch.ones_like(groups))
    return torch.cumsum(counts, 0) - counts, counts


def rank_within_sorted_groups(groups: Tensor, num_groups: int) -> Tensor:
    """[M] position of each element within its run of equal values of `groups` (sorted ascending,
    values in [0, num_groups)): modeling.utils.rank_within_sorted_groups without searchsorted."""
    starts, _ = group_starts(groups, num_groups)
    return torch.arange(groups.shape[0], device=groups.device) - starts[groups]


def order_by_group_then_score(scores: Tensor, groups: Tensor) -> Tensor:
    """[M] permutation: ascending group, then descending score, ties by lower index (two stable sorts)."""
    by_score = torch.sort(scores, descending=True, stable=True).indices
    return by_score[torch.sort(groups[by_score], stable=True).indices]


def within_detection_limit(scores: Tensor, image: Tensor, num_images: int, limit: int) -> Tensor:
    """[M] bool: modeling.utils.within_detection_limit (in an image with more than `limit` detections,
    those scoring >= its limit-th best score) without searchsorted and without a branch on M == 0."""
    if limit <= 0:
        return torch.ones_like(scores, dtype=torch.bool)
    order = order_by_group_then_score(scores, image)
    # One -inf past the end keeps the gather below in range when M == 0 (the value is then unused).
    sorted_scores = torch.cat((scores[order], scores.new_full((1,), float("-inf"))))
    start, count = group_starts(image[order], num_images)
    kth_best = sorted_scores[(start + limit - 1).clamp(max=scores.shape[0])]
    threshold = torch.where(count > limit, kth_best, float("-inf"))
    return scores >= threshold[image]


def top_candidates(
    anchors: Tensor, objectness: Tensor, box_regression: Tensor, pre_nms_top_n: int, box_coder: BoxCoder
) -> Tuple[Tensor, Tensor]:
    """One RPN level (RPNPostProcessor.top_candidates): anchors [H*W*A, 4] shared by the images,
    objectness [B, A, H, W], box_regression [B, A*4, H, W] -> the top boxes [B, k, 4] (decoded, not
    clipped) and their sigmoid scores [B, k], best first, k = min(pre_nms_top_n, A*H*W)."""
    n, a, h, w = objectness.shape
    objectness = permute_and_flatten(objectness, n, a, 1, h, w).view(n, -1).float().sigmoid()
    objectness = objectness.masked_fill(torch.isnan(objectness), float("-inf"))  # NaN ranks last
    box_regression = permute_and_flatten(box_regression, n, a, 4, h, w).float()
    k = torch.sym_min(pre_nms_top_n, a * h * w)
    objectness, topk_idx = objectness.topk(k, dim=1, sorted=True)
    box_regression = box_regression.gather(1, topk_idx[:, :, None].expand(-1, -1, 4))
    proposals = box_coder.decode(box_regression.reshape(-1, 4), anchors[topk_idx].reshape(-1, 4))
    return proposals.view(n, -1, 4), objectness


def select_proposals(
    candidates: Sequence[Tuple[Tensor, Tensor]],
    image_sizes: Tensor,
    min_size: float,
    nms_thresh: float,
    post_nms_top_n: int,
    fpn_post_nms_top_n: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    """RPNPostProcessor.proposals at test time over per-level (boxes [B, k_l, 4], scores [B, k_l]):
    clip, MIN_SIZE, NMS per (image, level), POST_NMS_TOP_N, then with several levels
    FPN_POST_NMS_TOP_N per image. Returns (boxes [P, 4], objectness [P], image [P]) in the eager
    order: by image, then level by level (one level) or best first (several)."""
    num_images, num_levels = image_sizes.shape[0], len(candidates)
    device = image_sizes.device
    boxes = torch.cat([c[0] for c in candidates], dim=1)  # [B, K, 4]
    upper = image_upper_bounds(image_sizes, torch.arange(num_images, device=device), boxes.dtype)
    boxes = clip(boxes, upper[:, None, :])
    scores = torch.cat([c[1] for c in candidates], dim=1)  # [B, K]
    per_image = boxes.shape[1]
    level = torch.cat([torch.full((c[1].shape[1],), i, device=device) for i, c in enumerate(candidates)])
    group = torch.arange(num_images, device=device)[:, None] * num_levels + level

    valid = boxes_large_enough(boxes, min_size) & torch.isfinite(scores)
    boxes, scores, group = boxes.view(-1, 4), scores.view(-1), group.view(-1)
    kept = nonzero(valid.view(-1)).squeeze(1)
    if nms_thresh > 0:
        # Kept indices come by group (image, level), then index: best first within a group.
        kept = kept[batched_nms(boxes[kept], scores[kept], group[kept], nms_thresh)]
        in_limit = rank_within_sorted_groups(group[kept], num_images * num_levels) < post_nms_top_n
    else:
        in_limit = torch.ones_like(kept, dtype=torch.bool)
    image = torch.div(kept, per_image, rounding_mode="floor")
    if num_levels > 1:
        ranked = scores[kept].masked_fill(~in_limit, float("-inf"))
        order = order_by_group_then_score(ranked, image)
        kept, image = kept[order], image[order]
        chosen = in_limit[order] & (rank_within_sorted_groups(image, num_images) < fpn_post_nms_top_n)
    else:
        chosen = in_limit
    rows = nonzero(chosen).squeeze(1)
    kept = kept[rows]
    return boxes[kept], scores[kept], image[rows]


def pool(pooler: Pooler, features: Sequence[Tensor], boxes: Tensor, image: Tensor) -> Tensor:
    """Pooler.forward on boxes [R, 4] of images `image` [R]: [R, C, h, w], each RoI pooled by the
    ROIAlign of its FPN level (docs/CONVENTIONS.md#pooler-level-assignment)."""
    rois = torch.cat((image.to(boxes.dtype)[:, None], boxes), dim=1)
    if len(pooler.poolers) == 1:
        return _roi_align(pooler.poolers[0], features[0], rois)
    mapper = pooler.map_levels
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)  # BoxList.area()
    levels = torch.floor(mapper.lvl0 + torch.log2(torch.sqrt(area) / mapper.s0 + mapper.eps))
    levels = torch.clamp(levels, min=mapper.k_min, max=mapper.k_max).to(torch.int64) - mapper.k_min
    out_h, out_w = pooler.output_size
    result = features[0].new_zeros((rois.shape[0], features[0].shape[1], out_h, out_w))
    for level, (feature, roi_align) in enumerate(zip(features, pooler.poolers)):
        idx = nonzero(levels == level).squeeze(1)
        result = result.index_put((idx,), _roi_align(roi_align, feature, rois[idx]).to(result.dtype))
    return result


def _roi_align(module: torch.nn.Module, feature: Tensor, rois: Tensor) -> Tensor:
    # The compiled op itself (what layers.roi_align runs on the CPU); lowered to RoiAlign in ONNX.
    out_h, out_w = (
        (module.output_size, module.output_size) if isinstance(module.output_size, int) else module.output_size
    )
    return _ops.roi_align_forward(
        feature,
        rois,
        float(module.spatial_scale),
        int(out_h),
        int(out_w),
        int(module.sampling_ratio),
        bool(module.aligned),
    )


def box_detections(
    class_logits: Tensor,
    box_regression: Tensor,
    proposals: Tensor,
    proposal_image: Tensor,
    image_sizes: Tensor,
    box_coder: BoxCoder,
    cls_agnostic_bbox_reg: bool,
    score_thresh: float,
    nms_thresh: float,
    detections_per_img: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The box head's PostProcessor: softmax, decode, clip, SCORE_THRESH, NMS per (image, class),
    DETECTIONS_PER_IMG (docs/CONVENTIONS.md#box-head-detections). Returns (boxes [D, 4], scores [D],
    labels [D] int64, image [D] int64): by image, then class, then proposal order."""
    class_prob = torch.softmax(class_logits.float(), -1)
    box_regression = box_regression.float()
    if cls_agnostic_bbox_reg:
        box_regression = box_regression[:, -4:]
    boxes = box_coder.decode(box_regression.flatten(1), proposals)
    num_classes = class_prob.shape[1]
    if cls_agnostic_bbox_reg:
        boxes = boxes.repeat(1, num_classes)
    boxes = boxes.reshape(-1, num_classes, 4)
    boxes = clip(boxes, image_upper_bounds(image_sizes, proposal_image, boxes.dtype)[:, None, :])

    not_background = torch.arange(num_classes, device=boxes.device) > 0
    candidates = (class_prob > score_thresh) & torch.isfinite(boxes).all(dim=2) & not_background
    row, labels = nonzero(candidates).unbind(1)  # (image, proposal, class) order
    cand_boxes, cand_scores, image = boxes[row, labels], class_prob[row, labels], proposal_image[row]
    groups = image * num_classes + labels
    if nms_thresh > 0:
        keep = batched_nms(cand_boxes, cand_scores, groups, nms_thresh)
    else:
        keep = torch.sort(groups, stable=True).indices
    cand_boxes, cand_scores, labels, image = cand_boxes[keep], cand_scores[keep], labels[keep], image[keep]
    selected = within_detection_limit(cand_scores, image, image_sizes.shape[0], detections_per_img)
    rows = nonzero(selected).squeeze(1)
    return cand_boxes[rows], cand_scores[rows], labels[rows], image[rows]
