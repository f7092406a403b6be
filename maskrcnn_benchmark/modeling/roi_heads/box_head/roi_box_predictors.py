"""Box predictors: features -> (class logits [K, num_classes], box deltas [K, 4 * num_reg_classes]).

num_reg_classes is num_classes, or 2 (background, object) with MODEL.CLS_AGNOSTIC_BBOX_REG.
"""

from typing import Tuple

import torch
from torch import nn

from ....config import CfgNode
from ....config.cfg_constructor import cfg_constructor
from ... import registry


class _Predictor(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, cls_agnostic_bbox_reg: bool = False):
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, (2 if cls_agnostic_bbox_reg else num_classes) * 4)
        nn.init.normal_(self.cls_score.weight, mean=0, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, mean=0, std=0.001)
        for layer in (self.cls_score, self.bbox_pred):
            nn.init.constant_(layer.bias, 0)


def box_predictor_arguments(config: CfgNode, in_channels: int) -> dict:
    return dict(
        in_channels=in_channels,
        num_classes=config.MODEL.ROI_BOX_HEAD.NUM_CLASSES,
        cls_agnostic_bbox_reg=config.MODEL.CLS_AGNOSTIC_BBOX_REG,
    )


def _fpn_predictor_arguments(cfg: CfgNode, in_channels: int) -> dict:
    return box_predictor_arguments(cfg, in_channels)  # the original named its first parameter cfg here


# Both also take the original's (cfg, in_channels).
@cfg_constructor(box_predictor_arguments)
class FastRCNNPredictor(_Predictor):
    """C4: global average pooling of [K, C, H, W], then the two linear layers."""

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = x.mean(dim=(2, 3))
        return self.cls_score(x), self.bbox_pred(x)


@cfg_constructor(_fpn_predictor_arguments)
class FPNPredictor(_Predictor):
    """FPN: the two linear layers on [K, C] (or [K, C, 1, 1]) features."""

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if x.ndimension() == 4:
            if tuple(x.shape[2:]) != (1, 1):
                raise ValueError(f"FPNPredictor expects [K, C] or [K, C, 1, 1] features, got {tuple(x.shape)}")
            x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


@registry.ROI_BOX_PREDICTOR.register("FastRCNNPredictor")
def build_fast_rcnn_predictor(cfg: CfgNode, in_channels: int) -> FastRCNNPredictor:
    return FastRCNNPredictor(cfg, in_channels)


@registry.ROI_BOX_PREDICTOR.register("FPNPredictor")
def build_fpn_predictor(cfg: CfgNode, in_channels: int) -> FPNPredictor:
    return FPNPredictor(cfg, in_channels)


def make_roi_box_predictor(cfg: CfgNode, in_channels: int) -> nn.Module:
    return registry.ROI_BOX_PREDICTOR[cfg.MODEL.ROI_BOX_HEAD.PREDICTOR](cfg, in_channels)
