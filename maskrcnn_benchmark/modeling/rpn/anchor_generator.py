"""Anchor boxes (Detectron's construction, legacy +1 convention).

Cell anchors are the anchors of one feature-map location, centred on the stride cell
[0, 0, stride - 1, stride - 1], ordered aspect-ratio-major, then size: for ratios (r1, r2) and sizes
(s1, s2) the order is (r1 s1, r1 s2, r2 s1, r2 s2). Boxes are (x1, y1, x2, y2) in input pixels.
"""

from typing import List, Sequence, Tuple

import torch
from torch import nn

from ...structures.bounding_box import BoxList
from ...structures.image_list import ImageList


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


class BufferList(nn.Module):
    """Tensors registered as buffers "0", "1", ... (saved in checkpoints, moved with .to())."""

    def __init__(self, buffers: Sequence[torch.Tensor] = ()):
        super().__init__()
        for i, buffer in enumerate(buffers):
            self.register_buffer(str(i), buffer)

    def __len__(self) -> int:
        return len(self._buffers)

    def __iter__(self):
        return iter(self._buffers.values())


class AnchorGenerator(nn.Module):
    """Anchors for every location of every feature level.

    One stride: `sizes` are all used on that single level (C4: 15 anchors per location). Several
    strides (FPN): level i uses sizes[i] (a number or a tuple of numbers) with every aspect ratio.
    forward(image_list, feature_maps) returns, per image, a list (per level) of BoxList of
    [H_l * W_l * A, 4] anchors in (location, anchor) order with a bool field "visibility": False
    for anchors that extend more than `straddle_thresh` pixels beyond the image (< 0: all visible).
    """

    def __init__(
        self,
        sizes: Sequence = (128, 256, 512),
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        anchor_strides: Sequence[int] = (8, 16, 32),
        straddle_thresh: float = 0,
    ):
        super().__init__()
        if len(anchor_strides) == 1:
            cell_anchors = [generate_anchors(anchor_strides[0], sizes, aspect_ratios)]
        else:
            if len(anchor_strides) != len(sizes):
                raise ValueError(
                    f"FPN anchors need one size per stride: {len(sizes)} sizes {tuple(sizes)} for "
                    f"{len(anchor_strides)} strides {tuple(anchor_strides)}"
                )
            cell_anchors = [
                generate_anchors(stride, size if isinstance(size, (tuple, list)) else (size,), aspect_ratios)
                for stride, size in zip(anchor_strides, sizes)
            ]
        self.strides = tuple(anchor_strides)
        self.cell_anchors = BufferList(cell_anchors)
        self.straddle_thresh = straddle_thresh

    def num_anchors_per_location(self) -> List[int]:
        return [len(cell_anchors) for cell_anchors in self.cell_anchors]

    def grid_anchors(self, grid_sizes: Sequence[Tuple[int, int]]) -> List[torch.Tensor]:
        """Per level, [H * W * A, 4] anchors: cell anchors shifted to every (y, x) location."""
        anchors = []
        for (height, width), stride, base in zip(grid_sizes, self.strides, self.cell_anchors):
            shifts_x = torch.arange(0, width * stride, step=stride, dtype=torch.float32, device=base.device)
            shifts_y = torch.arange(0, height * stride, step=stride, dtype=torch.float32, device=base.device)
            shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            anchors.append((shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4))
        return anchors

    def visibility(self, anchors: torch.Tensor, image_width: int, image_height: int) -> torch.Tensor:
        if self.straddle_thresh < 0:
            return torch.ones(anchors.shape[0], dtype=torch.bool, device=anchors.device)
        t = self.straddle_thresh
        return (
            (anchors[:, 0] >= -t)
            & (anchors[:, 1] >= -t)
            & (anchors[:, 2] < image_width + t)
            & (anchors[:, 3] < image_height + t)
        )

    def forward(self, image_list: ImageList, feature_maps: Sequence[torch.Tensor]) -> List[List[BoxList]]:
        grid_sizes = [tuple(fm.shape[-2:]) for fm in feature_maps]
        anchors_over_all_feature_maps = self.grid_anchors(grid_sizes)
        anchors = []
        for image_height, image_width in image_list.image_sizes:
            per_image = []
            for level_anchors in anchors_over_all_feature_maps:
                boxlist = BoxList(level_anchors, (image_width, image_height), mode="xyxy")
                boxlist.add_field("visibility", self.visibility(level_anchors, image_width, image_height))
                per_image.append(boxlist)
            anchors.append(per_image)
        return anchors


def make_anchor_generator(config) -> AnchorGenerator:
    """The RPN's anchors from cfg.MODEL.RPN."""
    rpn = config.MODEL.RPN
    if rpn.USE_FPN and len(rpn.ANCHOR_STRIDE) != len(rpn.ANCHOR_SIZES):
        raise ValueError(
            f"MODEL.RPN.USE_FPN needs one ANCHOR_STRIDE per ANCHOR_SIZES entry, got {rpn.ANCHOR_STRIDE} "
            f"and {rpn.ANCHOR_SIZES}"
        )
    if not rpn.USE_FPN and len(rpn.ANCHOR_STRIDE) != 1:
        raise ValueError(f"without FPN, MODEL.RPN.ANCHOR_STRIDE must have one entry, got {rpn.ANCHOR_STRIDE}")
    return AnchorGenerator(tuple(rpn.ANCHOR_SIZES), rpn.ASPECT_RATIOS, rpn.ANCHOR_STRIDE, rpn.STRADDLE_THRESH)


def make_anchor_generator_retinanet(config) -> AnchorGenerator:
    """RetinaNet's anchors: SCALES_PER_OCTAVE sizes per level, size * OCTAVE ** (k / SCALES_PER_OCTAVE)."""
    r = config.MODEL.RETINANET
    if len(r.ANCHOR_STRIDES) != len(r.ANCHOR_SIZES):
        raise ValueError(f"MODEL.RETINANET: {len(r.ANCHOR_SIZES)} ANCHOR_SIZES for {len(r.ANCHOR_STRIDES)} strides")
    sizes = [
        tuple(size * r.OCTAVE ** (k / float(r.SCALES_PER_OCTAVE)) for k in range(r.SCALES_PER_OCTAVE))
        for size in r.ANCHOR_SIZES
    ]
    return AnchorGenerator(tuple(sizes), r.ASPECT_RATIOS, r.ANCHOR_STRIDES, r.STRADDLE_THRESH)
