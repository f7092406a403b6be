"""Sample a fixed-size, class-balanced subset of labelled anchors or proposals per image."""
from typing import List, Tuple

import torch


class BalancedPositiveNegativeSampler:
    """Pick up to `batch_size_per_image` elements per image, at most `positive_fraction` positives.

    __call__(matched_idxs: list of [P_i] int tensors, one per image, with 1+ = positive, 0 = negative,
    -1 = ignore) returns (pos_masks, neg_masks): two lists of [P_i] bool masks. The subset is drawn
    uniformly at random (torch.randperm: seed torch for reproducibility). Negatives fill what the
    positives leave of the batch.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float):
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction

    def __call__(self, matched_idxs: List[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        pos_masks, neg_masks = [], []
        for labels in matched_idxs:
            positive = torch.nonzero(labels >= 1).squeeze(1)
            negative = torch.nonzero(labels == 0).squeeze(1)

            num_pos = min(positive.numel(), int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(negative.numel(), self.batch_size_per_image - num_pos)

            pos_idx = positive[torch.randperm(positive.numel(), device=positive.device)[:num_pos]]
            neg_idx = negative[torch.randperm(negative.numel(), device=negative.device)[:num_neg]]

            pos_mask = torch.zeros_like(labels, dtype=torch.bool)
            neg_mask = torch.zeros_like(labels, dtype=torch.bool)
            pos_mask[pos_idx] = True
            neg_mask[neg_idx] = True
            pos_masks.append(pos_mask)
            neg_masks.append(neg_mask)
        return pos_masks, neg_masks
