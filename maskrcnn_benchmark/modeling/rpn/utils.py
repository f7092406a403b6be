"""Reshape per-level head outputs [N, A*C, H, W] into rows matching the anchor order."""

from typing import List, Tuple

import torch

from ..utils import cat


def permute_and_flatten(layer: torch.Tensor, N: int, A: int, C: int, H: int, W: int) -> torch.Tensor:
    """[N, A*C, H, W] -> [N, H*W*A, C] (location-major, then anchor: the anchors' order)."""
    return layer.reshape(N, A, C, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, C)


def concat_box_prediction_layers(
    box_cls: List[torch.Tensor], box_regression: List[torch.Tensor]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-level [N, A*C, H, W] scores and [N, A*4, H, W] deltas -> [N*R, C] and [N*R, 4], R the
    number of anchors of an image over all levels (levels concatenated per image)."""
    flat_cls, flat_reg = [], []
    for cls_per_level, reg_per_level in zip(box_cls, box_regression):
        N, AxC, H, W = cls_per_level.shape
        A = reg_per_level.shape[1] // 4
        C = AxC // A
        flat_cls.append(permute_and_flatten(cls_per_level, N, A, C, H, W))
        flat_reg.append(permute_and_flatten(reg_per_level, N, A, 4, H, W))
    box_cls = cat(flat_cls, dim=1).reshape(-1, C)
    box_regression = cat(flat_reg, dim=1).reshape(-1, 4)
    return box_cls, box_regression
