"""CombinedROIHeads: the box head, then the mask and keypoint heads on its output.

forward(features, proposals, targets=None) -> (x, detections, losses): in training `detections`
are the box head's sampled proposals and losses hold every head's terms; in inference they are the
final detections with "scores", "labels" and, when enabled, "mask" / "keypoints".
"""

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ...config import CfgNode
from ...config.cfg_constructor import cfg_constructor
from ...structures.bounding_box import BoxList
from .box_head.box_head import build_roi_box_head
from .keypoint_head.keypoint_head import build_roi_keypoint_head
from .mask_head.mask_head import build_roi_mask_head


def combined_roi_heads_arguments(cfg: CfgNode, heads) -> dict:
    return dict(
        heads=heads,
        share_mask_features=cfg.MODEL.MASK_ON and cfg.MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR,
        share_keypoint_features=cfg.MODEL.KEYPOINT_ON and cfg.MODEL.ROI_KEYPOINT_HEAD.SHARE_BOX_FEATURE_EXTRACTOR,
    )


@cfg_constructor(combined_roi_heads_arguments)
class CombinedROIHeads(nn.ModuleDict):
    """A ModuleDict with keys "box", "mask", "keypoint" (those that are enabled). `CombinedROIHeads(cfg,
    heads)`, as the original, takes the sharing of feature extractors from the config."""

    def __init__(self, heads, share_mask_features: bool = False, share_keypoint_features: bool = False):
        super().__init__(heads)
        # Sharing registers the same module under both heads (so C4 Mask R-CNN checkpoints list
        # the res5 weights twice, as the original's did).
        if "mask" in self and share_mask_features:
            self.mask.feature_extractor = self.box.feature_extractor
        if "keypoint" in self and share_keypoint_features:
            self.keypoint.feature_extractor = self.box.feature_extractor
        self.share_mask_features = share_mask_features
        self.share_keypoint_features = share_keypoint_features

    def forward(
        self, features, proposals: List[BoxList], targets: Optional[List[BoxList]] = None
    ) -> Tuple[torch.Tensor, List[BoxList], Dict[str, torch.Tensor]]:
        losses = {}
        x, detections, loss_box = self.box(features, proposals, targets)
        losses.update(loss_box)
        if "mask" in self:
            # With a shared extractor, training reuses the box head's features of the sampled RoIs.
            mask_features = x if (self.training and self.share_mask_features) else features
            x, detections, loss_mask = self.mask(mask_features, detections, targets)
            losses.update(loss_mask)
        if "keypoint" in self:
            keypoint_features = x if (self.training and self.share_keypoint_features) else features
            x, detections, loss_keypoint = self.keypoint(keypoint_features, detections, targets)
            losses.update(loss_keypoint)
        return x, detections, losses


def build_roi_heads(cfg: CfgNode, in_channels: int):
    """CombinedROIHeads for the enabled heads, or [] for RPN-only and RetinaNet models."""
    if cfg.MODEL.RETINANET_ON or cfg.MODEL.RPN_ONLY:
        return []
    heads = [("box", build_roi_box_head(cfg, in_channels))]
    if cfg.MODEL.MASK_ON:
        heads.append(("mask", build_roi_mask_head(cfg, in_channels)))
    if cfg.MODEL.KEYPOINT_ON:
        heads.append(("keypoint", build_roi_keypoint_head(cfg, in_channels)))
    return CombinedROIHeads(cfg, heads)
