"""Encode boxes as regression targets relative to reference boxes, and decode them back.

Legacy (Detectron) convention: widths are x2 - x1 + 1, the centre is x1 + 0.5 * width, and decoded
boxes end at centre + 0.5 * width - 1. Boxes are (x1, y1, x2, y2) tensors of shape [N, 4]; codes are
(dx, dy, dw, dh) of shape [N, 4] (or [N, 4 * K] when decoding K boxes per reference).
"""

import math
from typing import Sequence

import torch


class BoxCoder:
    """Box regression coder with per-coordinate weights (wx, wy, ww, wh)."""

    def __init__(self, weights: Sequence[float], bbox_xform_clip: float = math.log(1000.0 / 16)):
        if len(weights) != 4:
            raise ValueError(f"BoxCoder weights must be 4 numbers (wx, wy, ww, wh), got {weights!r}")
        self.weights = tuple(float(w) for w in weights)
        # Caps dw/dh before exp() so that a wild prediction cannot overflow.
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, reference_boxes: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
        """Targets that turn `proposals` [N, 4] into `reference_boxes` [N, 4] (ground truth)."""
        to_remove = 1
        ex_widths = proposals[:, 2] - proposals[:, 0] + to_remove
        ex_heights = proposals[:, 3] - proposals[:, 1] + to_remove
        ex_ctr_x = proposals[:, 0] + 0.5 * ex_widths
        ex_ctr_y = proposals[:, 1] + 0.5 * ex_heights

        gt_widths = reference_boxes[:, 2] - reference_boxes[:, 0] + to_remove
        gt_heights = reference_boxes[:, 3] - reference_boxes[:, 1] + to_remove
        gt_ctr_x = reference_boxes[:, 0] + 0.5 * gt_widths
        gt_ctr_y = reference_boxes[:, 1] + 0.5 * gt_heights

        wx, wy, ww, wh = self.weights
        return torch.stack(
            (
                wx * (gt_ctr_x - ex_ctr_x) / ex_widths,
                wy * (gt_ctr_y - ex_ctr_y) / ex_heights,
                ww * torch.log(gt_widths / ex_widths),
                wh * torch.log(gt_heights / ex_heights),
            ),
            dim=1,
        )

    def decode(self, rel_codes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Apply `rel_codes` [N, 4K] to `boxes` [N, 4]; returns [N, 4K] boxes (x1, y1, x2, y2)."""
        boxes = boxes.to(rel_codes.dtype)
        to_remove = 1
        widths = boxes[:, 2] - boxes[:, 0] + to_remove
        heights = boxes[:, 3] - boxes[:, 1] + to_remove
        ctr_x = boxes[:, 0] + 0.5 * widths
        ctr_y = boxes[:, 1] + 0.5 * heights

        wx, wy, ww, wh = self.weights
        codes = rel_codes.reshape(rel_codes.shape[0], rel_codes.shape[1] // 4, 4)
        dx = codes[..., 0] / wx
        dy = codes[..., 1] / wy
        dw = torch.clamp(codes[..., 2] / ww, max=self.bbox_xform_clip)
        dh = torch.clamp(codes[..., 3] / wh, max=self.bbox_xform_clip)

        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        pred_w = torch.exp(dw) * widths[:, None]
        pred_h = torch.exp(dh) * heights[:, None]

        pred = torch.stack(
            (
                pred_ctr_x - 0.5 * pred_w,
                pred_ctr_y - 0.5 * pred_h,
                pred_ctr_x + 0.5 * pred_w - 1,
                pred_ctr_y + 0.5 * pred_h - 1,
            ),
            dim=2,
        )
        return pred.reshape(rel_codes.shape)
