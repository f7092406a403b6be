"""Convert per-image predictions (BoxList) into COCO result dicts (the json pycocotools loads).

Conventions:
- `predictions[i]` belongs to dataset index i and is in the network's input size; it is resized to
  the original image size (`dataset.get_img_info(i)` "width"/"height") first.
- boxes go out as COCO `[x, y, w, h]` with the legacy inclusive width `w = x2 - x1 + 1`
  (`BoxList.convert("xywh")`), the inverse of how COCODataset reads the ground truth;
- labels are contiguous ids (1..C), mapped back with `dataset.contiguous_category_id_to_json_id`;
- "image_id" is the COCO image id `dataset.id_to_img_map[i]`.
"""

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
from torch.nn import functional as F

from .....modeling.roi_heads.mask_head.inference import Masker
from .....structures.bounding_box import BoxList

CocoResult = Dict[str, Any]


def _original_size(dataset: Any, image_idx: int) -> Tuple[int, int]:
    """(width, height) of the original image."""
    info = dataset.get_img_info(image_idx)
    return int(info["width"]), int(info["height"])


def _common_fields(prediction: BoxList, dataset: Any) -> Tuple[List[float], List[int]]:
    scores = prediction.get_field("scores").tolist()
    labels = prediction.get_field("labels").tolist()
    mapped = [dataset.contiguous_category_id_to_json_id[int(lab)] for lab in labels]
    return scores, mapped


def prepare_for_coco_detection(predictions: Sequence[BoxList], dataset: Any) -> List[CocoResult]:
    """One {"image_id", "category_id", "bbox": [x, y, w, h], "score"} per detected box."""
    coco_results: List[CocoResult] = []
    for image_idx, prediction in enumerate(predictions):
        if len(prediction) == 0:
            continue
        original_id = dataset.id_to_img_map[image_idx]
        prediction = prediction.resize(_original_size(dataset, image_idx)).convert("xywh")
        boxes = prediction.bbox.float().tolist()
        scores, labels = _common_fields(prediction, dataset)
        coco_results.extend(
            {"image_id": original_id, "category_id": labels[k], "bbox": box, "score": scores[k]}
            for k, box in enumerate(boxes)
        )
    return coco_results


def _masks_at_image_size(
    masks: torch.Tensor, prediction: BoxList, input_size: Tuple[Any, Any], masker: Masker
) -> torch.Tensor:
    """Binary [N, H, W] masks at the original image size (prediction.size == (W, H)).

    Three cases, told apart by the masks' spatial shape: the image size -> already pasted (kept,
    thresholded at 0.5 if float); the network's input size -> pasted there by the model
    (POSTPROCESS_MASKS), and BoxList.resize leaves tensor fields alone, so they are resized
    bilinearly and thresholded at 0.5 (the original sent these through the Masker by mistake);
    anything else -> per-box M x M probabilities, pasted with `masker` into the resized boxes.
    """
    width, height = (int(v) for v in prediction.size)
    if masks.dim() == 3:  # [N, H, W] -> [N, 1, H, W]
        masks = masks[:, None]
    shape = tuple(masks.shape[-2:])
    if shape == (height, width):
        return masks[:, 0] > 0.5 if masks.is_floating_point() else masks[:, 0].bool()
    in_w, in_h = (int(v) for v in input_size)
    if shape == (in_h, in_w):
        resized = F.interpolate(masks.float(), size=(height, width), mode="bilinear", align_corners=False)
        return resized[:, 0] >= 0.5
    return masker([masks.float()], prediction)[0][:, 0]


def masks_to_rles(masks_tensor: torch.Tensor) -> List[Dict[str, Any]]:
    """COCO RLEs (counts as str, so they go into json) of binary [N, H, W] masks (one pycocotools call)."""
    if masks_tensor.shape[0] == 0:
        return []
    # pycocotools wants a Fortran-ordered uint8 [H, W, N] array.
    array = np.asfortranarray(masks_tensor.cpu().permute(1, 2, 0).numpy().astype(np.uint8))
    rles = mask_util.encode(array)
    for rle in rles:
        rle["counts"] = rle["counts"].decode("utf-8")
    return rles


def prepare_for_coco_segmentation(predictions: Sequence[BoxList], dataset: Any) -> List[CocoResult]:
    """One {"image_id", "category_id", "segmentation": RLE, "score"} per detection.

    The "mask" field is either full-size masks ([N, 1, H, W]) or per-box [N, 1, M, M]
    probabilities, which are pasted with `Masker(threshold=0.5, padding=1)`.
    """
    masker = Masker(threshold=0.5, padding=1)
    coco_results: List[CocoResult] = []
    for image_idx, prediction in enumerate(predictions):
        if len(prediction) == 0:
            continue
        original_id = dataset.id_to_img_map[image_idx]
        input_size = prediction.size
        prediction = prediction.resize(_original_size(dataset, image_idx))
        masks = _masks_at_image_size(prediction.get_field("mask").cpu(), prediction, input_size, masker)
        rles = masks_to_rles(masks)
        scores, labels = _common_fields(prediction, dataset)
        coco_results.extend(
            {"image_id": original_id, "category_id": labels[k], "segmentation": rle, "score": scores[k]}
            for k, rle in enumerate(rles)
        )
    return coco_results


def prepare_for_coco_keypoint(predictions: Sequence[BoxList], dataset: Any) -> List[CocoResult]:
    """One {"image_id", "category_id", "keypoints": [x1, y1, v1, ...] (K*3), "score"} per
    detection; the score is the box's (like the original)."""
    coco_results: List[CocoResult] = []
    for image_idx, prediction in enumerate(predictions):
        if len(prediction) == 0:
            continue
        original_id = dataset.id_to_img_map[image_idx]
        # BoxList.resize also rescales the (non-tensor) keypoints field.
        prediction = prediction.resize(_original_size(dataset, image_idx))
        keypoints = prediction.get_field("keypoints").keypoints
        keypoints = keypoints.float().reshape(keypoints.shape[0], -1).tolist()
        scores, labels = _common_fields(prediction, dataset)
        coco_results.extend(
            {"image_id": original_id, "category_id": labels[k], "keypoints": kp, "score": scores[k]}
            for k, kp in enumerate(keypoints)
        )
    return coco_results
