"""Seeding every random number generator of a process."""

from maskrcnn_benchmark.engine.rng_state import seed_everything


def test_seed_everything_is_reproducible_and_random_when_negative():
    import torch

    seed_everything(7)
    a = torch.rand(3)
    seed_everything(7)
    assert torch.equal(a, torch.rand(3))
    assert seed_everything(-1) >= 0
