"""KeypointRCNNFeatureExtractor: pool 14x14, then conv_fcn1..8 (3x3 conv 512 + ReLU each)."""

from typing import Sequence

from torch import nn

from ....config import CfgNode
from ... import registry
from ...poolers import Pooler, make_pooler
from ..conv_feature_extractor import PooledConvStack


class KeypointRCNNFeatureExtractor(PooledConvStack):
    """Pool 14x14, then conv_fcn1..N."""

    def __init__(self, pooler: Pooler, in_channels: int, conv_layers: Sequence[int]):
        super().__init__(pooler, in_channels, conv_layers, "conv_fcn")


@registry.ROI_KEYPOINT_FEATURE_EXTRACTORS.register("KeypointRCNNFeatureExtractor")
def build_keypoint_extractor(cfg: CfgNode, in_channels: int) -> KeypointRCNNFeatureExtractor:
    return KeypointRCNNFeatureExtractor(
        make_pooler(cfg, "ROI_KEYPOINT_HEAD"), in_channels, cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_LAYERS
    )


def make_roi_keypoint_feature_extractor(cfg: CfgNode, in_channels: int) -> nn.Module:
    return registry.ROI_KEYPOINT_FEATURE_EXTRACTORS[cfg.MODEL.ROI_KEYPOINT_HEAD.FEATURE_EXTRACTOR](cfg, in_channels)
