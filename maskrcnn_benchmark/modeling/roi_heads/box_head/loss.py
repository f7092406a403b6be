"""Box head training: sample proposals against ground truth, then classification + regression losses.

Proposals (RPN output + ground truth) are matched at IoU FG_IOU_THRESHOLD / BG_IOU_THRESHOLD
without the low-quality rule; label = matched class, 0 below BG, -1 (ignored) in between.
BATCH_SIZE_PER_IMAGE are sampled per image with at most POSITIVE_FRACTION positives. Losses:
- loss_classifier: cross-entropy, mean over sampled RoIs;
- loss_box_reg: smooth L1 (beta 1) over the 4 deltas of the ground-truth class of each positive,
  summed and divided by the number of sampled RoIs.

Degenerate batches train: an image without ground truth contributes only background RoIs, and a
batch without any sampled RoI gives zero losses (connected to the graph) instead of NaN.
"""

from typing import List, Sequence, Tuple

import torch
from torch.nn import functional as F

from ....config import CfgNode
from ....layers.smooth_l1_loss import smooth_l1_loss
from ....structures.bounding_box import BoxList
from ...balanced_positive_negative_sampler import BalancedPositiveNegativeSampler
from ...box_coder import BoxCoder
from ...matcher import Matcher
from ...utils import cat, nonzero_per_segment
from ..matching import background_labels, match_proposals, nothing_to_match


class FastRCNNLossComputation:
    def __init__(
        self,
        proposal_matcher: Matcher,
        fg_bg_sampler: BalancedPositiveNegativeSampler,
        box_coder: BoxCoder,
        cls_agnostic_bbox_reg: bool = False,
    ):
        self.proposal_matcher = proposal_matcher
        self.fg_bg_sampler = fg_bg_sampler
        self.box_coder = box_coder
        self.cls_agnostic_bbox_reg = cls_agnostic_bbox_reg
        self._proposals: List[BoxList] = []

    def prepare_targets(
        self, proposals: Sequence[BoxList], targets: Sequence[BoxList]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        labels, regression_targets = [], []
        for proposals_per_image, targets_per_image in zip(proposals, targets):
            if nothing_to_match(proposals_per_image, targets_per_image):
                # e.g. every object removed: background RoIs, whose deltas are never regressed
                labels.append(background_labels(proposals_per_image))
                regression_targets.append(torch.zeros_like(proposals_per_image.bbox))
                continue
            matched, _, labels_per_image = match_proposals(
                self.proposal_matcher, proposals_per_image, targets_per_image, ["labels"]
            )
            labels.append(labels_per_image)
            regression_targets.append(self.box_coder.encode(matched.bbox, proposals_per_image.bbox))
        return labels, regression_targets

    def subsample(self, proposals: Sequence[BoxList], targets: Sequence[BoxList]) -> List[BoxList]:
        """The sampled proposals of each image, with fields "labels" and "regression_targets"
        (kept for the loss call that follows)."""
        labels, regression_targets = self.prepare_targets(proposals, targets)
        sampled_pos, sampled_neg = self.fg_bg_sampler(labels)
        keep = nonzero_per_segment([pos | neg for pos, neg in zip(sampled_pos, sampled_neg)])  # one host read
        sampled = []
        for proposal, label, target, keep_per_image in zip(proposals, labels, regression_targets, keep):
            proposal = proposal.copy_with_fields(proposal.fields())
            proposal.add_field("labels", label)
            proposal.add_field("regression_targets", target)
            sampled.append(proposal[keep_per_image])
        self._proposals = sampled
        return sampled

    def __call__(self, class_logits: Sequence[torch.Tensor], box_regression: Sequence[torch.Tensor]):
        """(loss_classifier, loss_box_reg) for the proposals of the last subsample() call."""
        if not self._proposals:
            raise RuntimeError("subsample() must be called before computing the box-head loss")
        class_logits = cat(class_logits, dim=0).float()
        box_regression = cat(box_regression, dim=0).float()
        labels = cat([p.get_field("labels") for p in self._proposals], dim=0)
        regression_targets = cat([p.get_field("regression_targets") for p in self._proposals], dim=0)

        if labels.numel() == 0:  # no RoI in the whole batch: cross_entropy's mean would be NaN
            zero = class_logits.sum() * 0 + box_regression.sum() * 0
            return zero, zero.clone()
        classification_loss = F.cross_entropy(class_logits, labels)
        # The deltas of each RoI's own class (background's for negatives); negatives count zero:
        # both sides are zeroed (their targets may not be finite: a degenerate proposal matched to
        # nothing), so no positive is selected on the host.
        columns = torch.arange(4, device=labels.device)
        if self.cls_agnostic_bbox_reg:
            map_inds = (4 + columns).expand(labels.numel(), 4)
        else:
            map_inds = 4 * labels[:, None] + columns
        positive = (labels > 0)[:, None]
        predicted = torch.where(positive, box_regression.gather(1, map_inds), 0)
        target = torch.where(positive, regression_targets, 0)
        box_loss = smooth_l1_loss(predicted, target, size_average=False, beta=1) / labels.numel()
        return classification_loss, box_loss


def make_roi_box_loss_evaluator(cfg: CfgNode) -> FastRCNNLossComputation:
    heads = cfg.MODEL.ROI_HEADS
    return FastRCNNLossComputation(
        Matcher(heads.FG_IOU_THRESHOLD, heads.BG_IOU_THRESHOLD, allow_low_quality_matches=False),
        BalancedPositiveNegativeSampler(heads.BATCH_SIZE_PER_IMAGE, heads.POSITIVE_FRACTION),
        BoxCoder(weights=heads.BBOX_REG_WEIGHTS),
        cfg.MODEL.CLS_AGNOSTIC_BBOX_REG,
    )
