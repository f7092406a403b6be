"""RoI feature pooling over one or several feature levels (FPN).

Pooler.forward(x: per-level feature maps [N, C, H_l, W_l], boxes: one BoxList per image, in input
pixels) returns [K, C, R, R] features for the K boxes of all images, in image-then-box order. With
several levels, each box is pooled from the level chosen by LevelMapper (the FPN paper's rule).
"""

import math
from typing import Sequence, Tuple, Union

import torch
from torch import nn

from ..config import CfgNode
from ..layers.roi_align import ROIAlign
from ..structures.bounding_box import BoxList
from .utils import cat, nonzero_per_segment


class LevelMapper:
    """level = floor(canonical_level + log2(sqrt(area) / canonical_scale + eps)), clamped to
    [k_min, k_max], returned as 0-based indices (level - k_min). Areas use the +1 convention."""

    def __init__(self, k_min: int, k_max: int, canonical_scale: int = 224, canonical_level: int = 4, eps: float = 1e-6):
        self.k_min = k_min
        self.k_max = k_max
        self.s0 = canonical_scale
        self.lvl0 = canonical_level
        self.eps = eps

    def __call__(self, boxlists: Sequence[BoxList]) -> torch.Tensor:
        s = torch.sqrt(cat([boxlist.area() for boxlist in boxlists]))
        target_lvls = torch.floor(self.lvl0 + torch.log2(s / self.s0 + self.eps))
        target_lvls = torch.clamp(target_lvls, min=self.k_min, max=self.k_max)
        return target_lvls.to(torch.int64) - self.k_min


class Pooler(nn.Module):
    """ROIAlign per level (spatial scale 1/stride), boxes routed to levels by LevelMapper."""

    def __init__(self, output_size: Union[int, Tuple[int, int]], scales: Sequence[float], sampling_ratio: int):
        super().__init__()
        self.poolers = nn.ModuleList(
            ROIAlign(output_size, spatial_scale=s, sampling_ratio=sampling_ratio) for s in scales
        )
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        # Levels are log2 of the strides: scale 1/4 -> level 2, ..., 1/32 -> level 5.
        lvl_min = -round(math.log2(scales[0]))
        lvl_max = -round(math.log2(scales[-1]))
        self.map_levels = LevelMapper(lvl_min, lvl_max)

    def convert_to_roi_format(self, boxes: Sequence[BoxList]) -> torch.Tensor:
        """[K, 5] rois (batch index, x1, y1, x2, y2)."""
        concat_boxes = cat([b.bbox for b in boxes], dim=0)
        ids = cat(
            [
                torch.full((len(b), 1), i, dtype=concat_boxes.dtype, device=concat_boxes.device)
                for i, b in enumerate(boxes)
            ],
            dim=0,
        )
        return torch.cat([ids, concat_boxes], dim=1)

    def forward(self, x: Sequence[torch.Tensor], boxes: Sequence[BoxList]) -> torch.Tensor:
        rois = self.convert_to_roi_format(boxes)
        if len(self.poolers) == 1:
            return self.poolers[0](x[0], rois)

        levels = self.map_levels(boxes)
        num_rois = rois.shape[0]
        channels = x[0].shape[1]
        out_h, out_w = self.output_size
        result = x[0].new_zeros((num_rois, channels, out_h, out_w))
        # The RoIs of every level with one host read (their counts) for all levels.
        per_level = nonzero_per_segment([levels == level for level in range(len(self.poolers))])
        for feature, pooler, idx_in_level in zip(x, self.poolers, per_level):
            result[idx_in_level] = pooler(feature, rois[idx_in_level]).to(result.dtype)
        return result


def make_pooler(cfg: CfgNode, head_name: str) -> Pooler:
    """Pooler configured by cfg.MODEL.<head_name> (POOLER_RESOLUTION, POOLER_SCALES, POOLER_SAMPLING_RATIO)."""
    head = cfg.MODEL[head_name]
    return Pooler(
        output_size=(head.POOLER_RESOLUTION, head.POOLER_RESOLUTION),
        scales=head.POOLER_SCALES,
        sampling_ratio=head.POOLER_SAMPLING_RATIO,
    )
