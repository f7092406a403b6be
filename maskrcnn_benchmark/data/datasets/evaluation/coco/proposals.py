"""Average recall of region proposals against COCO ground truth (the RPN-only evaluation).

Box convention: proposals are BoxLists in the network's input size (any mode); they are resized to
the original image size. COCO ground-truth boxes `[x, y, w, h]` become legacy inclusive xyxy boxes
`x2 = x + w - 1`, and IoU uses the legacy "+1" areas (`boxlist_iou`), like the original.
"""

from typing import Any, Dict, List, Optional, Sequence

import torch

from .....structures.bounding_box import BoxList
from .....structures.boxlist_ops import boxlist_iou

# Object-area ranges (in pixels^2 of the annotation's "area") as the original defines them.
AREAS: Dict[str, int] = {
    "all": 0,
    "small": 1,
    "medium": 2,
    "large": 3,
    "96-128": 4,
    "128-256": 5,
    "256-512": 6,
    "512-inf": 7,
}
AREA_RANGES: List[List[float]] = [
    [0**2, 1e5**2],
    [0**2, 32**2],
    [32**2, 96**2],
    [96**2, 1e5**2],
    [96**2, 128**2],
    [128**2, 256**2],
    [256**2, 512**2],
    [512**2, 1e5**2],
]


def _score_field(prediction: BoxList) -> Optional[str]:
    # RPN outputs carry "objectness"; a detector's boxes evaluated as proposals carry "scores".
    for name in ("objectness", "scores"):
        if prediction.has_field(name):
            return name
    return None


def _greedy_best_overlaps(overlaps: torch.Tensor) -> torch.Tensor:
    """For each ground truth (columns), the IoU of the proposal (rows) assigned to it by greedily
    taking the globally best remaining pair; each proposal covers at most one ground truth."""
    overlaps = overlaps.clone()
    num_gt = overlaps.shape[1]
    best = torch.zeros(num_gt)
    for j in range(min(overlaps.shape[0], num_gt)):
        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_ovr, gt_ind = max_overlaps.max(dim=0)
        box_ind = argmax_overlaps[gt_ind]
        best[j] = gt_ovr
        overlaps[box_ind, :] = -1
        overlaps[:, gt_ind] = -1
    return best


def evaluate_box_proposals(
    predictions: Sequence[BoxList],
    dataset: Any,
    thresholds: Optional[torch.Tensor] = None,
    area: str = "all",
    limit: Optional[int] = None,
) -> Dict[str, Any]:
    """Recall of the top-`limit` proposals of each image at IoU `thresholds` (default
    0.50:0.95:0.05), counting the non-crowd ground truth whose area is in `area`'s range.

    `predictions[i]` belongs to dataset index i. Returns {"ar", "recalls", "thresholds",
    "gt_overlaps", "num_pos"}; "ar" is the mean recall over the thresholds, or -1 when there is
    no ground truth in the range (the original crashed there).
    """
    if area not in AREAS:
        raise ValueError("Unknown area range: {} (known: {})".format(area, list(AREAS)))
    area_range = AREA_RANGES[AREAS[area]]
    gt_overlaps: List[torch.Tensor] = []
    num_pos = 0

    for image_idx, prediction in enumerate(predictions):
        original_id = dataset.id_to_img_map[image_idx]
        img_info = dataset.get_img_info(image_idx)
        image_width, image_height = img_info["width"], img_info["height"]

        anno = dataset.coco.loadAnns(dataset.coco.getAnnIds(imgIds=original_id))
        anno = [obj for obj in anno if obj.get("iscrowd", 0) == 0]
        gt_boxes = torch.as_tensor([obj["bbox"] for obj in anno], dtype=torch.float32).reshape(-1, 4)
        gt_areas = torch.as_tensor([obj["area"] for obj in anno], dtype=torch.float32)
        gt = BoxList(gt_boxes, (image_width, image_height), mode="xywh").convert("xyxy")
        gt = gt[(gt_areas >= area_range[0]) & (gt_areas <= area_range[1])]
        num_pos += len(gt)
        if len(gt) == 0:
            continue

        # An image without proposals still counts its ground truth (num_pos) but recalls none.
        found = torch.zeros(len(gt))
        if len(prediction) > 0:
            prediction = prediction.resize((image_width, image_height))
            score_field = _score_field(prediction)
            if score_field is not None:
                order = prediction.get_field(score_field).sort(descending=True)[1]
                prediction = prediction[order]
            if limit is not None and len(prediction) > limit:
                prediction = prediction[:limit]
            overlaps = boxlist_iou(prediction.convert("xyxy"), gt)
            found = _greedy_best_overlaps(overlaps)
        gt_overlaps.append(found)

    gt_overlaps_t = torch.cat(gt_overlaps, dim=0) if gt_overlaps else torch.zeros(0)
    gt_overlaps_t, _ = torch.sort(gt_overlaps_t)
    if thresholds is None:
        thresholds = torch.arange(0.5, 0.95 + 1e-5, 0.05, dtype=torch.float32)
    recalls = torch.zeros_like(thresholds)
    for i, t in enumerate(thresholds):
        recalls[i] = (gt_overlaps_t >= t).float().sum() / max(num_pos, 1)
    ar = recalls.mean() if num_pos > 0 else torch.tensor(-1.0)
    return {
        "ar": ar,
        "recalls": recalls,
        "thresholds": thresholds,
        "gt_overlaps": gt_overlaps_t,
        "num_pos": num_pos,
    }
