"""DistributedSampler: each process takes its share of a (per-epoch shuffled) dataset."""

import math
from typing import Iterator, Optional

import torch
from torch.utils.data import Sampler

from ...utils.comm import get_rank, get_world_size


class DistributedSampler(Sampler):
    """Indices for process `rank` of `num_replicas`: the dataset order (shuffled with seed + epoch
    when shuffle) is padded by wrapping around to a multiple of num_replicas and dealt round-robin.
    Every process must call set_epoch(epoch) with the same value to get a consistent split."""

    def __init__(
        self,
        dataset,
        num_replicas: Optional[int] = None,
        rank: Optional[int] = None,
        shuffle: bool = True,
        seed: int = 0,
    ):
        self.dataset = dataset
        self.num_replicas = get_world_size() if num_replicas is None else num_replicas
        self.rank = get_rank() if rank is None else rank
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank {self.rank} is not in [0, {self.num_replicas})")
        self.epoch = 0
        self.seed = seed
        self.num_samples = int(math.ceil(len(dataset) / self.num_replicas))
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(len(self.dataset), generator=g).tolist()
        else:
            indices = list(range(len(self.dataset)))
        if len(indices) < self.total_size:  # pad by wrapping around (possibly several times)
            indices = (indices * math.ceil(self.total_size / max(len(indices), 1)))[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
