"""make_optimizer groups and WarmupMultiStepLR values (docs/CONVENTIONS.md#solver)."""

import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.solver import WarmupMultiStepLR, make_lr_scheduler, make_optimizer


def _cfg(**solver):
    c = cfg.clone()
    for k, v in solver.items():
        c.SOLVER[k] = v
    return c


def test_bias_parameters_get_their_own_lr_and_decay():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    opt = make_optimizer(_cfg(BASE_LR=0.02, WEIGHT_DECAY=1e-4), model)
    by_param = {id(p): g for g in opt.param_groups for p in g["params"]}
    assert id(model[0].weight) not in by_param  # frozen parameters are left out
    assert by_param[id(model[1].weight)]["lr"] == 0.02 and by_param[id(model[1].weight)]["weight_decay"] == 1e-4
    for bias in (model[0].bias, model[1].bias):
        assert by_param[id(bias)]["lr"] == 0.04 and by_param[id(bias)]["weight_decay"] == 0
    assert opt.defaults["momentum"] == 0.9


def _lrs(scheduler, n):
    values = []
    for _ in range(n):
        values.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return values


def test_linear_warmup_then_steps():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_lr_scheduler(_cfg(STEPS=(6, 8), WARMUP_ITERS=4, WARMUP_FACTOR=0.2, GAMMA=0.5), opt)
    expected = [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert _lrs(sched, 10) == pytest.approx(expected)


def test_constant_warmup():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = WarmupMultiStepLR(opt, [3], gamma=0.1, warmup_factor=0.5, warmup_iters=2, warmup_method="constant")
    assert _lrs(sched, 5) == pytest.approx([0.05, 0.05, 0.1, 0.01, 0.01])


def test_state_dict_round_trip_continues_the_schedule():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = WarmupMultiStepLR(opt, [5], warmup_iters=3)
    _lrs(sched, 4)
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched2 = WarmupMultiStepLR(opt2, [5], warmup_iters=3)
    sched2.load_state_dict(sched.state_dict())
    opt2.load_state_dict(opt.state_dict())
    assert _lrs(sched2, 3) == pytest.approx(_lrs(sched, 3))


@pytest.mark.parametrize("kwargs", [dict(milestones=[5, 3]), dict(milestones=[3], warmup_method="cosine")])
def test_bad_arguments(kwargs):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError):
        WarmupMultiStepLR(opt, **kwargs)
