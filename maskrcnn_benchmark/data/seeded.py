"""Training augmentation randomness as a pure function of (seed, process rank, iteration, position in
the batch), whatever process loads the image.

A DataLoader worker draws its flips from a stream of its own that starts afresh with every iterator,
so after a resume (or with another DATALOADER.NUM_WORKERS) it would draw other flips than an
uninterrupted run. Instead, the training batch sampler tags every index with a seed of its own
(SeededIndex), and SeededDataset seeds torch's CPU generator, Python's `random` and numpy's global
generator from it while the sample is loaded and transformed, then puts them back as they were: the
process that loads the sample (main or worker) keeps its own streams untouched.
"""

import random
from contextlib import contextmanager
from typing import Any, Iterator, List

import numpy as np
import torch
from torch.utils.data import Dataset

from .samplers import IterationBasedBatchSampler


class SeededIndex(int):
    """A dataset index that carries the seed of the randomness used to load its sample."""

    seed: int

    def __new__(cls, value: int, seed: int) -> "SeededIndex":
        index = super().__new__(cls, value)
        index.seed = seed
        return index

    def __reduce__(self):
        # int's own pickling would drop the seed on the way to a worker process.
        return SeededIndex, (int(self), self.seed)

    def __repr__(self) -> str:
        return f"SeededIndex({int(self)}, seed={self.seed})"


def sample_seed(base_seed: int, rank: int, iteration: int, position: int) -> int:
    """A 64-bit seed, well mixed from its (non-negative) arguments: neighbouring samples, ranks and
    iterations get unrelated streams."""
    words = np.random.SeedSequence([base_seed, rank, iteration, position]).generate_state(2, dtype=np.uint32)
    return int(words[0]) | int(words[1]) << 32


def augmentation_seed(cfg: Any) -> int:
    """The base seed of the training augmentation: cfg.SEED, or with SEED < 0 (a different run each
    time) the seed torch's generator was last seeded with (tools/train_net.py: the drawn seed)."""
    return int(cfg.SEED) if cfg.SEED >= 0 else torch.initial_seed()


class SeededBatchSampler(IterationBasedBatchSampler):
    """IterationBasedBatchSampler whose indices are SeededIndex objects seeded from (base_seed, rank,
    batch number, position in the batch); the batch number counts from 0 also when resuming, so a
    resumed run tags its batches as the uninterrupted run did."""

    def __init__(self, batch_sampler, num_iterations: int, start_iter: int = 0, base_seed: int = 0, rank: int = 0):
        super().__init__(batch_sampler, num_iterations, start_iter)
        if base_seed < 0 or rank < 0:
            raise ValueError(f"base_seed ({base_seed}) and rank ({rank}) must be non-negative")
        self.base_seed = base_seed
        self.rank = rank

    def __iter__(self) -> Iterator[List[SeededIndex]]:
        for iteration, batch in enumerate(super().__iter__(), start=self.start_iter):
            yield [
                SeededIndex(index, sample_seed(self.base_seed, self.rank, iteration, position))
                for position, index in enumerate(batch)
            ]


@contextmanager
def seeded_generators(seed: int) -> Iterator[None]:
    """torch's CPU generator, Python's `random` and numpy's global generator seeded from `seed` inside
    the block, restored after it. CUDA generators are left alone (torch.manual_seed would reseed them)."""
    torch_state, python_state, numpy_state = torch.get_rng_state(), random.getstate(), np.random.get_state()
    try:
        torch.default_generator.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


class SeededDataset(Dataset):
    """Loads `dataset[int(index)]` under seeded_generators(index.seed) for SeededIndex indices (any
    other index: as is). Otherwise it stands in for the wrapped dataset: attributes (coco, datasets,
    class_names, get_img_info, ...) are the wrapped dataset's, and isinstance sees its class, so code
    written against data_loader.dataset keeps working."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __getitem__(self, index: int) -> Any:
        seed = getattr(index, "seed", None)
        if seed is None:
            return self.dataset[index]
        with seeded_generators(seed):
            return self.dataset[int(index)]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes this wrapper lacks. Special names are not forwarded: a wrapped
        # __getitems__ would bypass the seeding, and unpickling probes __setstate__ before `dataset` exists.
        if name.startswith("__") or "dataset" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.dataset, name)

    @property
    def __class__(self):  # what isinstance consults after type(): the wrapped dataset's class
        return type(self.dataset)

    def __reduce__(self):
        return SeededDataset, (self.dataset,)

    def __repr__(self) -> str:
        return f"SeededDataset({self.dataset!r})"
