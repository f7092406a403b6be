"""Matching proposals to ground truth, shared by the box, mask and keypoint heads' targets.

The Matcher refuses an empty IoU matrix. An image without ground truth (all objects removed) or
without proposals has nothing to match: the heads' losses check `nothing_to_match` first and then
label every proposal background (`background_labels`).
"""

from typing import Sequence, Tuple

import torch

from ...structures.bounding_box import BoxList
from ...structures.boxlist_ops import boxlist_iou
from ..matcher import Matcher


def match_proposals(
    matcher: Matcher, proposals: BoxList, targets: BoxList, fields: Sequence[str], ignore_between: bool = True
) -> Tuple[BoxList, torch.Tensor, torch.Tensor]:
    """Match each proposal to a ground-truth box (IoU, +1 convention).

    Returns (matched targets: one row per proposal with `fields` (unmatched rows borrow target 0),
    matched_idxs [P] with the Matcher's negative codes, labels [P] int64: the matched "labels",
    0 below the low threshold, -1 between the thresholds when ignore_between).
    """
    matched_idxs = matcher(boxlist_iou(targets, proposals))
    matched = targets.copy_with_fields(list(fields))[matched_idxs.clamp(min=0)]
    labels = matched.get_field("labels").to(torch.int64)
    labels = labels.masked_fill(matched_idxs == Matcher.BELOW_LOW_THRESHOLD, 0)
    if ignore_between:
        labels = labels.masked_fill(matched_idxs == Matcher.BETWEEN_THRESHOLDS, -1)
    return matched, matched_idxs, labels


def nothing_to_match(proposals: BoxList, targets: BoxList) -> bool:
    """Whether the image has no ground-truth box or no proposal (its IoU matrix would be empty)."""
    return len(targets) == 0 or len(proposals) == 0


def background_labels(proposals: BoxList) -> torch.Tensor:
    """[P] int64 zeros: every proposal is background."""
    return torch.zeros(len(proposals), dtype=torch.int64, device=proposals.bbox.device)
