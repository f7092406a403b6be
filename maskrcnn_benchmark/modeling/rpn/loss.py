"""RPN training targets and losses.

Anchors are matched to ground truth by IoU (+1 convention): label 1 at IoU >= FG_IOU_THRESHOLD (and
the best anchors of each ground-truth box, the low-quality rule), 0 below BG_IOU_THRESHOLD, -1
(ignored) in between and for anchors that straddle the image border. BATCH_SIZE_PER_IMAGE anchors
per image are sampled (POSITIVE_FRACTION positives at most). Losses:
- loss_objectness: binary cross-entropy, mean over the sampled anchors of the whole batch;
- loss_rpn_box_reg: smooth L1 (beta 1/9) summed over sampled positives / number of sampled anchors.

An image without ground truth (every object removed by augmentation or clipping) trains as pure
background: all its anchors are negatives (except the border ones, ignored as usual).
"""

from typing import Callable, List, Sequence, Tuple

import torch
from torch.nn import functional as F

from ...config import CfgNode
from ...layers.smooth_l1_loss import smooth_l1_loss
from ...structures.bounding_box import BoxList
from ...structures.boxlist_ops import boxlist_iou, cat_boxlist
from ..balanced_positive_negative_sampler import BalancedPositiveNegativeSampler
from ..box_coder import BoxCoder
from ..matcher import Matcher
from .utils import concat_box_prediction_layers


def generate_rpn_labels(matched_targets: BoxList) -> torch.Tensor:
    """Anchor labels from the matched targets (field "matched_idxs"): 1 for a match, else 0."""
    return matched_targets.get_field("matched_idxs") >= 0


def match_anchors(
    matcher: Matcher, anchor: BoxList, target: BoxList, copied_fields: Sequence[str] = ()
) -> Tuple[BoxList, torch.Tensor]:
    """Match every anchor [R] to the ground truth by IoU (+1 convention): returns the matched
    ground-truth BoxList [R] (boxes and `copied_fields`) and the matched indices [R] with the
    Matcher's BELOW_LOW_THRESHOLD / BETWEEN_THRESHOLDS codes. The RPN and RetinaNet share it."""
    if len(target) == 0:
        # No object: every anchor is below the low threshold. Its "matched box" is itself, which
        # encodes to zero deltas, and its copied fields are zeros (unused: negatives have no
        # regression loss, and their label is set from the code).
        device = anchor.bbox.device
        below = torch.full((len(anchor),), Matcher.BELOW_LOW_THRESHOLD, dtype=torch.int64, device=device)
        matched = anchor.copy_with_fields([])
        for name in copied_fields:
            field = target.get_field(name)
            matched.add_field(name, field.new_zeros((len(anchor),) + tuple(field.shape[1:])).to(device))
        return matched, below
    target = target.to(anchor.bbox.device)
    matched_idxs = matcher(boxlist_iou(target, anchor))
    # Unmatched anchors borrow gt 0 and are masked out by their label.
    matched_targets = target.copy_with_fields(list(copied_fields))[matched_idxs.clamp(min=0)]
    return matched_targets, matched_idxs


class RPNLossComputation:
    """`generate_labels_func(matched_targets)` labels the anchors (see generate_rpn_labels);
    anchors below the low threshold are then set to 0, ignored ones (between the thresholds, or
    straddling the border) to -1."""

    def __init__(
        self,
        proposal_matcher: Matcher,
        fg_bg_sampler: BalancedPositiveNegativeSampler,
        box_coder: BoxCoder,
        generate_labels_func: Callable[[BoxList], torch.Tensor] = generate_rpn_labels,
    ):
        self.proposal_matcher = proposal_matcher
        self.fg_bg_sampler = fg_bg_sampler
        self.box_coder = box_coder
        self.generate_labels_func = generate_labels_func

    def match_targets_to_anchors(
        self, anchor: BoxList, target: BoxList, copied_fields: Sequence[str] = ()
    ) -> Tuple[BoxList, torch.Tensor]:
        """(the matched ground-truth box of every anchor, with `copied_fields` of the ground truth,
        and the matched indices with the Matcher's -1/-2 codes)."""
        return match_anchors(self.proposal_matcher, anchor, target, copied_fields)

    def prepare_targets(
        self, anchors: Sequence[BoxList], targets: Sequence[BoxList]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per image: float labels [R] (1, 0, -1) and regression targets [R, 4]."""
        labels, regression_targets = [], []
        for anchors_per_image, targets_per_image in zip(anchors, targets):
            matched_targets, matched_idxs = self.match_targets_to_anchors(anchors_per_image, targets_per_image)
            matched_targets.add_field("matched_idxs", matched_idxs)
            labels_per_image = self.generate_labels_func(matched_targets).to(torch.float32)
            labels_per_image = labels_per_image.masked_fill(matched_idxs == Matcher.BELOW_LOW_THRESHOLD, 0)
            ignored = (matched_idxs == Matcher.BETWEEN_THRESHOLDS) | ~anchors_per_image.get_field("visibility")
            labels_per_image = labels_per_image.masked_fill(ignored, -1)
            labels.append(labels_per_image)
            regression_targets.append(self.box_coder.encode(matched_targets.bbox, anchors_per_image.bbox))
        return labels, regression_targets

    def __call__(
        self,
        anchors: Sequence[Sequence[BoxList]],
        objectness: Sequence[torch.Tensor],
        box_regression: Sequence[torch.Tensor],
        targets: Sequence[BoxList],
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """anchors: per image, per level BoxList; objectness/box_regression: per level head outputs.
        Returns (loss_objectness, loss_rpn_box_reg)."""
        anchors = [cat_boxlist(anchors_per_image) for anchors_per_image in anchors]
        labels, regression_targets = self.prepare_targets(anchors, targets)
        # Every image of a batch has the same anchors (one grid over the padded batch): [N, R] rows.
        labels = torch.stack(labels)
        regression_targets = torch.stack(regression_targets)
        objectness, box_regression = concat_box_prediction_layers(objectness, box_regression)
        objectness = objectness.reshape(labels.shape)
        box_regression = box_regression.reshape(regression_targets.shape)

        # The sampled anchors are gathered at fixed-size positions (those not `taken` are filler and
        # count zero), so no shape depends on the data and nothing is read on the host.
        pos_index, pos_taken, neg_index, neg_taken = self.fg_bg_sampler.sample(labels)
        num_sampled = (pos_taken.sum() + neg_taken.sum()).clamp(min=1)

        index = torch.cat([pos_index, neg_index], dim=1)
        taken = torch.cat([pos_taken, neg_taken], dim=1)
        per_anchor = F.binary_cross_entropy_with_logits(
            objectness.gather(1, index).float(), labels.gather(1, index).clamp(min=0), reduction="none"
        )
        objectness_loss = torch.where(taken, per_anchor, 0).sum() / num_sampled

        pos_index = pos_index[:, :, None].expand(-1, -1, 4)
        # Filler rows count zero on both sides: zero difference, loss and gradient.
        taken = pos_taken[:, :, None]
        target = torch.where(taken, regression_targets.gather(1, pos_index), 0)
        predicted = torch.where(taken, box_regression.gather(1, pos_index).float(), 0)
        box_loss = smooth_l1_loss(predicted, target, beta=1.0 / 9, size_average=False) / num_sampled
        return objectness_loss, box_loss


def make_rpn_loss_evaluator(cfg: CfgNode, box_coder: BoxCoder) -> RPNLossComputation:
    rpn = cfg.MODEL.RPN
    return RPNLossComputation(
        Matcher(rpn.FG_IOU_THRESHOLD, rpn.BG_IOU_THRESHOLD, allow_low_quality_matches=True),
        BalancedPositiveNegativeSampler(rpn.BATCH_SIZE_PER_IMAGE, rpn.POSITIVE_FRACTION),
        box_coder,
    )
