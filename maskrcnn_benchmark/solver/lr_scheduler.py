"""WarmupMultiStepLR: step decay with a warm-up, stepped once per iteration (not per epoch)."""

from bisect import bisect_right
from typing import List, Sequence

import torch


class WarmupMultiStepLR(torch.optim.lr_scheduler._LRScheduler):
    """lr(i) = base_lr * warmup(i) * gamma ** (number of milestones <= i).

    warmup(i) for i < warmup_iters is `warmup_factor` ("constant") or rises linearly from
    `warmup_factor` to 1 ("linear"); 1 afterwards. i is the iteration (last_epoch), starting at 0,
    so iteration 0 trains at base_lr * warmup_factor.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        warmup_factor: float = 1.0 / 3,
        warmup_iters: int = 500,
        warmup_method: str = "linear",
        last_epoch: int = -1,
    ):
        if list(milestones) != sorted(milestones):
            raise ValueError(f"Milestones should be a list of increasing integers. Got {milestones}")
        if warmup_method not in ("constant", "linear"):
            raise ValueError(f"Only 'constant' or 'linear' warmup_method accepted, got {warmup_method}")
        self.milestones = list(milestones)
        self.gamma = gamma
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        factor = 1.0
        if self.last_epoch < self.warmup_iters:
            if self.warmup_method == "constant":
                factor = self.warmup_factor
            else:
                alpha = self.last_epoch / self.warmup_iters
                factor = self.warmup_factor * (1 - alpha) + alpha
        decay = self.gamma ** bisect_right(self.milestones, self.last_epoch)
        return [base_lr * factor * decay for base_lr in self.base_lrs]
