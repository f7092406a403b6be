"""KeypointRCNNFeatureExtractor: pool 14x14, then conv_fcn1..8 (3x3 conv 512 + ReLU each)."""
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ....layers.misc import Conv2d
from ....structures.bounding_box import BoxList
from ... import registry
from ...poolers import Pooler, make_pooler


class KeypointRCNNFeatureExtractor(nn.Module):
    def __init__(self, pooler: Pooler, in_channels: int, conv_layers: Sequence[int]):
        super().__init__()
        self.pooler = pooler
        self.blocks = []
        for idx, out_channels in enumerate(conv_layers, 1):
            name = f"conv_fcn{idx}"
            conv = Conv2d(in_channels, out_channels, 3, stride=1, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(conv.bias, 0)
            self.add_module(name, conv)
            self.blocks.append(name)
            in_channels = out_channels
        self.out_channels = in_channels

    def forward(self, x: Sequence[torch.Tensor], proposals: Sequence[BoxList]) -> torch.Tensor:
        x = self.pooler(x, proposals)
        for name in self.blocks:
            x = F.relu(getattr(self, name)(x))
        return x


@registry.ROI_KEYPOINT_FEATURE_EXTRACTORS.register("KeypointRCNNFeatureExtractor")
def build_keypoint_extractor(cfg, in_channels: int) -> KeypointRCNNFeatureExtractor:
    return KeypointRCNNFeatureExtractor(
        make_pooler(cfg, "ROI_KEYPOINT_HEAD"), in_channels, cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_LAYERS
    )


def make_roi_keypoint_feature_extractor(cfg, in_channels: int) -> nn.Module:
    return registry.ROI_KEYPOINT_FEATURE_EXTRACTORS[cfg.MODEL.ROI_KEYPOINT_HEAD.FEATURE_EXTRACTOR](cfg, in_channels)
