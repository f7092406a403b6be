"""Resuming applies the config's schedule, not the checkpoint's.

A checkpoint stores the optimizer's hyper-parameters (lr, momentum, weight decay of each group) and
the scheduler's (base rates, milestones, warm-up, gamma). Restored as they are, a resumed run would
silently ignore a changed SOLVER.BASE_LR / STEPS / WEIGHT_DECAY ... while config.yml records the new
values. So: take a snapshot of the freshly built (config) settings, load the checkpoint, put the
config's settings back, keep only the progress (iteration, momentum buffers), and recompute the
learning rate of the current iteration. Every changed value is reported.
"""

from typing import Any, Dict, List

import torch

# Scheduler attributes that come from the config (everything else is progress).
_SCHEDULER_SETTINGS = ("base_lrs", "milestones", "gamma", "warmup_factor", "warmup_iters", "warmup_method")


def schedule_settings(optimizer: torch.optim.Optimizer, scheduler: Any) -> Dict[str, Any]:
    """The hyper-parameters of `optimizer`'s groups and `scheduler` (call before loading)."""
    return {
        "groups": [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups],
        "scheduler": {k: getattr(scheduler, k) for k in _SCHEDULER_SETTINGS if hasattr(scheduler, k)},
    }


def apply_schedule_settings(settings: Dict[str, Any], optimizer: torch.optim.Optimizer, scheduler: Any) -> List[str]:
    """Put `settings` (from schedule_settings) back after a checkpoint was loaded; the learning
    rates are recomputed for the scheduler's current iteration. Returns one line per value that
    the checkpoint had differently (empty when nothing changed)."""
    changes: List[str] = []
    loaded_settings = schedule_settings(optimizer, scheduler)
    for name, value in settings["scheduler"].items():
        old = loaded_settings["scheduler"].get(name)
        if _differs(old, value):
            changes.append(f"scheduler {name}: {old} -> {value}")
        setattr(scheduler, name, list(value) if isinstance(value, (list, tuple)) else value)
    if len(settings["groups"]) != len(optimizer.param_groups):
        raise ValueError(
            f"the checkpoint's optimizer has {len(optimizer.param_groups)} parameter groups, the config's "
            f"{len(settings['groups'])}"
        )
    for i, (fresh, group) in enumerate(zip(settings["groups"], optimizer.param_groups)):
        for name, value in fresh.items():
            if name in ("lr", "initial_lr"):
                continue  # follow from the scheduler (base_lrs) and the iteration
            if _differs(group.get(name), value):
                changes.append(f"optimizer group {i} {name}: {group.get(name)} -> {value}")
            group[name] = value
    lrs = scheduler.get_lr()
    for group, lr, base in zip(optimizer.param_groups, lrs, scheduler.base_lrs):
        group["lr"] = lr
        group["initial_lr"] = base
    scheduler._last_lr = list(lrs)
    return changes


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) != list(b)
    return a != b
