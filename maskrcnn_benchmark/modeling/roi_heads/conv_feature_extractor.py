"""Pooled RoI features followed by a stack of 3x3 convs + ReLU (the mask and keypoint heads)."""

from typing import Callable, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ...structures.bounding_box import BoxList
from ..make_layers import make_conv3x3
from ..poolers import Pooler


class PooledConvStack(nn.Module):
    """pooler, then `{prefix}1` .. `{prefix}N` (3x3 conv [+ GN] + ReLU), N = len(conv_layers).

    Convs are initialised kaiming_normal (fan_out, ReLU) with zero bias, as both original heads did.
    """

    def __init__(
        self,
        pooler: Pooler,
        in_channels: int,
        conv_layers: Sequence[int],
        prefix: str,
        dilation: int = 1,
        use_gn: bool = False,
        norm: Optional[Callable[[int], nn.Module]] = None,
    ):
        super().__init__()
        self.pooler = pooler
        self.blocks = []
        for idx, out_channels in enumerate(conv_layers, 1):
            name = f"{prefix}{idx}"
            self.add_module(name, make_conv3x3(in_channels, out_channels, dilation=dilation, use_gn=use_gn, norm=norm))
            self.blocks.append(name)
            in_channels = out_channels
        self.out_channels = in_channels

    def forward(self, x: Sequence[torch.Tensor], proposals: Sequence[BoxList]) -> torch.Tensor:
        channels_last = x[0].is_contiguous(memory_format=torch.channels_last) and not x[0].is_contiguous()
        x = self.pooler(x, proposals)
        if channels_last:  # keep the convolutions in the layout of the feature maps
            x = x.contiguous(memory_format=torch.channels_last)
        for name in self.blocks:
            x = F.relu_(getattr(self, name)(x))
        return x
