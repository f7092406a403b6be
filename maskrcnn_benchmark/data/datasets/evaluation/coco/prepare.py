"""Convert per-image predictions (BoxList) into COCO result dicts (the json pycocotools loads).

Conventions:
- `predictions[i]` belongs to dataset index i and is in the network's input size; it is resized to
  the original image size (`dataset.get_img_info(i)` "width"/"height") first.
- boxes go out as COCO `[x, y, w, h]` with the legacy inclusive width `w = x2 - x1 + 1`
  (`BoxList.convert("xywh")`), the inverse of how COCODataset reads the ground truth;
- labels are contiguous ids (1..C), mapped back with `dataset.contiguous_category_id_to_json_id`;
- "image_id" is the COCO image id `dataset.id_to_img_map[i]`.

The work is done by compact.py (per image, in arrays) and rle.py (masks pasted and run-length encoded
without image-sized masks); the dicts are the original's.
"""

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
from torch.nn import functional as F

from .....modeling.roi_heads.mask_head.inference import Masker
from .....structures.bounding_box import BoxList
from .compact import encode_predictions, result_dicts

CocoResult = Dict[str, Any]


def prepare_for_coco_detection(predictions: Sequence[BoxList], dataset: Any) -> List[CocoResult]:
    """One {"image_id", "category_id", "bbox": [x, y, w, h], "score"} per detected box."""
    return result_dicts(encode_predictions(predictions, dataset, ("bbox",)), "bbox")


def prepare_for_coco_segmentation(predictions: Sequence[BoxList], dataset: Any) -> List[CocoResult]:
    """One {"image_id", "category_id", "segmentation": RLE, "score"} per detection.

    The "mask" field is either full-size masks ([N, 1, H, W]; at the network's input size they are
    resized bilinearly and thresholded at 0.5), COCO RLEs of such masks, or per-box [N, 1, M, M]
    probabilities, pasted as `Masker(threshold=0.5, padding=1)` does (docs/CONVENTIONS.md#mask-pasting).
    """
    return result_dicts(encode_predictions(predictions, dataset, ("segm",)), "segm")


def prepare_for_coco_keypoint(predictions: Sequence[BoxList], dataset: Any) -> List[CocoResult]:
    """One {"image_id", "category_id", "keypoints": [x1, y1, v1, ...] (K*3), "score"} per
    detection; the score is the box's (like the original)."""
    return result_dicts(encode_predictions(predictions, dataset, ("keypoints",)), "keypoints")


def _masks_at_image_size(
    masks: torch.Tensor, prediction: BoxList, input_size: Tuple[Any, Any], masker: Masker
) -> torch.Tensor:
    """Binary [N, H, W] masks at the original image size (prediction.size == (W, H)), for evaluations
    that need them whole (Cityscapes); the cases are those of compact.encode_masks."""
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
