"""LossGuard: non-finite losses, divergence against the run's reference loss."""

import pytest
import torch

from maskrcnn_benchmark.engine.loss_guard import REFERENCE_ITERS, LossGuard, NonFiniteLossError


def _losses(a, b=0.0):
    return {"loss_a": torch.tensor(a), "loss_b": torch.tensor(b)}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_terms_stop_at_once(bad):
    with pytest.raises(NonFiniteLossError, match=r"not finite at iteration 1 .*loss_b="):
        LossGuard(100.0).check(_losses(1.0, bad), 1)


def test_the_reference_is_the_median_of_the_first_iterations_and_earlier_ones_stand_in_before():
    guard = LossGuard(10.0)
    guard.check(_losses(2.0), 1)
    with pytest.raises(NonFiniteLossError, match="diverging at iteration 2"):
        guard.check(_losses(21.0), 2)  # > 10 x the only loss so far
    guard = LossGuard(10.0)
    for i in range(REFERENCE_ITERS):
        assert guard.check(_losses(1.0 + i, 0.5), i + 1) == pytest.approx(1.5 + i)
    assert guard.reference == pytest.approx(1.5 + (REFERENCE_ITERS - 1) / 2)
    guard.check(_losses(10 * guard.reference - 1.0), 30)  # below the limit
    with pytest.raises(NonFiniteLossError, match=r"diverging at iteration 31: .* > SOLVER.DIVERGENCE_RATIO \(10\)"):
        guard.check(_losses(10 * guard.reference + 1.0), 31)


def test_a_given_reference_is_used_and_ratio_zero_disables_the_ratio():
    with pytest.raises(NonFiniteLossError):
        LossGuard(100.0, reference=0.5).check(_losses(51.0), 7)
    assert LossGuard(0.0, reference=0.5).check(_losses(1e30), 7) == pytest.approx(1e30)
