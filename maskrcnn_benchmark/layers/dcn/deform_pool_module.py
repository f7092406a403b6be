"""Deformable RoI pooling modules (over `deform_roi_pooling`, see deform_pool_func.py).

- `DeformRoIPooling`: `forward(data, rois, offset)`, the offsets given by the caller.
- `DeformRoIPoolingPack`: `forward(data, rois)`; pools without offsets, predicts [R, 2, P, P]
  offsets from that with `offset_fc` (three linear layers, the last zero-initialised, so it starts
  as plain position-sensitive pooling), then pools with them.
- `ModulatedDeformRoIPoolingPack`: as the Pack, and multiplies the result by a [R, 1, P, P] mask in
  (0, 1) predicted by `mask_fc` (zero-initialised last linear layer: 0.5 at first).

The Packs need `data` with exactly `out_channels` channels (group_size 1), as the original's did.
"""

from typing import Optional

import torch
from torch import nn

from .deform_pool_func import deform_roi_pooling

__all__ = ["DeformRoIPooling", "DeformRoIPoolingPack", "ModulatedDeformRoIPoolingPack"]


class DeformRoIPooling(nn.Module):
    def __init__(
        self,
        spatial_scale: float,
        out_size: int,
        out_channels: int,
        no_trans: bool,
        group_size: int = 1,
        part_size: Optional[int] = None,
        sample_per_part: int = 4,
        trans_std: float = 0.0,
    ):
        super().__init__()
        self.spatial_scale = spatial_scale
        self.out_size = out_size
        self.out_channels = out_channels
        self.no_trans = no_trans
        self.group_size = group_size
        self.part_size = out_size if part_size is None else part_size
        self.sample_per_part = sample_per_part
        self.trans_std = trans_std

    def pool(self, data: torch.Tensor, rois: torch.Tensor, offset: torch.Tensor, no_trans: bool) -> torch.Tensor:
        return deform_roi_pooling(
            data,
            rois,
            offset,
            self.spatial_scale,
            self.out_size,
            self.out_channels,
            no_trans,
            self.group_size,
            self.part_size,
            self.sample_per_part,
            self.trans_std,
        )

    def forward(self, data: torch.Tensor, rois: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        return self.pool(data, rois, data.new_empty(0) if self.no_trans else offset, self.no_trans)


def _fc_stack(in_features: int, hidden: int, out_features: int, num_hidden: int) -> nn.Sequential:
    layers = []
    for _ in range(num_hidden):
        layers += [nn.Linear(in_features, hidden), nn.ReLU(inplace=True)]
        in_features = hidden
    last = nn.Linear(in_features, out_features)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class DeformRoIPoolingPack(DeformRoIPooling):
    def __init__(
        self,
        spatial_scale: float,
        out_size: int,
        out_channels: int,
        no_trans: bool,
        group_size: int = 1,
        part_size: Optional[int] = None,
        sample_per_part: int = 4,
        trans_std: float = 0.0,
        deform_fc_channels: int = 1024,
    ):
        super().__init__(
            spatial_scale, out_size, out_channels, no_trans, group_size, part_size, sample_per_part, trans_std
        )
        self.deform_fc_channels = deform_fc_channels
        if not no_trans:
            # Sequential indices as the original's (0, 2, 4 linear), so its checkpoints load.
            self.offset_fc = _fc_stack(out_size * out_size * out_channels, deform_fc_channels, out_size**2 * 2, 2)

    def _plain(self, data: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        if data.shape[1] != self.out_channels:
            raise ValueError(
                f"{type(self).__name__} needs data with out_channels={self.out_channels} channels, got {data.shape[1]}"
            )
        return self.pool(data, rois, data.new_empty(0), True)

    def _offsets(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.offset_fc(pooled.flatten(1)).view(-1, 2, self.out_size, self.out_size)

    def forward(self, data: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        pooled = self._plain(data, rois)
        if self.no_trans:
            return pooled
        return self.pool(data, rois, self._offsets(pooled), False)


class ModulatedDeformRoIPoolingPack(DeformRoIPoolingPack):
    def __init__(
        self,
        spatial_scale: float,
        out_size: int,
        out_channels: int,
        no_trans: bool,
        group_size: int = 1,
        part_size: Optional[int] = None,
        sample_per_part: int = 4,
        trans_std: float = 0.0,
        deform_fc_channels: int = 1024,
    ):
        super().__init__(
            spatial_scale,
            out_size,
            out_channels,
            no_trans,
            group_size,
            part_size,
            sample_per_part,
            trans_std,
            deform_fc_channels,
        )
        if not no_trans:
            self.mask_fc = nn.Sequential(
                *_fc_stack(out_size * out_size * out_channels, deform_fc_channels, out_size**2, 1), nn.Sigmoid()
            )

    def forward(self, data: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        pooled = self._plain(data, rois)
        if self.no_trans:
            return pooled
        mask = self.mask_fc(pooled.flatten(1)).view(-1, 1, self.out_size, self.out_size)
        return self.pool(data, rois, self._offsets(pooled), False) * mask
