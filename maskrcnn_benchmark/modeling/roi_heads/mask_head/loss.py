"""Mask targets and loss.

For each positive proposal, the matched ground-truth mask is cropped to the (float) proposal box
and resized to M x M (M = ROI_MASK_HEAD.RESOLUTION): polygons are shifted and scaled, then
rasterised; binary masks are cropped and resized bilinearly. The loss is the binary cross-entropy
of the logits of the ground-truth class against that target, mean over all M*M*num_pos pixels.
Without any positive proposal (e.g. images whose objects were all removed) the loss is 0.
"""
from typing import List, Sequence, Tuple

import torch
from torch.nn import functional as F

from ....structures.bounding_box import BoxList
from ...matcher import Matcher
from ...utils import cat
from ..matching import background_labels, match_proposals, nothing_to_match


def project_masks_on_boxes(segmentation_masks, proposals: BoxList, discretization_size: int) -> torch.Tensor:
    """[P, M, M] float32 targets of the P masks in `segmentation_masks` inside the P `proposals`."""
    M = discretization_size
    device = proposals.bbox.device
    proposals = proposals.convert("xyxy")
    if len(proposals) != len(segmentation_masks):
        raise ValueError(f"{len(segmentation_masks)} masks for {len(proposals)} proposals")
    masks = []
    for segmentation_mask, proposal in zip(segmentation_masks, proposals.bbox.to(torch.device("cpu"))):
        # crop and resize on the CPU: they are cheap polygon operations
        mask = segmentation_mask.crop(proposal).resize((M, M)).get_mask_tensor()
        masks.append(mask.reshape(M, M))
    if not masks:
        return torch.empty(0, M, M, dtype=torch.float32, device=device)
    return torch.stack(masks, dim=0).to(device, dtype=torch.float32)


class MaskRCNNLossComputation:
    def __init__(self, proposal_matcher: Matcher, discretization_size: int):
        self.proposal_matcher = proposal_matcher
        self.discretization_size = discretization_size

    def prepare_targets(
        self, proposals: Sequence[BoxList], targets: Sequence[BoxList]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        labels, masks = [], []
        for proposals_per_image, targets_per_image in zip(proposals, targets):
            if nothing_to_match(proposals_per_image, targets_per_image):  # no positive, no mask target
                labels.append(background_labels(proposals_per_image))
                M = self.discretization_size
                masks.append(torch.empty(0, M, M, dtype=torch.float32, device=proposals_per_image.bbox.device))
                continue
            matched_targets, _, labels_per_image = match_proposals(
                self.proposal_matcher, proposals_per_image, targets_per_image, ["labels", "masks"]
            )
            positive = torch.nonzero(labels_per_image > 0).squeeze(1)
            segmentation_masks = matched_targets.get_field("masks")[positive]
            masks.append(project_masks_on_boxes(segmentation_masks, proposals_per_image[positive], self.discretization_size))
            labels.append(labels_per_image)
        return labels, masks

    def __call__(self, proposals: Sequence[BoxList], mask_logits: torch.Tensor, targets: Sequence[BoxList]) -> torch.Tensor:
        """mask_logits [K, num_classes, M, M] for the K proposals (all images); returns the loss."""
        labels, mask_targets = self.prepare_targets(proposals, targets)
        labels = cat(labels, dim=0)
        mask_targets = cat(mask_targets, dim=0)
        positive = torch.nonzero(labels > 0).squeeze(1)
        if mask_targets.numel() == 0:
            return mask_logits.sum() * 0
        return F.binary_cross_entropy_with_logits(mask_logits[positive, labels[positive]].float(), mask_targets)


def make_roi_mask_loss_evaluator(cfg) -> MaskRCNNLossComputation:
    heads = cfg.MODEL.ROI_HEADS
    return MaskRCNNLossComputation(
        Matcher(heads.FG_IOU_THRESHOLD, heads.BG_IOU_THRESHOLD, allow_low_quality_matches=False),
        cfg.MODEL.ROI_MASK_HEAD.RESOLUTION,
    )
