"""Assign each prediction (anchor or proposal) to its best ground-truth box."""

import torch


class Matcher:
    """Match predictions to ground truth from an IoU matrix.

    __call__(match_quality_matrix [G, P]) returns [P] int64: the index of the matched ground-truth
    box, or BELOW_LOW_THRESHOLD (-1) where the best IoU < low_threshold, or BETWEEN_THRESHOLDS (-2)
    where low_threshold <= IoU < high_threshold.

    allow_low_quality_matches: additionally, for every ground-truth box, the predictions with the
    highest IoU to it (all of them when tied) are matched to their own best ground truth even when
    that IoU is below the thresholds, so that every ground truth gets at least one prediction.
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False):
        if low_threshold > high_threshold:
            raise ValueError(f"Matcher: low_threshold {low_threshold} > high_threshold {high_threshold}")
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix: torch.Tensor) -> torch.Tensor:
        if match_quality_matrix.numel() == 0:
            if match_quality_matrix.shape[0] == 0:
                raise ValueError("No ground-truth boxes available for one of the images during training")
            raise ValueError("No proposal boxes available for one of the images during training")

        matched_vals, matches = match_quality_matrix.max(dim=0)
        original_matches = matches.clone() if self.allow_low_quality_matches else None

        below = matched_vals < self.low_threshold
        between = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches = matches.masked_fill(below, self.BELOW_LOW_THRESHOLD)
        matches = matches.masked_fill(between, self.BETWEEN_THRESHOLDS)

        if original_matches is not None:
            best_per_gt = match_quality_matrix.max(dim=1, keepdim=True).values
            # Every prediction that reaches some ground truth's best IoU (ties included).
            is_best = (match_quality_matrix == best_per_gt).any(dim=0)
            matches = torch.where(is_best, original_matches, matches)
        return matches
