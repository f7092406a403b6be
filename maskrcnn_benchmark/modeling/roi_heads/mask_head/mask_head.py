"""ROIMaskHead: masks for positive proposals in training, for detections in inference.

forward(features, proposals, targets=None) -> (x, proposals_or_detections, losses). In training
`proposals` are the box head's sampled proposals (field "labels"); only positives get masks, and
when the box head's feature extractor is shared, `features` are the box head's per-RoI features.
In inference the detections gain the field "mask".
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ....config import CfgNode
from ....config.cfg_constructor import cfg_constructor
from ....structures.bounding_box import BoxList
from ...utils import nonzero_per_segment
from .inference import MaskPostProcessor, make_roi_mask_post_processor
from .loss import MaskRCNNLossComputation, make_roi_mask_loss_evaluator
from .roi_mask_feature_extractors import make_roi_mask_feature_extractor
from .roi_mask_predictors import make_roi_mask_predictor


def keep_only_positive_boxes(boxes: Sequence[BoxList]) -> Tuple[List[BoxList], List[torch.Tensor]]:
    """Per image: the proposals with label > 0, and the bool mask that selected them."""
    positive_masks = [boxes_per_image.get_field("labels") > 0 for boxes_per_image in boxes]
    positive = nonzero_per_segment(positive_masks)  # one host read for the batch
    return [b[keep] for b, keep in zip(boxes, positive)], positive_masks


def roi_mask_head_arguments(cfg: CfgNode, in_channels: int) -> dict:
    feature_extractor = make_roi_mask_feature_extractor(cfg, in_channels)
    return dict(
        feature_extractor=feature_extractor,
        predictor=make_roi_mask_predictor(cfg, feature_extractor.out_channels),
        post_processor=make_roi_mask_post_processor(cfg),
        loss_evaluator=make_roi_mask_loss_evaluator(cfg),
        share_box_feature_extractor=cfg.MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR,
    )


@cfg_constructor(roi_mask_head_arguments)  # ROIMaskHead(cfg, in_channels), as the original
class ROIMaskHead(nn.Module):
    def __init__(
        self,
        feature_extractor: nn.Module,
        predictor: nn.Module,
        post_processor: MaskPostProcessor,
        loss_evaluator: MaskRCNNLossComputation,
        share_box_feature_extractor: bool = False,
    ):
        super().__init__()
        self.feature_extractor = feature_extractor
        self.predictor = predictor
        self.post_processor = post_processor
        self.loss_evaluator = loss_evaluator
        self.share_box_feature_extractor = share_box_feature_extractor

    def forward(
        self, features, proposals: List[BoxList], targets: Optional[List[BoxList]] = None
    ) -> Tuple[torch.Tensor, List[BoxList], Dict[str, torch.Tensor]]:
        if self.training:
            all_proposals = proposals
            proposals, positive_masks = keep_only_positive_boxes(proposals)
        if self.training and self.share_box_feature_extractor:
            num_positive = sum(len(p) for p in proposals)  # known on the host: no second read
            x = features[torch.nonzero_static(torch.cat(positive_masks), size=num_positive).squeeze(1)]
        else:
            x = self.feature_extractor(features, proposals)
        mask_logits = self.predictor(x)
        if not self.training:
            return x, self.post_processor(mask_logits, proposals), {}
        return x, all_proposals, {"loss_mask": self.loss_evaluator(proposals, mask_logits, targets)}


def build_roi_mask_head(cfg: CfgNode, in_channels: int) -> ROIMaskHead:
    return ROIMaskHead(cfg, in_channels)
