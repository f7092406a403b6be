"""Feature pyramid network on top of a ResNet body.

Input: the body's feature maps, finest first (C2..C5 at strides 4..32). Output: a tuple of maps with
`out_channels` channels each, finest first: P2..P5, then what the top block adds (P6 by max-pool
for Faster/Mask R-CNN, or P6 and P7 by strided convs for RetinaNet). Parameter names follow the
original: fpn_inner{k} (1x1 laterals), fpn_layer{k} (3x3 outputs), top_blocks.p6 / p7.
"""

from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ...layers.misc import Conv2d


class LastLevelMaxPool(nn.Module):
    """P6 = max_pool(P5, kernel 1, stride 2) (subsampling, as in Detectron)."""

    def forward(self, p5: torch.Tensor) -> List[torch.Tensor]:
        return [F.max_pool2d(p5, kernel_size=1, stride=2, padding=0)]


class LastLevelP6P7(nn.Module):
    """RetinaNet's P6 = conv3x3/2(C5 or P5), P7 = conv3x3/2(relu(P6)). P5 is used when
    in_channels == out_channels (the "P5" configs), C5 otherwise."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.p6 = Conv2d(in_channels, out_channels, 3, 2, 1)
        self.p7 = Conv2d(out_channels, out_channels, 3, 2, 1)
        for module in (self.p6, self.p7):
            nn.init.kaiming_uniform_(module.weight, a=1)
            nn.init.constant_(module.bias, 0)
        self.use_p5 = in_channels == out_channels

    def forward(self, c5: torch.Tensor, p5: torch.Tensor) -> List[torch.Tensor]:
        p6 = self.p6(p5 if self.use_p5 else c5)
        return [p6, self.p7(F.relu(p6))]


class FPN(nn.Module):
    """Top-down pathway with lateral connections.

    in_channels_list: channels of each body output, finest first; a 0 entry means "this level has
    no lateral" (RetinaNet starts at C3). conv_block(in, out, kernel_size, stride=1) builds the convs.
    """

    def __init__(
        self,
        in_channels_list: Sequence[int],
        out_channels: int,
        conv_block: Callable[..., nn.Module],
        top_blocks: Optional[nn.Module] = None,
    ):
        super().__init__()
        self.inner_blocks: List[str] = []
        self.layer_blocks: List[str] = []
        for idx, in_channels in enumerate(in_channels_list, 1):
            if in_channels == 0:
                continue
            self.add_module(f"fpn_inner{idx}", conv_block(in_channels, out_channels, 1))
            self.add_module(f"fpn_layer{idx}", conv_block(out_channels, out_channels, 3, 1))
            self.inner_blocks.append(f"fpn_inner{idx}")
            self.layer_blocks.append(f"fpn_layer{idx}")
        self.top_blocks = top_blocks
        self.out_channels = out_channels

    def forward(self, x: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        # Levels without a lateral (leading zeros of in_channels_list) are skipped.
        features = list(x)[len(x) - len(self.inner_blocks) :]
        last_inner = getattr(self, self.inner_blocks[-1])(features[-1])
        results = [getattr(self, self.layer_blocks[-1])(last_inner)]
        for feature, inner, layer in zip(features[-2::-1], self.inner_blocks[-2::-1], self.layer_blocks[-2::-1]):
            lateral = getattr(self, inner)(feature)
            # Nearest 2x upsampling to the lateral's exact size: equals the original's
            # scale_factor=2 for sizes divisible by 32, and also works for other sizes.
            top_down = F.interpolate(last_inner, size=lateral.shape[-2:], mode="nearest")
            last_inner = lateral.add_(top_down)
            results.insert(0, getattr(self, layer)(last_inner))

        if isinstance(self.top_blocks, LastLevelP6P7):
            results.extend(self.top_blocks(x[-1], results[-1]))
        elif self.top_blocks is not None:
            results.extend(self.top_blocks(results[-1]))
        return tuple(results)
