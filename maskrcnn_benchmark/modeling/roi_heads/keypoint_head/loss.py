"""Keypoint training: sampling and the heat-map loss.

Proposals are matched to ground truth (no low-quality rule); a proposal is ignored (-1) when its
matched ground-truth person has no visible keypoint inside that person's box (the original's rule).
Only the sampled positives are kept. Each visible keypoint inside its proposal becomes one target
pixel of a 56 x 56 map (keypoints_to_heat_map); the loss is the cross-entropy over the 56*56
logits, mean over the valid (proposal, keypoint) pairs; 0 when there are none (e.g. images whose
persons were all removed: their proposals are all negatives, never sampled).
"""

from typing import List, Sequence, Tuple

import torch
from torch.nn import functional as F

from ....config import CfgNode
from ....structures.bounding_box import BoxList
from ....structures.boxlist_ops import cat_boxlist
from ....structures.keypoint import keypoints_to_heat_map
from ...balanced_positive_negative_sampler import BalancedPositiveNegativeSampler
from ...matcher import Matcher
from ...utils import cat, nonzero_per_segment
from ..matching import background_labels, match_proposals, nothing_to_match


def project_keypoints_to_heatmap(keypoints, proposals: BoxList, discretization_size: int):
    """(target pixel indices [P, K], valid [P, K]) of keypoints in their proposals."""
    proposals = proposals.convert("xyxy")
    return keypoints_to_heat_map(keypoints.keypoints, proposals.bbox, discretization_size)


def cat_boxlist_with_keypoints(boxlists: Sequence[BoxList]) -> BoxList:
    """One BoxList of the given ones (all with "keypoints"), whose "keypoints" field is the
    concatenated keypoint tensor [N, K, 3] rather than a Keypoints object (as the original)."""
    if not all(boxlist.has_field("keypoints") for boxlist in boxlists):
        raise ValueError("cat_boxlist_with_keypoints: every BoxList needs a 'keypoints' field")
    keypoints = cat([boxlist.get_field("keypoints").keypoints for boxlist in boxlists], 0)
    fields = [field for field in boxlists[0].fields() if field != "keypoints"]
    result = cat_boxlist([boxlist.copy_with_fields(fields) for boxlist in boxlists])
    result.add_field("keypoints", keypoints)
    return result


def _within_box(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """[N, K] whether each of the K points [N, K, 2+] lies inside its box [N, 4] (inclusive)."""
    x_within = (points[..., 0] >= boxes[:, 0, None]) & (points[..., 0] <= boxes[:, 2, None])
    y_within = (points[..., 1] >= boxes[:, 1, None]) & (points[..., 1] <= boxes[:, 3, None])
    return x_within & y_within


class KeypointRCNNLossComputation:
    def __init__(
        self, proposal_matcher: Matcher, fg_bg_sampler: BalancedPositiveNegativeSampler, discretization_size: int
    ):
        self.proposal_matcher = proposal_matcher
        self.fg_bg_sampler = fg_bg_sampler
        self.discretization_size = discretization_size

    def prepare_targets(
        self, proposals: Sequence[BoxList], targets: Sequence[BoxList]
    ) -> Tuple[List[torch.Tensor], list]:
        labels, keypoints = [], []
        for proposals_per_image, targets_per_image in zip(proposals, targets):
            if nothing_to_match(proposals_per_image, targets_per_image):
                # Every proposal is negative, so none is sampled: the image's own keypoints stand
                # for the matched ones, as subsample() only ever indexes them by sampled positives.
                labels.append(background_labels(proposals_per_image))
                keypoints.append(targets_per_image.get_field("keypoints"))
                continue
            # The original left proposals between the thresholds labelled (moot at 0.5 / 0.5).
            matched_targets, _, labels_per_image = match_proposals(
                self.proposal_matcher,
                proposals_per_image,
                targets_per_image,
                ["labels", "keypoints"],
                ignore_between=False,
            )
            keypoints_per_image = matched_targets.get_field("keypoints")
            within_box = _within_box(keypoints_per_image.keypoints, matched_targets.bbox)
            is_visible = (within_box & (keypoints_per_image.keypoints[..., 2] > 0)).any(dim=1)
            labels.append(labels_per_image.masked_fill(~is_visible, -1))
            keypoints.append(keypoints_per_image)
        return labels, keypoints

    def subsample(self, proposals: Sequence[BoxList], targets: Sequence[BoxList]) -> List[BoxList]:
        """The sampled positive proposals of each image, with fields "labels" and "keypoints"."""
        labels, keypoints = self.prepare_targets(proposals, targets)
        sampled_pos, _ = self.fg_bg_sampler(labels)
        sampled = []
        for proposal, label, kp, keep in zip(proposals, labels, keypoints, nonzero_per_segment(sampled_pos)):
            proposal = proposal[keep]
            proposal.add_field("labels", label[keep])
            proposal.add_field("keypoints", kp[keep])
            sampled.append(proposal)
        return sampled

    def __call__(self, proposals: Sequence[BoxList], keypoint_logits: torch.Tensor) -> torch.Tensor:
        """keypoint_logits [P, K, S, S] for the sampled proposals of all images."""
        heatmaps, valid = [], []
        for proposals_per_image in proposals:
            kp = proposals_per_image.get_field("keypoints")
            heatmaps_per_image, valid_per_image = project_keypoints_to_heatmap(
                kp, proposals_per_image, self.discretization_size
            )
            heatmaps.append(heatmaps_per_image.reshape(-1))
            valid.append(valid_per_image.reshape(-1))
        keypoint_targets = cat(heatmaps, dim=0)
        valid = cat(valid, dim=0).bool()
        if keypoint_targets.numel() == 0:
            return keypoint_logits.sum() * 0
        N, K, H, W = keypoint_logits.shape
        keypoint_logits = keypoint_logits.reshape(N * K, H * W).float()
        # Mean over the valid (proposal, keypoint) pairs, selected by weight, not on the host.
        per_pair = F.cross_entropy(keypoint_logits, keypoint_targets.to(torch.int64), reduction="none")
        return torch.where(valid, per_pair, 0).sum() / valid.sum().clamp(min=1)


def make_roi_keypoint_loss_evaluator(cfg: CfgNode) -> KeypointRCNNLossComputation:
    heads = cfg.MODEL.ROI_HEADS
    return KeypointRCNNLossComputation(
        Matcher(heads.FG_IOU_THRESHOLD, heads.BG_IOU_THRESHOLD, allow_low_quality_matches=False),
        BalancedPositiveNegativeSampler(heads.BATCH_SIZE_PER_IMAGE, heads.POSITIVE_FRACTION),
        cfg.MODEL.ROI_KEYPOINT_HEAD.RESOLUTION,
    )
