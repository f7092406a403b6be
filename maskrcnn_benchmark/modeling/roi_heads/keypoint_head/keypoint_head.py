"""ROIKeypointHead: keypoints for sampled positive proposals in training, for detections in inference."""

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ....config import CfgNode
from ....config.cfg_constructor import cfg_constructor
from ....structures.bounding_box import BoxList
from .inference import KeypointPostProcessor, make_roi_keypoint_post_processor
from .loss import KeypointRCNNLossComputation, make_roi_keypoint_loss_evaluator
from .roi_keypoint_feature_extractors import make_roi_keypoint_feature_extractor
from .roi_keypoint_predictors import make_roi_keypoint_predictor


def roi_keypoint_head_arguments(cfg: CfgNode, in_channels: int) -> dict:
    feature_extractor = make_roi_keypoint_feature_extractor(cfg, in_channels)
    return dict(
        feature_extractor=feature_extractor,
        predictor=make_roi_keypoint_predictor(cfg, feature_extractor.out_channels),
        post_processor=make_roi_keypoint_post_processor(cfg),
        loss_evaluator=make_roi_keypoint_loss_evaluator(cfg),
        share_box_feature_extractor=cfg.MODEL.ROI_KEYPOINT_HEAD.SHARE_BOX_FEATURE_EXTRACTOR,
    )


@cfg_constructor(roi_keypoint_head_arguments)  # ROIKeypointHead(cfg, in_channels), as the original
class ROIKeypointHead(nn.Module):
    def __init__(
        self,
        feature_extractor: nn.Module,
        predictor: nn.Module,
        post_processor: KeypointPostProcessor,
        loss_evaluator: KeypointRCNNLossComputation,
        share_box_feature_extractor: bool = False,
    ):
        super().__init__()
        self.share_box_feature_extractor = share_box_feature_extractor
        self.feature_extractor = feature_extractor
        self.predictor = predictor
        self.post_processor = post_processor
        self.loss_evaluator = loss_evaluator

    def forward(
        self, features, proposals: List[BoxList], targets: Optional[List[BoxList]] = None
    ) -> Tuple[torch.Tensor, List[BoxList], Dict[str, torch.Tensor]]:
        if self.training and self.share_box_feature_extractor:
            raise NotImplementedError(
                "training with MODEL.ROI_KEYPOINT_HEAD.SHARE_BOX_FEATURE_EXTRACTOR True is not supported "
                "(nor was it in the original); set it to False"
            )
        if self.training:
            with torch.no_grad():
                proposals = self.loss_evaluator.subsample(proposals, targets)
        x = self.feature_extractor(features, proposals)
        kp_logits = self.predictor(x)
        if not self.training:
            return x, self.post_processor(kp_logits, proposals), {}
        return x, proposals, {"loss_kp": self.loss_evaluator(proposals, kp_logits)}


def build_roi_keypoint_head(cfg: CfgNode, in_channels: int) -> ROIKeypointHead:
    return ROIKeypointHead(cfg, in_channels)
