"""GroupedBatchSampler, IterationBasedBatchSampler, DistributedSampler, the collator, and the seeded
augmentation (SeededBatchSampler, SeededDataset)."""

import pickle
import random

import numpy as np
import torch
from torch.utils.data import BatchSampler, SequentialSampler

from maskrcnn_benchmark.data.collate_batch import BatchCollator
from maskrcnn_benchmark.data.samplers import DistributedSampler, GroupedBatchSampler, IterationBasedBatchSampler
from maskrcnn_benchmark.data.seeded import SeededBatchSampler, SeededDataset, SeededIndex, sample_seed


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


# ----------------------------------------------------------------- seeded augmentation (data/seeded.py)


class _RandomDataset(torch.utils.data.Dataset):
    """Items draw from all three global generators, like the transforms do."""

    name = "random"

    def __getitem__(self, index):
        return torch.rand(1).item(), random.random(), np.random.rand(), index

    def __len__(self):
        return 10

    def get_img_info(self, index):
        return {"height": 1, "width": 2}


def test_seeded_index_is_an_int_that_keeps_its_seed_through_pickling():
    index = SeededIndex(3, seed=2**63 + 5)
    copy = pickle.loads(pickle.dumps(index))
    assert copy == 3 and isinstance(copy, int) and copy.seed == 2**63 + 5 and [0, 1, 2, 3][copy] == 3


def test_sample_seeds_differ_by_every_argument_and_are_stable():
    seeds = {sample_seed(s, r, i, p) for s in (0, 1) for r in (0, 1) for i in (0, 1) for p in (0, 1)}
    assert len(seeds) == 16 and all(0 <= s < 2**64 for s in seeds)
    assert sample_seed(7, 1, 2, 3) == sample_seed(7, 1, 2, 3)


def test_seeded_batch_sampler_tags_by_iteration_and_position_also_when_resumed():
    base = BatchSampler(SequentialSampler(range(5)), 2, drop_last=False)
    full = list(SeededBatchSampler(base, 7, base_seed=3, rank=1))
    assert full == list(IterationBasedBatchSampler(base, 7))  # the same indices
    assert [[i.seed for i in b] for b in full] == [
        [sample_seed(3, 1, it, pos) for pos in range(len(b))] for it, b in enumerate(full)
    ]
    resumed = list(SeededBatchSampler(base, 7, start_iter=4, base_seed=3, rank=1))
    assert [[(int(i), i.seed) for i in b] for b in resumed] == [[(int(i), i.seed) for i in b] for b in full[4:]]
    other_rank = list(SeededBatchSampler(base, 7, base_seed=3, rank=0))
    assert all(a.seed != b.seed for x, y in zip(full, other_rank) for a, b in zip(x, y))


def test_seeded_dataset_draws_from_the_seed_and_leaves_the_callers_generators_alone():
    dataset = SeededDataset(_RandomDataset())
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    before = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    first = dataset[SeededIndex(4, seed=11)]
    assert dataset[SeededIndex(4, seed=11)] == first and dataset[SeededIndex(4, seed=12)] != first
    assert first[3] == 4 and type(first[3]) is int  # the wrapped dataset gets a plain index
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
    assert (np.random.get_state()[1] == before[2]).all()
    plain = dataset[4]  # a plain index: the caller's generators, as without the wrapper
    assert plain != first and not torch.equal(torch.get_rng_state(), before[0])


def test_seeded_dataset_stands_in_for_the_wrapped_one():
    inner = _RandomDataset()
    dataset = SeededDataset(inner)
    assert isinstance(dataset, _RandomDataset) and isinstance(dataset, SeededDataset)
    assert len(dataset) == 10 and dataset.name == "random" and dataset.get_img_info(0)["width"] == 2
    assert not hasattr(dataset, "__getitems__")  # a batched fetch would bypass the seeding
    copy = pickle.loads(pickle.dumps(dataset))  # data workers under the spawn start method
    assert type(copy) is SeededDataset and copy.name == "random"


def test_data_loader_workers_load_what_the_main_process_loads():
    dataset = SeededDataset(_RandomDataset())
    sampler = SeededBatchSampler(BatchSampler(SequentialSampler(range(10)), 3, drop_last=False), 5, base_seed=1)

    def load(num_workers):
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=lambda batch: batch
        )
        return list(loader)

    torch.manual_seed(5)
    state = torch.get_rng_state()
    in_main = load(0)
    assert load(2) == in_main
    # The main process's stream moved only by the DataLoader's own seed draw (the same with workers).
    torch.set_rng_state(state)
    torch.empty((), dtype=torch.int64).random_()
    after_draw = torch.get_rng_state()
    torch.set_rng_state(state)
    load(0)
    assert torch.equal(torch.get_rng_state(), after_draw)
