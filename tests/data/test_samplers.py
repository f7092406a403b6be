"""GroupedBatchSampler, IterationBasedBatchSampler, DistributedSampler and the collator."""
import torch
from torch.utils.data import BatchSampler, SequentialSampler

from maskrcnn_benchmark.data.collate_batch import BatchCollator
from maskrcnn_benchmark.data.samplers import DistributedSampler, GroupedBatchSampler, IterationBasedBatchSampler


class _ListSampler(torch.utils.data.Sampler):
    def __init__(self, order):
        self.order = order

    def __iter__(self):
        return iter(self.order)

    def __len__(self):
        return len(self.order)


def test_grouped_batches_keep_groups_and_sampler_order():
    group_ids = [0, 1, 0, 1, 0, 0, 1]
    sampler = _ListSampler([6, 0, 1, 2, 3, 4, 5])
    batches = list(GroupedBatchSampler(sampler, group_ids, 2))
    # group 1 in sampler order: 6, 1, 3 -> [6, 1], [3]; group 0: 0, 2, 4, 5 -> [0, 2], [4, 5]
    # ordered by the position of each batch's first element: 6 (0), 0 (1), 3 (4), 4 (5)
    assert batches == [[6, 1], [0, 2], [3], [4, 5]]
    assert len(GroupedBatchSampler(sampler, group_ids, 2)) == 4
    assert list(GroupedBatchSampler(sampler, group_ids, 2, drop_uneven=True)) == [[6, 1], [0, 2], [4, 5]]


def test_every_index_once():
    g = torch.Generator().manual_seed(0)
    group_ids = torch.randint(0, 2, (101,), generator=g)
    order = torch.randperm(101, generator=g).tolist()
    batches = list(GroupedBatchSampler(_ListSampler(order), group_ids, 4))
    assert sorted(i for b in batches for i in b) == list(range(101))
    for b in batches:
        assert len({int(group_ids[i]) for i in b}) == 1 and len(b) <= 4


def test_iteration_based_sampler_counts_and_start_iter():
    base = BatchSampler(SequentialSampler(range(5)), 2, drop_last=False)  # 3 batches per pass
    assert len(list(IterationBasedBatchSampler(base, 7))) == 7
    resumed = list(IterationBasedBatchSampler(base, 7, start_iter=4))
    assert len(resumed) == 3
    assert len(IterationBasedBatchSampler(base, 7)) == 7


def test_iteration_based_sampler_sets_epochs():
    sampler = DistributedSampler(list(range(4)), num_replicas=1, rank=0)
    base = BatchSampler(sampler, 4, drop_last=False)
    epochs = []
    for _ in IterationBasedBatchSampler(base, 3):
        epochs.append(sampler.epoch)
    assert epochs == [0, 1, 2]


def test_distributed_sampler_splits_and_pads():
    data = list(range(10))
    parts = [list(DistributedSampler(data, num_replicas=3, rank=r, shuffle=False)) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]
    assert sorted(sum(parts, [])) == sorted(data + [0, 1])
    a = DistributedSampler(data, 2, 0)
    b = DistributedSampler(data, 2, 1)
    assert set(a) | set(b) == set(data) and not set(a) & set(b)
    a.set_epoch(1)
    assert list(a) != list(DistributedSampler(data, 2, 0))


def test_batch_collator_pads_to_divisibility():
    batch = [(torch.ones(3, 20, 30), "t0", 7), (torch.ones(3, 25, 10), "t1", 3)]
    images, targets, ids = BatchCollator(size_divisible=32)(batch)
    assert images.tensors.shape == (2, 3, 32, 32)
    assert [tuple(s) for s in images.image_sizes] == [(20, 30), (25, 10)]
    assert targets == ("t0", "t1") and ids == (7, 3)
    assert images.tensors[1, :, 25:, :].abs().sum() == 0
