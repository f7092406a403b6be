"""Sample a fixed-size, class-balanced subset of labelled anchors or proposals per image."""

from typing import List, Tuple

import torch
from torch.nn.utils.rnn import pad_sequence


class BalancedPositiveNegativeSampler:
    """Pick up to `batch_size_per_image` elements per image, at most `positive_fraction` positives.

    Per image, min(#positives, int(batch_size_per_image * positive_fraction)) positives are drawn
    uniformly without replacement, then min(#negatives, batch_size_per_image - that) negatives: the
    original's distribution. The original drew them with one randperm per image and class after a
    torch.nonzero (a host synchronisation each); here every element gets a random key and each image
    takes its smallest keys with one batched topk, so no value is read on the host. Seed torch for
    reproducibility (the draws differ from the original's for the same seed, the distribution does not).
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float):
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction

    def __call__(self, matched_idxs: List[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """matched_idxs: one [P_i] int tensor per image, 1+ = positive, 0 = negative, -1 = ignore.
        Returns (pos_masks, neg_masks): two lists of [P_i] bool masks."""
        if not matched_idxs:
            return [], []
        lengths = [len(labels) for labels in matched_idxs]
        # [N, L], images padded with "ignore"; L is the longest image's count.
        labels = pad_sequence(list(matched_idxs), batch_first=True, padding_value=-1)
        pos_index, pos_taken, neg_index, neg_taken = self.sample(labels)
        no = torch.zeros_like(labels, dtype=torch.bool)
        pos_mask = no.scatter(1, pos_index, pos_taken)
        neg_mask = no.scatter(1, neg_index, neg_taken)
        return [m[:n] for m, n in zip(pos_mask, lengths)], [m[:n] for m, n in zip(neg_mask, lengths)]

    def sample(self, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """labels [N, L] (1+ positive, 0 negative, -1 ignore). Returns fixed-size draws:
        (pos_index [N, Kp] int64, pos_taken [N, Kp] bool, neg_index [N, Kn], neg_taken [N, Kn]):
        the row's positions drawn where `taken` (each drawn position once; the rest is filler).
        Kp = min(L, max positives), Kn = min(L, batch_size_per_image)."""
        # float64 keys: ties (which would favour lower indices) are practically impossible.
        keys = torch.rand(labels.shape, dtype=torch.float64, device=labels.device)
        max_pos = int(self.batch_size_per_image * self.positive_fraction)
        pos_index, pos_taken = _smallest_keys(keys, labels >= 1, max_pos)
        neg_index, neg_taken = _smallest_keys(keys, labels == 0, self.batch_size_per_image)
        # Negatives fill what the positives leave of the batch.
        room = self.batch_size_per_image - pos_taken.sum(dim=1, keepdim=True)
        neg_taken &= torch.arange(neg_taken.shape[1], device=labels.device) < room
        return pos_index, pos_taken, neg_index, neg_taken


def _smallest_keys(keys: torch.Tensor, candidates: torch.Tensor, at_most: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The positions of each row's (at most `at_most`) candidates with the smallest keys, in
    increasing key order: (index [N, k], taken [N, k]); `taken` is False past the row's candidates."""
    k = min(at_most, keys.shape[1])
    values, index = keys.masked_fill(~candidates, float("inf")).topk(k, dim=1, largest=False, sorted=True)
    return index, torch.isfinite(values)
