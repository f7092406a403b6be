"""GroupedBatchSampler: batches whose elements share a group (e.g. landscape vs portrait)."""

from typing import Dict, Iterator, List, Sequence

import torch
from torch.utils.data.sampler import BatchSampler, Sampler


class GroupedBatchSampler(BatchSampler):
    """Batch the indices of `sampler` so that each batch holds one group only.

    Within a group, indices keep the sampler's order and are cut into consecutive batches of
    `batch_size` (the last one may be smaller unless drop_uneven). Batches are then ordered by the
    position of their first index in the sampler's order, so the sampler's randomness is kept.
    """

    def __init__(self, sampler: Sampler, group_ids: Sequence[int], batch_size: int, drop_uneven: bool = False):
        if not isinstance(sampler, Sampler):
            raise ValueError(f"sampler should be an instance of torch.utils.data.Sampler, but got sampler={sampler}")
        self.sampler = sampler
        self.group_ids = torch.as_tensor(group_ids)
        if self.group_ids.dim() != 1:
            raise ValueError(f"group_ids must be 1-D, got shape {tuple(self.group_ids.shape)}")
        self.batch_size = batch_size
        self.drop_uneven = drop_uneven
        self._batches: List[List[int]] = []
        self._can_reuse_batches = False

    def _prepare_batches(self) -> List[List[int]]:
        group_ids = self.group_ids.tolist()
        order = list(self.sampler)
        position = {index: pos for pos, index in enumerate(order)}
        per_group: Dict[int, List[int]] = {}
        for index in order:
            per_group.setdefault(group_ids[index], []).append(index)
        batches = []
        for members in per_group.values():
            batches.extend(members[i : i + self.batch_size] for i in range(0, len(members), self.batch_size))
        if self.drop_uneven:
            batches = [b for b in batches if len(b) == self.batch_size]
        batches.sort(key=lambda batch: position[batch[0]])
        return batches

    def __iter__(self) -> Iterator[List[int]]:
        batches = self._batches if self._can_reuse_batches else self._prepare_batches()
        self._can_reuse_batches = False
        return iter(batches)

    def __len__(self) -> int:
        if not self._can_reuse_batches:
            self._batches = self._prepare_batches()
            self._can_reuse_batches = True
        return len(self._batches)
