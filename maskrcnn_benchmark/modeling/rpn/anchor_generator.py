"""Anchor boxes (Detectron's construction, legacy +1 convention).

Cell anchors are the anchors of one feature-map location, centred on the stride cell
[0, 0, stride - 1, stride - 1], ordered aspect-ratio-major, then size: for ratios (r1, r2) and sizes
(s1, s2) the order is (r1 s1, r1 s2, r2 s1, r2 s2). Boxes are (x1, y1, x2, y2) in input pixels.
"""
from typing import Sequence

import torch


def _centre_and_size(anchor: torch.Tensor):
    w = anchor[2] - anchor[0] + 1
    h = anchor[3] - anchor[1] + 1
    return anchor[0] + 0.5 * (w - 1), anchor[1] + 0.5 * (h - 1), w, h


def _boxes_around(cx: torch.Tensor, cy: torch.Tensor, ws: torch.Tensor, hs: torch.Tensor) -> torch.Tensor:
    return torch.stack((cx - 0.5 * (ws - 1), cy - 0.5 * (hs - 1), cx + 0.5 * (ws - 1), cy + 0.5 * (hs - 1)), dim=1)


def generate_anchors(
    stride: int = 16,
    sizes: Sequence[float] = (32, 64, 128, 256, 512),
    aspect_ratios: Sequence[float] = (0.5, 1, 2),
) -> torch.Tensor:
    """Cell anchors [len(aspect_ratios) * len(sizes), 4] (float32) for one feature level.

    For each ratio r = h / w, a box of the cell's area gets width round(sqrt(area / r)) and height
    round(width * r) (round half to even, as numpy), and is then scaled by size / stride.
    """
    base = torch.tensor([0.0, 0.0, stride - 1.0, stride - 1.0], dtype=torch.float64)
    ratios = torch.as_tensor(aspect_ratios, dtype=torch.float64)
    scales = torch.as_tensor(sizes, dtype=torch.float64) / stride

    cx, cy, w, h = _centre_and_size(base)
    ws = torch.round(torch.sqrt(w * h / ratios))
    hs = torch.round(ws * ratios)
    ratio_anchors = _boxes_around(cx, cy, ws, hs)

    anchors = []
    for anchor in ratio_anchors:
        cx, cy, w, h = _centre_and_size(anchor)
        anchors.append(_boxes_around(cx, cy, w * scales, h * scales))
    return torch.cat(anchors, dim=0).to(torch.float32)
