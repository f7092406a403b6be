"""Box-head feature extractors: pooled RoI features -> a vector (FPN) or a map (C4) per RoI.

Registered names (MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR): ResNet50Conv5ROIFeatureExtractor (C4:
the res5 stage on 14x14 pooled features), FPN2MLPFeatureExtractor (two fully connected layers),
FPNXconv1fcFeatureExtractor (stacked 3x3 convs, then one fully connected layer).
"""

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ....config import CfgNode
from ....config.cfg_constructor import cfg_constructor
from ....layers.misc import Conv2d
from ....structures.bounding_box import BoxList
from ... import registry
from ...backbone.backbone import block_and_norm
from ...backbone.resnet import ResNetHead, StageSpec
from ...make_layers import gn_factory, make_fc
from ...poolers import Pooler, make_pooler


def res5_head(cfg: CfgNode, dilation: int = 1) -> ResNetHead:
    """The res5 stage for C4 heads, with the body's block type and norm."""
    r = cfg.MODEL.RESNETS
    block, norm = block_and_norm(cfg, cfg.MODEL.BACKBONE.CONV_BODY)
    block_count = 2 if cfg.MODEL.BACKBONE.CONV_BODY.startswith("R-18-") else 3
    return ResNetHead(
        block_module=block,
        stages=(StageSpec(index=4, block_count=block_count, return_features=False),),
        norm=norm,
        num_groups=r.NUM_GROUPS,
        width_per_group=r.WIDTH_PER_GROUP,
        stride_in_1x1=r.STRIDE_IN_1X1,
        res2_out_channels=r.RES2_OUT_CHANNELS,
        dilation=dilation,
    )


def resnet50_conv5_arguments(config: CfgNode, in_channels: int) -> dict:
    return dict(pooler=make_pooler(config, "ROI_BOX_HEAD"), head=res5_head(config, config.MODEL.RESNETS.RES5_DILATION))


def fpn2mlp_arguments(cfg: CfgNode, in_channels: int) -> dict:
    head = cfg.MODEL.ROI_BOX_HEAD
    return dict(
        pooler=make_pooler(cfg, "ROI_BOX_HEAD"),
        input_size=in_channels * head.POOLER_RESOLUTION**2,
        representation_size=head.MLP_HEAD_DIM,
        use_gn=head.USE_GN,
        norm=gn_factory(cfg.MODEL.GROUP_NORM),
    )


def fpn_xconv1fc_arguments(cfg: CfgNode, in_channels: int) -> dict:
    head = cfg.MODEL.ROI_BOX_HEAD
    return dict(
        pooler=make_pooler(cfg, "ROI_BOX_HEAD"),
        in_channels=in_channels,
        resolution=head.POOLER_RESOLUTION,
        conv_head_dim=head.CONV_HEAD_DIM,
        num_convs=head.NUM_STACKED_CONVS,
        mlp_head_dim=head.MLP_HEAD_DIM,
        dilation=head.DILATION,
        use_gn=head.USE_GN,
        norm=gn_factory(cfg.MODEL.GROUP_NORM),
    )


# Each extractor also takes the original's (cfg, in_channels).
@cfg_constructor(resnet50_conv5_arguments)
class ResNet50Conv5ROIFeatureExtractor(nn.Module):
    """Pool at 1/16, then res5 (`head.layer4`, stride 2): [K, 2048, 7, 7] for 14x14 pooling."""

    def __init__(self, pooler: Pooler, head: ResNetHead):
        super().__init__()
        self.pooler = pooler
        self.head = head
        self.out_channels = head.out_channels

    def forward(self, x: Sequence[torch.Tensor], proposals: Sequence[BoxList]) -> torch.Tensor:
        return self.head(self.pooler(x, proposals))


@cfg_constructor(fpn2mlp_arguments)
class FPN2MLPFeatureExtractor(nn.Module):
    """Pool [K, C, R, R], flatten, fc6 + ReLU, fc7 + ReLU -> [K, representation_size]."""

    def __init__(self, pooler: Pooler, input_size: int, representation_size: int, use_gn: bool = False, norm=None):
        super().__init__()
        self.pooler = pooler
        self.fc6 = make_fc(input_size, representation_size, use_gn, norm)
        self.fc7 = make_fc(representation_size, representation_size, use_gn, norm)
        self.out_channels = representation_size

    def forward(self, x: Sequence[torch.Tensor], proposals: Sequence[BoxList]) -> torch.Tensor:
        x = self.pooler(x, proposals).flatten(1)
        return F.relu_(self.fc7(F.relu_(self.fc6(x))))


@cfg_constructor(fpn_xconv1fc_arguments)
class FPNXconv1fcFeatureExtractor(nn.Module):
    """Pool, num_convs x (3x3 conv [+ GN] + ReLU), flatten, fc6 + ReLU -> [K, mlp_head_dim]."""

    def __init__(
        self,
        pooler: Pooler,
        in_channels: int,
        resolution: int,
        conv_head_dim: int,
        num_convs: int,
        mlp_head_dim: int,
        dilation: int = 1,
        use_gn: bool = False,
        norm=None,
    ):
        super().__init__()
        self.pooler = pooler
        layers = []
        for _ in range(num_convs):
            conv = Conv2d(in_channels, conv_head_dim, 3, stride=1, padding=dilation, dilation=dilation, bias=not use_gn)
            nn.init.normal_(conv.weight, std=0.01)
            if not use_gn:
                nn.init.constant_(conv.bias, 0)
            layers.append(conv)
            if use_gn:
                layers.append((norm or gn_factory())(conv_head_dim))
            layers.append(nn.ReLU(inplace=True))
            in_channels = conv_head_dim
        self.xconvs = nn.Sequential(*layers)
        self.fc6 = make_fc(conv_head_dim * resolution**2, mlp_head_dim, use_gn=False)
        self.out_channels = mlp_head_dim

    def forward(self, x: Sequence[torch.Tensor], proposals: Sequence[BoxList]) -> torch.Tensor:
        x = self.xconvs(self.pooler(x, proposals)).flatten(1)
        return F.relu(self.fc6(x))


@registry.ROI_BOX_FEATURE_EXTRACTORS.register("ResNet50Conv5ROIFeatureExtractor")
def build_resnet50_conv5_extractor(cfg: CfgNode, in_channels: int) -> ResNet50Conv5ROIFeatureExtractor:
    return ResNet50Conv5ROIFeatureExtractor(cfg, in_channels)


@registry.ROI_BOX_FEATURE_EXTRACTORS.register("FPN2MLPFeatureExtractor")
def build_fpn2mlp_extractor(cfg: CfgNode, in_channels: int) -> FPN2MLPFeatureExtractor:
    return FPN2MLPFeatureExtractor(cfg, in_channels)


@registry.ROI_BOX_FEATURE_EXTRACTORS.register("FPNXconv1fcFeatureExtractor")
def build_fpn_xconv1fc_extractor(cfg: CfgNode, in_channels: int) -> FPNXconv1fcFeatureExtractor:
    return FPNXconv1fcFeatureExtractor(cfg, in_channels)


def make_roi_box_feature_extractor(cfg: CfgNode, in_channels: int) -> nn.Module:
    return registry.ROI_BOX_FEATURE_EXTRACTORS[cfg.MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR](cfg, in_channels)
