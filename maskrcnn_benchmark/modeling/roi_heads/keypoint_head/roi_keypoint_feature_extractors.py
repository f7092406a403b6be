"""KeypointRCNNFeatureExtractor: pool 14x14, then conv_fcn1..8 (3x3 conv 512 + ReLU each)."""

from typing import Sequence

from torch import nn

from ....config import CfgNode
from ....config.cfg_constructor import cfg_constructor
from ... import registry
from ...poolers import Pooler, make_pooler
from ..conv_feature_extractor import PooledConvStack


def keypoint_extractor_arguments(cfg: CfgNode, in_channels: int) -> dict:
    return dict(
        pooler=make_pooler(cfg, "ROI_KEYPOINT_HEAD"),
        in_channels=in_channels,
        conv_layers=cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_LAYERS,
    )


@cfg_constructor(keypoint_extractor_arguments)
class KeypointRCNNFeatureExtractor(PooledConvStack):
    """Pool 14x14, then conv_fcn1..N. Also takes the original's (cfg, in_channels)."""

    def __init__(self, pooler: Pooler, in_channels: int, conv_layers: Sequence[int]):
        super().__init__(pooler, in_channels, conv_layers, "conv_fcn")


@registry.ROI_KEYPOINT_FEATURE_EXTRACTORS.register("KeypointRCNNFeatureExtractor")
def build_keypoint_extractor(cfg: CfgNode, in_channels: int) -> KeypointRCNNFeatureExtractor:
    return KeypointRCNNFeatureExtractor(cfg, in_channels)


def make_roi_keypoint_feature_extractor(cfg: CfgNode, in_channels: int) -> nn.Module:
    return registry.ROI_KEYPOINT_FEATURE_EXTRACTORS[cfg.MODEL.ROI_KEYPOINT_HEAD.FEATURE_EXTRACTOR](cfg, in_channels)
