"""Stop a training run at the first sign of divergence, before the bad step is applied.

Two signs count: a loss that is NaN or infinite, and a total loss larger than
SOLVER.DIVERGENCE_RATIO times the run's reference loss. The reference is the median total loss of the
run's first `REFERENCE_ITERS` batches (before that, the median of the batches so far); it is saved in
every checkpoint, so a resumed run keeps the reference of the run it continues. A diverging run
typically goes 2 -> 1e3 -> 1e21 -> NaN within a few iterations: waiting for the NaN would let exploded
weights into the checkpoints.

The losses checked are the ones averaged over all processes, so every process stops together.
"""

import math
import statistics
from typing import Dict, List, Optional, Union

import torch

REFERENCE_ITERS = 20


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite, or grew past SOLVER.DIVERGENCE_RATIO times its reference;
    training stops before the optimizer applies that step."""


class LossGuard:
    """Checks the (process-averaged) losses of every batch.

    Arguments:
        divergence_ratio: a total loss above ratio * reference stops the run (<= 0: only
            non-finite losses do).
        reference: the reference loss of the run being resumed (None: measured on this run's first
            REFERENCE_ITERS batches).
    """

    def __init__(self, divergence_ratio: float, reference: Optional[float] = None):
        self.divergence_ratio = float(divergence_ratio)
        self.reference = reference
        self._first: List[float] = []

    def check(self, losses: Dict[str, Union[float, torch.Tensor]], iteration: int) -> float:
        """The total of `losses`; raises NonFiniteLossError when the run is diverging."""
        values = {k: float(v) for k, v in losses.items()}
        total = sum(values.values())
        terms = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        if not all(math.isfinite(v) for v in values.values()):
            raise NonFiniteLossError(f"Loss is not finite at iteration {iteration} ({terms}).")
        # Until the reference is fixed, the median of the losses so far stands in for it, so that a
        # run diverging from its very first steps is caught too.
        reference = self.reference
        if reference is None and self._first:
            reference = statistics.median(self._first)
        # (A reference <= 0 cannot scale: detection losses are positive, stand-in models' may not be.)
        if (
            reference is not None
            and reference > 0
            and self.divergence_ratio > 0
            and total > self.divergence_ratio * reference
        ):
            raise NonFiniteLossError(
                f"Loss is diverging at iteration {iteration}: {total:.4g} > SOLVER.DIVERGENCE_RATIO "
                f"({self.divergence_ratio:g}) x the run's reference loss {reference:.4g} (the median of "
                f"its first {REFERENCE_ITERS} iterations) ({terms})."
            )
        if self.reference is None:
            self._first.append(total)
            if len(self._first) >= REFERENCE_ITERS:
                self.reference = statistics.median(self._first)
        return total
