"""KeypointRCNNPredictor: 4x4 stride-2 deconv to one map per keypoint, then 2x bilinear upsampling
(14x14 features -> 28x28 -> 56x56 heat-map logits)."""

import torch
from torch import nn
from torch.nn import functional as F

from ....config import CfgNode
from ....config.cfg_constructor import cfg_constructor
from ....layers.misc import ConvTranspose2d
from ... import registry


def keypoint_predictor_arguments(cfg: CfgNode, in_channels: int) -> dict:
    return dict(in_channels=in_channels, num_keypoints=cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_CLASSES)


@cfg_constructor(keypoint_predictor_arguments)  # KeypointRCNNPredictor(cfg, in_channels), as the original
class KeypointRCNNPredictor(nn.Module):
    def __init__(self, in_channels: int, num_keypoints: int):
        super().__init__()
        kernel = 4
        self.kps_score_lowres = ConvTranspose2d(in_channels, num_keypoints, kernel, stride=2, padding=kernel // 2 - 1)
        nn.init.kaiming_normal_(self.kps_score_lowres.weight, mode="fan_out", nonlinearity="relu")
        nn.init.constant_(self.kps_score_lowres.bias, 0)
        self.up_scale = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.kps_score_lowres(x)
        return F.interpolate(x, scale_factor=self.up_scale, mode="bilinear", align_corners=False)


@registry.ROI_KEYPOINT_PREDICTOR.register("KeypointRCNNPredictor")
def build_keypoint_predictor(cfg: CfgNode, in_channels: int) -> KeypointRCNNPredictor:
    return KeypointRCNNPredictor(cfg, in_channels)


def make_roi_keypoint_predictor(cfg: CfgNode, in_channels: int) -> nn.Module:
    return registry.ROI_KEYPOINT_PREDICTOR[cfg.MODEL.ROI_KEYPOINT_HEAD.PREDICTOR](cfg, in_channels)
