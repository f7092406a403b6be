"""Mask predictors (MODEL.ROI_MASK_HEAD.PREDICTOR): features -> [K, num_classes, M, M] logits."""

import torch
from torch import nn
from torch.nn import functional as F

from ....config import CfgNode
from ....config.cfg_constructor import cfg_constructor
from ....layers.misc import Conv2d, ConvTranspose2d
from ... import registry


def _init_msra(module: nn.Module) -> None:
    for name, param in module.named_parameters():
        if "bias" in name:
            nn.init.constant_(param, 0)
        elif "weight" in name:
            # Caffe2's MSRAFill for the mask head.
            nn.init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")


def mask_c4_predictor_arguments(cfg: CfgNode, in_channels: int) -> dict:
    return dict(
        in_channels=in_channels,
        dim_reduced=cfg.MODEL.ROI_MASK_HEAD.CONV_LAYERS[-1],
        num_classes=cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES,
    )


def mask_conv1x1_predictor_arguments(cfg: CfgNode, in_channels: int) -> dict:
    return dict(in_channels=in_channels, num_classes=cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES)


# Both also take the original's (cfg, in_channels).
@cfg_constructor(mask_c4_predictor_arguments)
class MaskRCNNC4Predictor(nn.Module):
    """2x2 stride-2 deconv + ReLU (doubles the resolution), then a 1x1 conv to per-class logits."""

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int):
        super().__init__()
        self.conv5_mask = ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0)
        self.mask_fcn_logits = Conv2d(dim_reduced, num_classes, 1, 1, 0)
        _init_msra(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask_fcn_logits(F.relu(self.conv5_mask(x)))


@cfg_constructor(mask_conv1x1_predictor_arguments)
class MaskRCNNConv1x1Predictor(nn.Module):
    """A single 1x1 conv to per-class logits (no upsampling)."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.mask_fcn_logits = Conv2d(in_channels, num_classes, 1, 1, 0)
        _init_msra(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask_fcn_logits(x)


@registry.ROI_MASK_PREDICTOR.register("MaskRCNNC4Predictor")
def build_mask_c4_predictor(cfg: CfgNode, in_channels: int) -> MaskRCNNC4Predictor:
    return MaskRCNNC4Predictor(cfg, in_channels)


@registry.ROI_MASK_PREDICTOR.register("MaskRCNNConv1x1Predictor")
def build_mask_conv1x1_predictor(cfg: CfgNode, in_channels: int) -> MaskRCNNConv1x1Predictor:
    return MaskRCNNConv1x1Predictor(cfg, in_channels)


def make_roi_mask_predictor(cfg: CfgNode, in_channels: int) -> nn.Module:
    return registry.ROI_MASK_PREDICTOR[cfg.MODEL.ROI_MASK_HEAD.PREDICTOR](cfg, in_channels)
