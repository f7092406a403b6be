"""ROIBoxHead: feature extractor + predictor, with sampling/loss in training and post-processing
in inference.

forward(features, proposals, targets=None) -> (x, detections_or_sampled_proposals, losses):
x is the extracted per-RoI features (the mask/keypoint heads may reuse them); in training the
second item is the sampled proposals (with "labels" and "regression_targets") and losses holds
loss_classifier and loss_box_reg; in inference it is the detections and losses is {}.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ....config import CfgNode
from ....config.cfg_constructor import cfg_constructor
from ....structures.bounding_box import BoxList
from .inference import PostProcessor, make_roi_box_post_processor
from .loss import FastRCNNLossComputation, make_roi_box_loss_evaluator
from .roi_box_feature_extractors import make_roi_box_feature_extractor
from .roi_box_predictors import make_roi_box_predictor


def roi_box_head_arguments(cfg: CfgNode, in_channels: int) -> dict:
    feature_extractor = make_roi_box_feature_extractor(cfg, in_channels)
    return dict(
        feature_extractor=feature_extractor,
        predictor=make_roi_box_predictor(cfg, feature_extractor.out_channels),
        post_processor=make_roi_box_post_processor(cfg),
        loss_evaluator=make_roi_box_loss_evaluator(cfg),
    )


@cfg_constructor(roi_box_head_arguments)  # ROIBoxHead(cfg, in_channels), as the original
class ROIBoxHead(nn.Module):
    def __init__(
        self,
        feature_extractor: nn.Module,
        predictor: nn.Module,
        post_processor: PostProcessor,
        loss_evaluator: FastRCNNLossComputation,
    ):
        super().__init__()
        self.feature_extractor = feature_extractor
        self.predictor = predictor
        self.post_processor = post_processor
        self.loss_evaluator = loss_evaluator

    def forward(
        self, features: Sequence[torch.Tensor], proposals: List[BoxList], targets: Optional[List[BoxList]] = None
    ) -> Tuple[torch.Tensor, List[BoxList], Dict[str, torch.Tensor]]:
        if self.training:
            with torch.no_grad():
                proposals = self.loss_evaluator.subsample(proposals, targets)
        x = self.feature_extractor(features, proposals)
        class_logits, box_regression = self.predictor(x)
        if not self.training:
            return x, self.post_processor((class_logits, box_regression), proposals), {}
        loss_classifier, loss_box_reg = self.loss_evaluator([class_logits], [box_regression])
        return x, proposals, {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}


def build_roi_box_head(cfg: CfgNode, in_channels: int) -> ROIBoxHead:
    return ROIBoxHead(cfg, in_channels)
