"""Mask inference: pick each detection's class channel, and paste masks into the image (Masker).

MaskPostProcessor adds the field "mask" to each detection BoxList: probabilities [N, 1, M, M], or,
when given a Masker, masks pasted at image size [N, 1, H, W] (bool).

Masker pastes the legacy way (docs/CONVENTIONS.md#mask-pasting): pad the M x M mask by `padding` pixels, grow the
box around its centre by (M + 2 * padding) / M, truncate it to integers, resize the mask bilinearly
to the box's (x2 - x1 + 1) x (y2 - y1 + 1) pixels, threshold, and write it into the image. On the CPU
all boxes of an image at once (paste.py: exactly paste_mask_in_image's masks).

Degenerate inputs: NaN mask logits give probability 0; a box with a non-finite coordinate pastes
an empty mask and NaN probabilities paste as 0, so the pasted masks never depend on NaNs. No
detections give [0, 1, M, M] / [0, 1, H, W] tensors.
"""

import math
from typing import List, Sequence, Union

import torch
from torch import nn
from torch.nn import functional as F

from ....config import CfgNode
from ....structures.bounding_box import BoxList


def expand_boxes(boxes: torch.Tensor, scale: float) -> torch.Tensor:
    """Scale [N, 4] boxes around their centres."""
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    return torch.stack((x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half), dim=1)


def expand_masks(mask: torch.Tensor, padding: int):
    """Zero-pad [N, 1, M, M] masks by `padding` on each side; returns (padded, (M + 2p) / M)."""
    M = mask.shape[-1]
    scale = float(M + 2 * padding) / M
    return F.pad(mask, (padding,) * 4), scale


def paste_mask_in_image(
    mask: torch.Tensor, box: torch.Tensor, im_h: int, im_w: int, thresh: float = 0.5, padding: int = 1
) -> torch.Tensor:
    """Paste one [M, M] probability mask for `box` into an [im_h, im_w] canvas.

    thresh >= 0 gives a bool mask (prob > thresh); thresh < 0 gives the probabilities as uint8
    0..255 (for heat-map displays; the original's cast to bool here lost them).
    """
    padded, scale = expand_masks(mask[None, None], padding)
    im_mask = torch.zeros((im_h, im_w), dtype=torch.bool if thresh >= 0 else torch.uint8, device=mask.device)
    coords = expand_boxes(box[None].float(), scale)[0].tolist()
    if not all(math.isfinite(c) for c in coords):
        return im_mask  # no box, nothing to paste (int() of NaN or inf would raise)
    box = [int(c) for c in coords]  # truncation toward zero, as a cast to int32
    w = max(box[2] - box[0] + 1, 1)
    h = max(box[3] - box[1] + 1, 1)
    resized = F.interpolate(padded.float(), size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    if thresh >= 0:
        resized = resized > thresh  # NaN compares False
    else:
        resized = (torch.nan_to_num(resized, nan=0.0) * 255).to(torch.uint8)
    x_0, x_1 = max(box[0], 0), min(box[2] + 1, im_w)
    y_0, y_1 = max(box[1], 0), min(box[3] + 1, im_h)
    if x_1 > x_0 and y_1 > y_0:
        im_mask[y_0:y_1, x_0:x_1] = resized[y_0 - box[1] : y_1 - box[1], x_0 - box[0] : x_1 - box[0]]
    return im_mask


def _resize_matrix(start: torch.Tensor, length: torch.Tensor, src_size: int, dst_size: int) -> torch.Tensor:
    """[N, dst_size, src_size] weights of a bilinear resize (align_corners=False, as F.interpolate)
    of a src_size-long signal to `length` samples, placed at `start` of a dst_size-long line; rows
    outside [start, start + length) are zero."""
    out_idx = torch.arange(dst_size, device=start.device)[None] - start[:, None]  # index in the resized mask
    inside = (out_idx >= 0) & (out_idx < length[:, None])
    scale = src_size / length.to(torch.float32)
    src = ((out_idx.to(torch.float32) + 0.5) * scale[:, None] - 0.5).clamp(min=0)
    i0 = src.floor().to(torch.int64).clamp(max=src_size - 1)
    i1 = (i0 + 1).clamp(max=src_size - 1)
    w1 = (src - i0).clamp(0, 1) * inside
    w0 = inside.to(torch.float32) - w1
    weights = torch.zeros(start.shape[0], dst_size, src_size, device=start.device)
    weights.scatter_add_(2, i0[..., None], w0[..., None])
    weights.scatter_add_(2, i1[..., None], w1[..., None])
    return weights


def paste_masks_in_image(
    masks: torch.Tensor,
    boxes: torch.Tensor,
    im_h: int,
    im_w: int,
    thresh: float = 0.5,
    padding: int = 1,
    chunk: int = 32,
) -> torch.Tensor:
    """Batched paste_mask_in_image: [N, M, M] masks and [N, 4] xyxy boxes -> [N, im_h, im_w].

    The same boxes and bilinear weights as the one-box version, applied as two batched matrix
    products (rows, then columns) so that a GPU pastes all detections in a few kernels instead of
    ~10 small ones per detection. Values agree with the one-box version up to float rounding (a
    pixel within ~1e-6 of the threshold may differ). `chunk` bounds the [chunk, im_h, im_w] float
    buffer.
    """
    dtype = torch.bool if thresh >= 0 else torch.uint8
    out = torch.zeros((masks.shape[0], im_h, im_w), dtype=dtype, device=masks.device)
    # NaN times a zero weight is NaN: zero the NaNs first so that they cannot leak into the canvas.
    padded, scale = expand_masks(torch.nan_to_num(masks[:, None].float(), nan=0.0), padding)
    expanded = expand_boxes(boxes.float(), scale)
    # Boxes with a non-finite coordinate move out of the image (nothing pasted); the clamp keeps
    # the cast to int32 defined for huge ones. Both are no-ops for boxes near the image.
    far = -float(2**30)
    expanded = torch.where(torch.isfinite(expanded).all(dim=1, keepdim=True), expanded, far)
    box = expanded.clamp(min=far, max=-far).to(torch.int32).to(torch.int64)
    width = (box[:, 2] - box[:, 0] + 1).clamp(min=1)
    height = (box[:, 3] - box[:, 1] + 1).clamp(min=1)
    size = padded.shape[-1]
    for k in range(0, masks.shape[0], chunk):
        rows = _resize_matrix(box[k : k + chunk, 1], height[k : k + chunk], size, im_h)
        cols = _resize_matrix(box[k : k + chunk, 0], width[k : k + chunk], size, im_w)
        resized = rows @ padded[k : k + chunk, 0] @ cols.transpose(1, 2)
        out[k : k + chunk] = resized > thresh if thresh >= 0 else (resized * 255).to(torch.uint8)
    return out


class Masker:
    """Paste per-detection masks into images: __call__(masks: list of [N, 1, M, M], boxes: list of
    BoxList (or one BoxList)) -> list of [N, 1, H, W] (bool, or uint8 when threshold < 0)."""

    def __init__(self, threshold: float = 0.5, padding: int = 1):
        self.threshold = threshold
        self.padding = padding

    def forward_single_image(self, masks: torch.Tensor, boxes: BoxList) -> torch.Tensor:
        boxes = boxes.convert("xyxy")
        im_w, im_h = (int(v) for v in boxes.size)
        if masks.is_cuda:  # one batched paste: launches, not arithmetic, are what costs on a GPU
            return paste_masks_in_image(masks[:, 0], boxes.bbox, im_h, im_w, self.threshold, self.padding)[:, None]
        from .paste import paste_masks_exact  # paste.py builds on this module's helpers

        # the masks of paste_mask_in_image, bit for bit, with one resize call per mask size
        return paste_masks_exact(masks[:, 0], boxes.bbox, im_h, im_w, self.threshold, self.padding)[:, None]

    def __call__(self, masks: Sequence[torch.Tensor], boxes: Union[BoxList, Sequence[BoxList]]) -> List[torch.Tensor]:
        if isinstance(boxes, BoxList):
            boxes = [boxes]
        if len(boxes) != len(masks):
            raise ValueError(f"Masker: {len(masks)} mask tensors for {len(boxes)} images")
        return [self.forward_single_image(mask, box) for mask, box in zip(masks, boxes)]


class MaskPostProcessor(nn.Module):
    def __init__(self, masker: Masker = None):
        super().__init__()
        self.masker = masker

    def forward(self, x: torch.Tensor, boxes: Sequence[BoxList]) -> List[BoxList]:
        """x: [K, num_classes, M, M] logits for the K detections of all images."""
        mask_prob = x.float().sigmoid()
        labels = torch.cat([b.get_field("labels") for b in boxes])
        mask_prob = mask_prob[torch.arange(x.shape[0], device=labels.device), labels][:, None]
        # NaN logits (a diverged head) carry no mask: probability 0. sigmoid never gives +-inf.
        mask_prob = torch.nan_to_num(mask_prob, nan=0.0)
        mask_prob = mask_prob.split([len(b) for b in boxes], dim=0)
        if self.masker is not None:
            mask_prob = self.masker(mask_prob, boxes)
        results = []
        for prob, box in zip(mask_prob, boxes):
            result = BoxList(box.bbox, box.size, mode="xyxy")
            for field in box.fields():
                result.add_field(field, box.get_field(field))
            result.add_field("mask", prob)
            results.append(result)
        return results


class MaskPostProcessorCOCOFormat(MaskPostProcessor):
    """MaskPostProcessor whose "mask" field is a list of COCO RLEs, one per detection (the original's
    class for writing results straight to json). Needs a Masker: RLEs describe pasted masks."""

    def forward(self, x: torch.Tensor, boxes: Sequence[BoxList]) -> List[BoxList]:
        from ....data.datasets.evaluation.coco.prepare import masks_to_rles  # pycocotools: only here

        if self.masker is None:
            raise ValueError("MaskPostProcessorCOCOFormat needs a Masker (the masks must be pasted first)")
        results = super().forward(x, boxes)
        for result in results:
            result.add_field("mask", masks_to_rles(result.get_field("mask")[:, 0]))
        return results


def make_roi_mask_post_processor(cfg: CfgNode) -> MaskPostProcessor:
    head = cfg.MODEL.ROI_MASK_HEAD
    masker = Masker(threshold=head.POSTPROCESS_MASKS_THRESHOLD, padding=1) if head.POSTPROCESS_MASKS else None
    return MaskPostProcessor(masker)
