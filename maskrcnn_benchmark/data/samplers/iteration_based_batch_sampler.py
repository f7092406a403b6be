"""IterationBasedBatchSampler: re-iterate a batch sampler until a number of iterations is reached."""

from typing import Iterator, List

from torch.utils.data.sampler import BatchSampler


class IterationBasedBatchSampler(BatchSampler):
    """Yields exactly num_iterations - start_iter batches, passing over `batch_sampler` as many
    times as needed; before each pass the underlying sampler's set_epoch(iteration) is called if it
    has one (so distributed shuffling changes per pass).

    Resuming is exact: with start_iter=N the passes are replayed from iteration 0 (index lists
    only, no data is loaded) and the first N batches are not yielded, so the batches are those of
    iterations N, N+1, ... of an uninterrupted run (given a sampler whose order depends only on its
    epoch, like DistributedSampler). The original instead began a fresh pass at epoch N.
    """

    def __init__(self, batch_sampler: BatchSampler, num_iterations: int, start_iter: int = 0):
        self.batch_sampler = batch_sampler
        self.num_iterations = num_iterations
        self.start_iter = start_iter

    def __iter__(self) -> Iterator[List[int]]:
        iteration = 0
        while iteration < self.num_iterations:
            sampler = getattr(self.batch_sampler, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(iteration)
            yielded = False
            for batch in self.batch_sampler:
                iteration += 1
                yielded = True
                if iteration > self.start_iter:
                    yield batch
                if iteration >= self.num_iterations:
                    return
            if not yielded:
                raise RuntimeError("the batch sampler yields no batches (is the dataset empty?)")

    def __len__(self) -> int:
        return self.num_iterations
