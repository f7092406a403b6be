"""Keypoint decoding: heat maps -> (x, y, score) per keypoint, in image pixels.

For each RoI of width w and height h (at least 1), its K heat maps are resized bicubically to
ceil(w) x ceil(h); each keypoint is the argmax, placed at the pixel centre and scaled back:
x = x1 + (x_int + 0.5) * w / ceil(w); its score is the heat-map value there. Works for any number
of images per batch (the original accepted one).

Degenerate inputs never crash and never return a non-finite number: NaN heat-map values are
ignored by the argmax (an all-NaN map gives its first pixel); a score that is NaN or -inf becomes
the lowest float32 and +inf the highest; a RoI with a non-finite coordinate gets every keypoint at
(0, 0) with visibility 0 (COCO's "not labelled") and the lowest score. Finite inputs decode as
before.
"""

from typing import List, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch import nn

from ....config import CfgNode
from ....structures.bounding_box import BoxList
from ....structures.keypoint import PersonKeypoints

_LOWEST = float(np.finfo(np.float32).min)
_HIGHEST = float(np.finfo(np.float32).max)


def heatmaps_to_keypoints(maps: np.ndarray, rois: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """maps [N, K, H, W], rois [N, 4] -> (keypoints [N, K, 3] with visibility 1, scores [N, K]).

    See the module docstring for non-finite maps and rois."""
    num_rois, num_keypoints = maps.shape[:2]
    usable = np.isfinite(rois).all(axis=1)
    # A placeholder 1 x 1 box for unusable RoIs keeps the sizes below valid integers.
    safe_rois = np.where(usable[:, None], rois, 0)
    widths = np.maximum(safe_rois[:, 2] - safe_rois[:, 0], 1)
    heights = np.maximum(safe_rois[:, 3] - safe_rois[:, 1], 1)
    widths_ceil, heights_ceil = np.ceil(widths), np.ceil(heights)
    keypoints = np.zeros((num_rois, num_keypoints, 3), dtype=np.float32)
    scores = np.full((num_rois, num_keypoints), _LOWEST, dtype=np.float32)
    channels_last = np.ascontiguousarray(maps.transpose(0, 2, 3, 1), dtype=np.float32)
    every_keypoint = np.arange(num_keypoints)
    for i in np.flatnonzero(usable):
        out_w, out_h = int(widths_ceil[i]), int(heights_ceil[i])
        roi_map = cv2.resize(channels_last[i], (out_w, out_h), interpolation=cv2.INTER_CUBIC)
        roi_map = roi_map.reshape(out_h, out_w, num_keypoints).transpose(2, 0, 1)
        flat = roi_map.reshape(num_keypoints, -1)
        pos = flat.argmax(axis=1)
        if np.isnan(flat[every_keypoint, pos]).any():
            # numpy's argmax returns the first NaN of a row holding one: rank NaN lowest instead.
            pos = np.where(np.isnan(flat), -np.inf, flat).argmax(axis=1)
        x_int = pos % out_w
        y_int = pos // out_w
        keypoints[i, :, 0] = (x_int + 0.5) * (widths[i] / widths_ceil[i]) + rois[i, 0]
        keypoints[i, :, 1] = (y_int + 0.5) * (heights[i] / heights_ceil[i]) + rois[i, 1]
        keypoints[i, :, 2] = 1
        scores[i] = roi_map[every_keypoint, y_int, x_int]
    # Identity for finite scores; the bicubic overshoot can overflow huge (finite) maps too.
    return keypoints, np.nan_to_num(scores, nan=_LOWEST, posinf=_HIGHEST, neginf=_LOWEST)


class Keypointer:
    """__call__(maps [N, K, S, S], boxes: BoxList or list of BoxList holding the N boxes in order)
    -> (keypoints [N, K, 3], scores [N, K]) on the maps' device."""

    def __init__(self, padding: int = 0):
        self.padding = padding

    def __call__(self, masks: torch.Tensor, boxes: Union[BoxList, Sequence[BoxList]]):
        if isinstance(boxes, BoxList):
            boxes = [boxes]
        rois = torch.cat([b.convert("xyxy").bbox for b in boxes], dim=0) if boxes else masks.new_zeros((0, 4))
        keypoints, scores = heatmaps_to_keypoints(
            masks.detach().float().cpu().numpy(), rois.detach().float().cpu().numpy()
        )
        return torch.from_numpy(keypoints).to(masks.device), torch.from_numpy(scores).to(masks.device)


class KeypointPostProcessor(nn.Module):
    """Adds the field "keypoints" (PersonKeypoints [N, K, 3] with field "logits" [N, K])."""

    def __init__(self, keypointer: Keypointer = None):
        super().__init__()
        self.keypointer = keypointer or Keypointer()

    def forward(self, x: torch.Tensor, boxes: Sequence[BoxList]) -> List[BoxList]:
        keypoints, scores = self.keypointer(x, boxes)
        sizes = [len(b) for b in boxes]
        results = []
        for kp, score, box in zip(keypoints.split(sizes), scores.split(sizes), boxes):
            result = BoxList(box.bbox, box.size, mode="xyxy")
            for field in box.fields():
                result.add_field(field, box.get_field(field))
            person = PersonKeypoints(kp, box.size)
            person.add_field("logits", score)
            result.add_field("keypoints", person)
            results.append(result)
        return results


def make_roi_keypoint_post_processor(cfg: CfgNode) -> KeypointPostProcessor:
    return KeypointPostProcessor(Keypointer())
