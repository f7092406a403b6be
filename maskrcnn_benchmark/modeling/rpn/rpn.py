"""The region proposal network: head + anchors + proposal selection + loss.

RPNModule.forward(images: ImageList, features: list of [N, C, H_l, W_l], targets=None) returns
(proposals: one BoxList per image with field "objectness", losses: {"loss_objectness",
"loss_rpn_box_reg"} in training, {} otherwise).
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ...config import CfgNode
from ...config.cfg_constructor import cfg_constructor
from ...layers.misc import Conv2d
from ...structures.bounding_box import BoxList
from ...structures.image_list import ImageList
from .. import registry
from ..box_coder import BoxCoder
from .anchor_generator import AnchorGenerator, make_anchor_generator
from .inference import RPNPostProcessor, make_rpn_postprocessor
from .loss import RPNLossComputation, make_rpn_loss_evaluator
from .retinanet.retinanet import build_retinanet


def _rpn_head_arguments(cfg: CfgNode, in_channels: int, num_anchors: int) -> dict:
    return dict(in_channels=in_channels, num_anchors=num_anchors)


@cfg_constructor(_rpn_head_arguments)
class RPNHead(nn.Module):
    """Shared 3x3 conv + ReLU, then 1x1 convs for A objectness logits and 4A box deltas per level.
    Also takes the original's (cfg, in_channels, num_anchors)."""

    def __init__(self, in_channels: int, num_anchors: int):
        super().__init__()
        self.conv = Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)
        self.cls_logits = Conv2d(in_channels, num_anchors, kernel_size=1, stride=1)
        self.bbox_pred = Conv2d(in_channels, num_anchors * 4, kernel_size=1, stride=1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    def forward(self, x: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        logits, bbox_reg = [], []
        for feature in x:
            t = F.relu_(self.conv(feature))
            logits.append(self.cls_logits(t))
            bbox_reg.append(self.bbox_pred(t))
        return logits, bbox_reg


class RPNHeadConvRegressor(nn.Module):
    """Only the two 1x1 convs of RPNHead (A objectness logits, 4A deltas) on each feature map; for
    heads whose features come from elsewhere (FBNet's RPN blocks)."""

    def __init__(self, cfg: Optional[CfgNode], in_channels: int, num_anchors: int):
        super().__init__()
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1, stride=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1, stride=1)
        for layer in (self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    def forward(self, x: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        if not isinstance(x, (list, tuple)):
            raise TypeError(f"RPNHeadConvRegressor expects a list of feature maps, got {type(x).__name__}")
        return [self.cls_logits(f) for f in x], [self.bbox_pred(f) for f in x]


class RPNHeadFeatureSingleConv(nn.Module):
    """Only the shared 3x3 conv + ReLU of RPNHead, on each feature map (out_channels = in_channels)."""

    def __init__(self, cfg: Optional[CfgNode], in_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)
        nn.init.normal_(self.conv.weight, std=0.01)
        nn.init.constant_(self.conv.bias, 0)
        self.out_channels = in_channels

    def forward(self, x: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        if not isinstance(x, (list, tuple)):
            raise TypeError(f"RPNHeadFeatureSingleConv expects a list of feature maps, got {type(x).__name__}")
        return [F.relu(self.conv(f)) for f in x]


@registry.RPN_HEADS.register("SingleConvRPNHead")
def build_single_conv_rpn_head(cfg: CfgNode, in_channels: int, num_anchors: int) -> RPNHead:
    return RPNHead(in_channels, num_anchors)


def rpn_module_arguments(cfg: CfgNode, in_channels: int) -> dict:
    anchor_generator = make_anchor_generator(cfg)
    head = registry.RPN_HEADS[cfg.MODEL.RPN.RPN_HEAD](cfg, in_channels, anchor_generator.num_anchors_per_location()[0])
    box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    return dict(
        anchor_generator=anchor_generator,
        head=head,
        box_selector_train=make_rpn_postprocessor(cfg, box_coder, is_train=True),
        box_selector_test=make_rpn_postprocessor(cfg, box_coder, is_train=False),
        loss_evaluator=make_rpn_loss_evaluator(cfg, box_coder),
        rpn_only=cfg.MODEL.RPN_ONLY,
    )


@cfg_constructor(rpn_module_arguments)  # RPNModule(cfg, in_channels), as the original
class RPNModule(nn.Module):
    def __init__(
        self,
        anchor_generator: AnchorGenerator,
        head: nn.Module,
        box_selector_train: RPNPostProcessor,
        box_selector_test: RPNPostProcessor,
        loss_evaluator: RPNLossComputation,
        rpn_only: bool = False,
    ):
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_selector_train = box_selector_train
        self.box_selector_test = box_selector_test
        self.loss_evaluator = loss_evaluator
        self.rpn_only = rpn_only

    def forward(
        self, images: ImageList, features: Sequence[torch.Tensor], targets: Optional[Sequence[BoxList]] = None
    ) -> Tuple[List[BoxList], Dict[str, torch.Tensor]]:
        objectness, rpn_box_regression = self.head(features)
        anchors = self.anchor_generator(images, features)
        if self.training:
            return self._forward_train(anchors, objectness, rpn_box_regression, targets)
        return self._forward_test(anchors, objectness, rpn_box_regression)

    def _forward_train(self, anchors, objectness, rpn_box_regression, targets):
        if targets is None:
            raise ValueError("In training mode, targets should be passed")
        if self.rpn_only:
            # An RPN-only model is trained on its loss alone; proposals are not needed.
            boxes = anchors
        else:
            with torch.no_grad():
                boxes = self.box_selector_train(anchors, objectness, rpn_box_regression, targets)
        loss_objectness, loss_rpn_box_reg = self.loss_evaluator(anchors, objectness, rpn_box_regression, targets)
        return boxes, {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_rpn_box_reg}

    def _forward_test(self, anchors, objectness, rpn_box_regression):
        boxes = self.box_selector_test(anchors, objectness, rpn_box_regression)
        if self.rpn_only:
            # Proposals are the final output: sort by objectness, highest first.
            boxes = [box[box.get_field("objectness").sort(descending=True).indices] for box in boxes]
        return boxes, {}


def build_rpn(cfg: CfgNode, in_channels: int) -> nn.Module:
    """RPNModule from cfg.MODEL.RPN (RetinaNet when cfg.MODEL.RETINANET_ON)."""
    if cfg.MODEL.RETINANET_ON:
        return build_retinanet(cfg, in_channels)
    return RPNModule(cfg, in_channels)
