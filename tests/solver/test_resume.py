"""Resuming with a changed schedule applies the config's values (and reports them)."""

import pytest
import torch

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer
from maskrcnn_benchmark.solver.resume import apply_schedule_settings, schedule_settings


def _solver(*opts):
    c = global_cfg.clone()
    c.merge_from_list(["SOLVER.WARMUP_ITERS", "0", *opts])
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(c, model)
    return model, optimizer, make_lr_scheduler(c, optimizer)


def _step(model, optimizer, scheduler, n):
    for _ in range(n):
        model(torch.ones(1, 3)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()


def test_a_changed_base_lr_steps_and_weight_decay_are_applied_on_resume():
    model, optimizer, scheduler = _solver("SOLVER.BASE_LR", "0.02", "SOLVER.STEPS", "(100,)")
    _step(model, optimizer, scheduler, 5)
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}

    model2, optimizer2, scheduler2 = _solver(
        "SOLVER.BASE_LR", "0.002", "SOLVER.STEPS", "(3,)", "SOLVER.WEIGHT_DECAY", "0.001"
    )
    settings = schedule_settings(optimizer2, scheduler2)
    optimizer2.load_state_dict(state["optimizer"])
    scheduler2.load_state_dict(state["scheduler"])
    changes = apply_schedule_settings(settings, optimizer2, scheduler2)
    text = "\n".join(changes)
    assert "base_lrs: [0.02, 0.04] -> [0.002, 0.004]" in text or "base_lrs" in text
    assert "milestones: [100] -> [3]" in text and "weight_decay: 0.0005 -> 0.001" in text
    assert scheduler2.last_epoch == 5  # progress is the checkpoint's
    # iteration 5 is past the new milestone 3: lr = 0.002 * 0.1 (biases: BIAS_LR_FACTOR 2)
    assert sorted(g["lr"] for g in optimizer2.param_groups) == pytest.approx([0.0002, 0.0004])
    assert scheduler2.get_last_lr() == [g["lr"] for g in optimizer2.param_groups]
    # Momentum buffers (progress) survive.
    assert all("momentum_buffer" in s for s in optimizer2.state_dict()["state"].values())
    _step(model2, optimizer2, scheduler2, 1)
    assert sorted(g["lr"] for g in optimizer2.param_groups) == pytest.approx([0.0002, 0.0004])


def test_an_unchanged_config_reports_nothing_and_keeps_the_rates():
    model, optimizer, scheduler = _solver("SOLVER.STEPS", "(2,)")
    _step(model, optimizer, scheduler, 3)
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    _, optimizer2, scheduler2 = _solver("SOLVER.STEPS", "(2,)")
    settings = schedule_settings(optimizer2, scheduler2)
    optimizer2.load_state_dict(state["optimizer"])
    scheduler2.load_state_dict(state["scheduler"])
    assert apply_schedule_settings(settings, optimizer2, scheduler2) == []
    assert [g["lr"] for g in optimizer2.param_groups] == pytest.approx([g["lr"] for g in optimizer.param_groups])
