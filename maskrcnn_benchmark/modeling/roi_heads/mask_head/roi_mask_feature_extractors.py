"""Mask-head feature extractors (MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR).

MaskRCNNFPNFeatureExtractor: pool 14x14, then mask_fcn1..N (3x3 conv + ReLU each).
ResNet50Conv5ROIFeatureExtractor: the C4 res5 head (normally shared with the box head).
"""

from typing import Sequence

from torch import nn

from ....config import CfgNode
from ....config.cfg_constructor import cfg_constructor
from ... import registry
from ...make_layers import gn_factory
from ...poolers import Pooler, make_pooler
from ..box_head.roi_box_feature_extractors import ResNet50Conv5ROIFeatureExtractor, res5_head
from ..conv_feature_extractor import PooledConvStack


def mask_fpn_extractor_arguments(cfg: CfgNode, in_channels: int) -> dict:
    head = cfg.MODEL.ROI_MASK_HEAD
    return dict(
        pooler=make_pooler(cfg, "ROI_MASK_HEAD"),
        in_channels=in_channels,
        conv_layers=head.CONV_LAYERS,
        dilation=head.DILATION,
        use_gn=head.USE_GN,
        norm=gn_factory(cfg.MODEL.GROUP_NORM),
    )


@cfg_constructor(mask_fpn_extractor_arguments)
class MaskRCNNFPNFeatureExtractor(PooledConvStack):
    """Pool 14x14, then mask_fcn1..N. Also takes the original's (cfg, in_channels)."""

    def __init__(
        self,
        pooler: Pooler,
        in_channels: int,
        conv_layers: Sequence[int],
        dilation: int = 1,
        use_gn: bool = False,
        norm=None,
    ):
        super().__init__(pooler, in_channels, conv_layers, "mask_fcn", dilation, use_gn, norm)


@registry.ROI_MASK_FEATURE_EXTRACTORS.register("MaskRCNNFPNFeatureExtractor")
def build_mask_fpn_extractor(cfg: CfgNode, in_channels: int) -> MaskRCNNFPNFeatureExtractor:
    return MaskRCNNFPNFeatureExtractor(cfg, in_channels)


@registry.ROI_MASK_FEATURE_EXTRACTORS.register("ResNet50Conv5ROIFeatureExtractor")
def build_mask_res5_extractor(cfg: CfgNode, in_channels: int) -> ResNet50Conv5ROIFeatureExtractor:
    return ResNet50Conv5ROIFeatureExtractor(
        make_pooler(cfg, "ROI_MASK_HEAD"), res5_head(cfg, cfg.MODEL.ROI_MASK_HEAD.DILATION)
    )


def make_roi_mask_feature_extractor(cfg: CfgNode, in_channels: int) -> nn.Module:
    return registry.ROI_MASK_FEATURE_EXTRACTORS[cfg.MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR](cfg, in_channels)
