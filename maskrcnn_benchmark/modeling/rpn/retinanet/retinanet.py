"""RetinaNet's head and module (MODEL.RETINANET_ON; the model is RPN_ONLY: no ROI heads).

RetinaNetModule.forward(images: ImageList, features: P3..P7 [N, C, H_l, W_l], targets=None):
- training: (anchors, {"loss_retina_cls", "loss_retina_reg"});
- inference: (one BoxList per image in network-input pixels with "scores" and "labels"
  (1..NUM_CLASSES-1), {}).

State_dict names are the original's: rpn.anchor_generator.cell_anchors.{l}, rpn.head.cls_tower.{0,2,..}
and bbox_tower.{0,2,..} (ReLUs at the odd indices), rpn.head.cls_logits, rpn.head.bbox_pred.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ....config import CfgNode
from ....config.cfg_constructor import cfg_constructor
from ....layers.misc import Conv2d
from ....structures.bounding_box import BoxList
from ....structures.image_list import ImageList
from ...box_coder import BoxCoder
from ..anchor_generator import AnchorGenerator, make_anchor_generator_retinanet
from .inference import RetinaNetPostProcessor, make_retinanet_postprocessor
from .loss import RetinaNetLossComputation, make_retinanet_loss_evaluator

# RetinaNet decodes and encodes its boxes with the box head's default weights.
RETINANET_BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def _tower(channels: int, num_convs: int) -> nn.Sequential:
    layers: List[nn.Module] = []
    for _ in range(num_convs):
        layers += [Conv2d(channels, channels, kernel_size=3, stride=1, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


def retinanet_head_arguments(cfg: CfgNode, in_channels: int) -> dict:
    r = cfg.MODEL.RETINANET
    return dict(
        in_channels=in_channels,
        num_anchors=make_anchor_generator_retinanet(cfg).num_anchors_per_location()[0],
        num_classes=r.NUM_CLASSES - 1,
        num_convs=r.NUM_CONVS,
        prior_prob=r.PRIOR_PROB,
    )


def retinanet_module_arguments(cfg: CfgNode, in_channels: int) -> dict:
    anchor_generator = make_anchor_generator_retinanet(cfg)
    box_coder = BoxCoder(weights=RETINANET_BOX_CODER_WEIGHTS)
    return dict(
        anchor_generator=anchor_generator,
        head=RetinaNetHead(cfg, in_channels),
        box_selector_test=make_retinanet_postprocessor(cfg, box_coder, is_train=False),
        loss_evaluator=make_retinanet_loss_evaluator(cfg, box_coder),
    )


# Both also take the original's (cfg, in_channels).
@cfg_constructor(retinanet_head_arguments)
class RetinaNetHead(nn.Module):
    """Two towers of `num_convs` 3x3 convs + ReLU shared by every level; then 3x3 convs giving
    num_anchors * num_classes logits (sigmoid, no background channel) and num_anchors * 4 deltas.

    Every conv weight is drawn from N(0, 0.01^2) with zero bias, except the classifier's bias,
    -log((1 - prior_prob) / prior_prob), so that every class starts at probability prior_prob.
    """

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int, num_convs: int, prior_prob: float):
        super().__init__()
        self.cls_tower = _tower(in_channels, num_convs)
        self.bbox_tower = _tower(in_channels, num_convs)
        self.cls_logits = Conv2d(in_channels, num_anchors * num_classes, kernel_size=3, stride=1, padding=1)
        self.bbox_pred = Conv2d(in_channels, num_anchors * 4, kernel_size=3, stride=1, padding=1)
        for module in (self.cls_tower, self.bbox_tower, self.cls_logits, self.bbox_pred):
            for layer in module.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.normal_(layer.weight, std=0.01)
                    nn.init.constant_(layer.bias, 0)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, x: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per level: logits [N, A * num_classes, H, W] and deltas [N, A * 4, H, W]."""
        logits, bbox_reg = [], []
        for feature in x:
            logits.append(self.cls_logits(self.cls_tower(feature)))
            bbox_reg.append(self.bbox_pred(self.bbox_tower(feature)))
        return logits, bbox_reg


@cfg_constructor(retinanet_module_arguments)
class RetinaNetModule(nn.Module):
    def __init__(
        self,
        anchor_generator: AnchorGenerator,
        head: RetinaNetHead,
        box_selector_test: RetinaNetPostProcessor,
        loss_evaluator: RetinaNetLossComputation,
    ):
        super().__init__()
        # Registration order fixes the state_dict order: anchors first, then the head.
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_selector_test = box_selector_test
        self.loss_evaluator = loss_evaluator

    def forward(
        self, images: ImageList, features: Sequence[torch.Tensor], targets: Optional[Sequence[BoxList]] = None
    ) -> Tuple[list, Dict[str, torch.Tensor]]:
        box_cls, box_regression = self.head(features)
        anchors = self.anchor_generator(images, features)
        if self.training:
            if targets is None:
                raise ValueError("In training mode, targets should be passed")
            loss_cls, loss_reg = self.loss_evaluator(anchors, box_cls, box_regression, targets)
            return anchors, {"loss_retina_cls": loss_cls, "loss_retina_reg": loss_reg}
        return self.box_selector_test(anchors, box_cls, box_regression), {}


def build_retinanet(cfg: CfgNode, in_channels: int) -> RetinaNetModule:
    """RetinaNetModule from cfg.MODEL.RETINANET; `in_channels` are the backbone's out_channels."""
    return RetinaNetModule(cfg, in_channels)
