"""RetinaNet's training targets and losses.

Every anchor of every level is matched to the ground truth by IoU (+1 convention) with
Matcher(FG_IOU_THRESHOLD, BG_IOU_THRESHOLD, allow_low_quality_matches=True): its label is the
matched box's class at IoU >= FG_IOU_THRESHOLD (and for the best anchors of each box), 0
(background) below BG_IOU_THRESHOLD, -1 (ignored) in between. As in the original, anchors that
straddle the image border are not ignored (RETINANET.STRADDLE_THRESH plays no part here), and
nothing is sampled: every anchor counts. With P = the number of positive anchors of the batch and
N the number of images:

- loss_retina_cls = sum of the sigmoid focal losses (LOSS_GAMMA, LOSS_ALPHA) over all anchors and
  classes / (P + N);
- loss_retina_reg = sum of smooth L1 (beta BBOX_REG_BETA) over the 4 deltas of the positive
  anchors / max(1, P * BBOX_REG_WEIGHT) (the original's "weight" divides).

Regression targets are encoded with the (10, 10, 5, 5) box coder. An image without ground truth
trains as pure background. P is counted on the device: nothing is read on the host.
"""

from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ....config import CfgNode
from ....layers.sigmoid_focal_loss import SigmoidFocalLoss
from ....layers.smooth_l1_loss import smooth_l1_loss
from ....structures.bounding_box import BoxList
from ....structures.boxlist_ops import cat_boxlist
from ...box_coder import BoxCoder
from ...matcher import Matcher
from ..loss import match_anchors
from ..utils import concat_box_prediction_layers


def generate_retinanet_labels(matched_targets: BoxList) -> torch.Tensor:
    """Anchor labels from the matched targets: the class ("labels") of the matched box."""
    return matched_targets.get_field("labels")


class RetinaNetLossComputation:
    """`generate_labels_func(matched_targets)` (fields "labels" and "matched_idxs") labels the
    anchors (see generate_retinanet_labels); anchors below the low threshold are then set to 0,
    those between the thresholds to -1. `sigmoid_focal_loss(logits, labels)` is the summed
    classification loss, SigmoidFocalLoss(2.0, 0.25) by default (RETINANET.LOSS_GAMMA / LOSS_ALPHA)."""

    def __init__(
        self,
        proposal_matcher: Matcher,
        box_coder: BoxCoder,
        generate_labels_func: Callable[[BoxList], torch.Tensor] = generate_retinanet_labels,
        sigmoid_focal_loss: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
        bbox_reg_beta: float = 0.11,
        regress_norm: float = 1.0,
    ):
        self.proposal_matcher = proposal_matcher
        self.box_coder = box_coder
        self.generate_labels_func = generate_labels_func
        self.box_cls_loss_func = sigmoid_focal_loss or SigmoidFocalLoss(2.0, 0.25)
        self.bbox_reg_beta = bbox_reg_beta
        self.regress_norm = regress_norm

    def match_targets_to_anchors(
        self, anchor: BoxList, target: BoxList, copied_fields: Sequence[str] = ()
    ) -> Tuple[BoxList, torch.Tensor]:
        """As the RPN's (see rpn/loss.py match_anchors)."""
        return match_anchors(self.proposal_matcher, anchor, target, copied_fields)

    def prepare_targets(
        self, anchors: Sequence[BoxList], targets: Sequence[BoxList]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per image (anchors of all levels in one BoxList): int64 labels [R] (class, 0, -1) and
        regression targets [R, 4]."""
        labels, regression_targets = [], []
        for anchors_per_image, targets_per_image in zip(anchors, targets):
            matched_targets, matched_idxs = self.match_targets_to_anchors(
                anchors_per_image, targets_per_image, ["labels"]
            )
            matched_targets.add_field("matched_idxs", matched_idxs)
            labels_per_image = self.generate_labels_func(matched_targets).to(torch.int64)
            labels_per_image = labels_per_image.masked_fill(matched_idxs == Matcher.BELOW_LOW_THRESHOLD, 0)
            labels_per_image = labels_per_image.masked_fill(matched_idxs == Matcher.BETWEEN_THRESHOLDS, -1)
            labels.append(labels_per_image)
            regression_targets.append(self.box_coder.encode(matched_targets.bbox, anchors_per_image.bbox))
        return labels, regression_targets

    def __call__(
        self,
        anchors: Sequence[Sequence[BoxList]],
        box_cls: Sequence[torch.Tensor],
        box_regression: Sequence[torch.Tensor],
        targets: Sequence[BoxList],
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """anchors: per image, per level BoxList; box_cls [N, A*C, H, W] / box_regression
        [N, A*4, H, W]: per level head outputs. Returns (loss_retina_cls, loss_retina_reg)."""
        anchors = [cat_boxlist(anchors_per_image) for anchors_per_image in anchors]
        labels, regression_targets = self.prepare_targets(anchors, targets)
        num_images = len(labels)
        labels = torch.cat(labels)  # [N * R], image-major like the flattened predictions
        regression_targets = torch.cat(regression_targets)
        box_cls, box_regression = concat_box_prediction_layers(box_cls, box_regression)

        positive = labels > 0
        num_pos = positive.sum()
        # Masked instead of indexed: no shape depends on the data. Non-positive rows count zero on
        # both sides (zero difference, loss and gradient).
        predicted = torch.where(positive[:, None], box_regression.float(), 0)
        target = torch.where(positive[:, None], regression_targets, 0)
        reg_loss = smooth_l1_loss(predicted, target, beta=self.bbox_reg_beta, size_average=False)
        reg_loss = reg_loss / (num_pos * self.regress_norm).clamp(min=1)

        # float32 logits: float16 losses would be summed in float16.
        cls_loss = self.box_cls_loss_func(box_cls.float(), labels) / (num_pos + num_images)
        return cls_loss, reg_loss


def make_retinanet_loss_evaluator(cfg: CfgNode, box_coder: BoxCoder) -> RetinaNetLossComputation:
    r = cfg.MODEL.RETINANET
    return RetinaNetLossComputation(
        Matcher(r.FG_IOU_THRESHOLD, r.BG_IOU_THRESHOLD, allow_low_quality_matches=True),
        box_coder,
        generate_retinanet_labels,
        SigmoidFocalLoss(r.LOSS_GAMMA, r.LOSS_ALPHA),
        bbox_reg_beta=r.BBOX_REG_BETA,
        regress_norm=r.BBOX_REG_WEIGHT,
    )
