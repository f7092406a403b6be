"""Per-image overlaps between the ground truth and the predictions of a Cityscapes dataset.

For each image, at its original size: the ground-truth instances (from `dataset.get_groundtruth`)
and the predictions (resized from the network's input size; per-box mask probabilities are pasted
with `Masker(threshold=0.5, padding=1)`, as the COCO evaluation does), with their box areas, mask
pixel counts, and the box and mask intersections of every same-class (ground truth, prediction)
pair. Conventions:
- boxes are inclusive pixels (docs/CONVENTIONS.md#inclusive-pixels): area `(x2 - x1 + 1) * (y2 - y1 + 1)`;
- mask pixel counts and intersections are over the whole masks (pycocotools RLE);
- predictions whose pasted mask is empty are dropped when masks are evaluated (as the original);
- pairs of different classes get intersection 0: a prediction only ever matches ground truth of its
  own class, as in the official Cityscapes evaluation (the original paired across classes).
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch

from .....modeling.roi_heads.mask_head.inference import Masker
from .....structures.bounding_box import BoxList
from ..coco.prepare import _masks_at_image_size

KINDS = ("bbox", "segm")


@dataclass
class ImageMatches:
    """One image's instances and overlaps (G ground-truth instances, P predictions).

    gt_labels / pred_labels: [G] / [P] int64 contiguous labels. pred_scores: [P] float64.
    gt_boxes / pred_boxes: [G, 4] / [P, 4] float64 "xyxy". *_box_areas: inclusive-pixel box areas.
    *_pixels: mask pixel counts (0 when masks are not evaluated).
    box_inter / mask_inter: [G, P] intersections (box: inclusive-pixel area; mask: pixel count).
    """

    gt_labels: np.ndarray
    gt_boxes: np.ndarray
    gt_box_areas: np.ndarray
    gt_pixels: np.ndarray
    pred_labels: np.ndarray
    pred_scores: np.ndarray
    pred_boxes: np.ndarray
    pred_box_areas: np.ndarray
    pred_pixels: np.ndarray
    box_inter: np.ndarray
    mask_inter: np.ndarray

    def measures(self, kind: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(gt areas [G], prediction areas [P], intersections [G, P]) of "bbox" or "segm"."""
        if kind == "bbox":
            return self.gt_box_areas, self.pred_box_areas, self.box_inter
        if kind == "segm":
            return self.gt_pixels, self.pred_pixels, self.mask_inter
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")

    def to_json(self, class_names: Sequence[str]) -> Dict[str, Dict[str, List[Dict[str, Any]]]]:
        """{"groundTruth": {class: [instance, ...]}, "prediction": {class: [...]}}, each instance
        with its overlapping partners (the layout of the original's matches.json)."""

        def partners(inter_box: np.ndarray, inter_mask: np.ndarray, key: str) -> List[Dict[str, Any]]:
            return [
                {key: int(j), "boxIntersection": float(inter_box[j]), "maskIntersection": int(inter_mask[j])}
                for j in np.flatnonzero((inter_box > 0) | (inter_mask > 0))
            ]

        out: Dict[str, Dict[str, List[Dict[str, Any]]]] = {
            "groundTruth": {name: [] for name in class_names[1:]},
            "prediction": {name: [] for name in class_names[1:]},
        }
        for i, label in enumerate(self.gt_labels.tolist()):
            out["groundTruth"][class_names[label]].append(
                {
                    "instID": i,
                    "labelID": label,
                    "boxArea": float(self.gt_box_areas[i]),
                    "pixelCount": int(self.gt_pixels[i]),
                    "box": self.gt_boxes[i].tolist(),
                    "matchedPred": partners(self.box_inter[i], self.mask_inter[i], "predID"),
                }
            )
        for j, label in enumerate(self.pred_labels.tolist()):
            if not 0 < label < len(class_names):
                continue
            out["prediction"][class_names[label]].append(
                {
                    "predID": j,
                    "labelID": label,
                    "confidence": float(self.pred_scores[j]),
                    "boxArea": float(self.pred_box_areas[j]),
                    "pixelCount": int(self.pred_pixels[j]),
                    "box": self.pred_boxes[j].tolist(),
                    "matchedGt": partners(self.box_inter[:, j], self.mask_inter[:, j], "instID"),
                }
            )
        return out


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """[N] inclusive-pixel areas of [N, 4] "xyxy" boxes (0 for inverted boxes)."""
    w = np.clip(boxes[:, 2] - boxes[:, 0] + 1, 0, None)
    h = np.clip(boxes[:, 3] - boxes[:, 1] + 1, 0, None)
    return w * h


def box_intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[A, B] inclusive-pixel intersection areas of [A, 4] and [B, 4] "xyxy" boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt + 1, 0, None)
    return wh[..., 0] * wh[..., 1]


def _rles(masks: np.ndarray) -> List[Dict[str, Any]]:
    # One mask at a time: a [H, W, N] Fortran copy of a 2048 x 1024 image's 100 masks is 200 MB.
    return [mask_util.encode(np.asfortranarray(m[:, :, None].astype(np.uint8)))[0] for m in masks]


def mask_intersections(gt_masks: np.ndarray, pred_masks: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gt pixel counts [G], prediction pixel counts [P], intersections [G, P]) of binary masks
    [G, H, W] and [P, H, W]."""
    gt_rles, pred_rles = _rles(gt_masks), _rles(pred_masks)
    gt_pixels = mask_util.area(gt_rles).astype(np.int64) if gt_rles else np.zeros(0, np.int64)
    pred_pixels = mask_util.area(pred_rles).astype(np.int64) if pred_rles else np.zeros(0, np.int64)
    if not gt_rles or not pred_rles:
        return gt_pixels, pred_pixels, np.zeros((len(gt_rles), len(pred_rles)), np.int64)
    iou = np.asarray(mask_util.iou(gt_rles, pred_rles, [0] * len(pred_rles)), dtype=np.float64)
    # iou = i / (a + b - i), so i = iou * (a + b) / (1 + iou): exact once rounded (counts < 2**53).
    sums = gt_pixels[:, None] + pred_pixels[None, :]
    return gt_pixels, pred_pixels, np.rint(iou * sums / (1.0 + iou)).astype(np.int64)


def _mask_array(masks: torch.Tensor, n: int, size: Tuple[int, int]) -> np.ndarray:
    """[n, H, W] bool from a mask tensor that may have lost its instance axis (n == 1)."""
    width, height = size
    return masks.reshape(n, height, width).cpu().numpy().astype(bool)


def _ground_truth(dataset: Any, index: int, size: Tuple[int, int]) -> BoxList:
    if hasattr(dataset, "get_groundtruth"):
        gt = dataset.get_groundtruth(index)
    else:
        gt = dataset[index][1]
    return gt.resize(size).convert("xyxy") if tuple(gt.size) != size else gt.convert("xyxy")


def match_image(dataset: Any, prediction: BoxList, index: int, with_masks: bool, masker: Masker) -> ImageMatches:
    """The ImageMatches of dataset image `index` and its `prediction` (network input size)."""
    info = dataset.get_img_info(index)
    size = (int(info["width"]), int(info["height"]))
    gt = _ground_truth(dataset, index, size)
    input_size = prediction.size
    pred = prediction.resize(size).convert("xyxy")

    gt_labels = gt.get_field("labels").long().numpy()
    gt_boxes = gt.bbox.double().numpy()
    pred_labels = pred.get_field("labels").long().cpu().numpy()
    pred_scores = pred.get_field("scores").double().cpu().numpy()
    pred_boxes = pred.bbox.double().cpu().numpy()

    num_gt, num_pred = len(gt_labels), len(pred_labels)
    gt_pixels, pred_pixels = np.zeros(num_gt, np.int64), np.zeros(num_pred, np.int64)
    mask_inter = np.zeros((num_gt, num_pred), np.int64)
    if with_masks:
        if num_pred:
            pasted = _masks_at_image_size(pred.get_field("mask").cpu(), pred, input_size, masker)
            pred_masks = _mask_array(pasted, num_pred, size)
        else:
            pred_masks = np.zeros((0, size[1], size[0]), bool)
        keep = pred_masks.any(axis=(1, 2))  # an empty mask is no prediction
        pred_labels, pred_scores, pred_boxes, pred_masks = (
            pred_labels[keep],
            pred_scores[keep],
            pred_boxes[keep],
            pred_masks[keep],
        )
        gt_masks = _mask_array(gt.get_field("masks").get_mask_tensor(), num_gt, size)
        gt_pixels, pred_pixels, mask_inter = mask_intersections(gt_masks, pred_masks)

    same_class = gt_labels[:, None] == pred_labels[None, :]
    return ImageMatches(
        gt_labels=gt_labels,
        gt_boxes=gt_boxes,
        gt_box_areas=box_areas(gt_boxes),
        gt_pixels=gt_pixels,
        pred_labels=pred_labels,
        pred_scores=pred_scores,
        pred_boxes=pred_boxes,
        pred_box_areas=box_areas(pred_boxes),
        pred_pixels=pred_pixels,
        box_inter=box_intersections(gt_boxes, pred_boxes) * same_class,
        mask_inter=mask_inter * same_class,
    )


def match_dataset(dataset: Any, predictions: Sequence[BoxList], with_masks: bool) -> List[ImageMatches]:
    """ImageMatches of every image; `predictions[i]` belongs to dataset index i."""
    if len(dataset) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for a dataset of {len(dataset)} images")
    masker = Masker(threshold=0.5, padding=1)
    return [match_image(dataset, predictions[i], i, with_masks, masker) for i in range(len(predictions))]
