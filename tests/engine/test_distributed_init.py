"""Joining the process group: collective timeouts and the roll call of ranks."""

import pytest

from maskrcnn_benchmark.engine import distributed_init
from maskrcnn_benchmark.engine.distributed_init import collective_timeout_s


@pytest.mark.parametrize(
    "dist_timeout,backend,expected",
    [
        (0, "gloo", 300.0),  # automatic on CPU: minutes, not torch's 30
        (0, "nccl", 600.0),  # automatic on GPUs: torch's NCCL default
        (7, "gloo", 7.0),
        (45, "nccl", 45.0),
    ],
)
def test_collective_timeout_from_dist_timeout(dist_timeout, backend, expected):
    assert collective_timeout_s(dist_timeout, backend) == expected


def test_negative_dist_timeout_is_refused():
    with pytest.raises(ValueError, match="DIST_TIMEOUT"):
        collective_timeout_s(-1, "gloo")


def test_init_distributed_passes_the_timeout_and_starts_the_roll_call(monkeypatch):
    import datetime

    import torch.distributed as dist

    calls = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kwargs: calls.setdefault("init", kwargs))
    monkeypatch.setattr(distributed_init.liveness, "start", lambda timeout_s: calls.setdefault("start", timeout_s))
    monkeypatch.setattr(distributed_init.liveness, "install_failure_report", lambda: calls.setdefault("report", True))
    assert distributed_init.init_distributed("cpu", 0, dist_timeout=4)
    assert calls["init"]["backend"] == "gloo" and calls["init"]["timeout"] == datetime.timedelta(seconds=4)
    assert calls["start"] == 4 and calls["report"]
    calls.clear()
    assert distributed_init.init_distributed("cpu", 0)  # the default: 0 = automatic
    assert calls["init"]["timeout"] == datetime.timedelta(seconds=300)
    monkeypatch.setenv("WORLD_SIZE", "1")
    calls.clear()
    assert not distributed_init.init_distributed("cpu", 0) and not calls
