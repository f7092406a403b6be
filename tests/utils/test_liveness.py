"""utils/liveness.py on a real TCPStore in this process: the roll call names the ranks that stopped
beating, and wait_for_all waits for a slow rank as long as it beats but not for a stopped one."""

import sys
import threading
import time

import pytest
import torch.distributed as dist

from maskrcnn_benchmark.utils import liveness
from maskrcnn_benchmark.utils.liveness import CollectiveTimeoutError, Liveness

INTERVAL = 0.05
TIMEOUT = 0.6


@pytest.fixture
def pair():
    """Rank 0 and rank 1 of a world of 2, each with its own client of one store."""
    server = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    ranks = [
        Liveness(dist.TCPStore("127.0.0.1", server.port, is_master=False), r, 2, TIMEOUT, INTERVAL) for r in (0, 1)
    ]
    yield ranks
    for r in ranks:
        r.stop()


def test_roll_call_names_the_rank_that_stopped_beating(pair):
    zero, one = pair
    assert zero.silent_ranks() == [] and one.silent_ranks() == []
    one.stop()  # what SIGSTOP does to its beating thread
    assert zero.silent_ranks() == [1]
    assert zero.describe([1]).startswith("rank 1 (host ") and ", pid " in zero.describe([1])


def test_wait_for_all_returns_when_everyone_arrived(pair):
    zero, one = pair
    late = threading.Thread(target=lambda: (time.sleep(3 * TIMEOUT), one.wait_for_all("evaluation")))
    late.start()
    start = time.monotonic()
    zero.wait_for_all("evaluation")  # longer than TIMEOUT, but rank 1 kept beating
    late.join()
    assert time.monotonic() - start >= 2 * TIMEOUT
    # the next wait is a new one (no leftover arrivals)
    both = [threading.Thread(target=r.wait_for_all, args=("again",)) for r in pair]
    for t in both:
        t.start()
    for t in both:
        t.join(10)
    assert not any(t.is_alive() for t in both)


def test_wait_for_all_fails_naming_a_stopped_rank(pair):
    zero, one = pair
    one.stop()
    start = time.monotonic()
    with pytest.raises(CollectiveTimeoutError, match=r"waited at 'evaluation' for rank 1 \(host .*stopped"):
        zero.wait_for_all("evaluation")
    assert TIMEOUT <= time.monotonic() - start < TIMEOUT + 5


def test_collective_failures_are_recognised():
    assert liveness.is_collective_failure(RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer"))
    assert liveness.is_collective_failure(dist.DistBackendError("NCCL error"))
    assert not liveness.is_collective_failure(RuntimeError("CUDA out of memory"))
    assert not liveness.is_collective_failure(ValueError("gloo"))


def test_uncaught_collective_failure_is_followed_by_the_roll_call(pair, monkeypatch, capsys):
    zero, one = pair
    one.stop()
    monkeypatch.setattr(liveness, "_active", zero)
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: seen.append(exc[0]))
    liveness.install_failure_report()
    liveness.install_failure_report()  # once only
    error = RuntimeError("[gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 5000ms for recv operation")
    sys.excepthook(RuntimeError, error, None)
    assert seen == [RuntimeError]  # the previous hook (the traceback) ran first, once
    report = liveness.failure_report(zero, error)
    assert "rank 0: a collective failed (" in report and "Not answering: rank 1 (host " in report
    monkeypatch.setattr(zero, "rank", 1)  # a rank whose log does not reach the console prints it too
    sys.excepthook(RuntimeError, error, None)
    assert "rank 1: a collective failed (" in capsys.readouterr().err


def test_a_rank_that_never_started_is_silent_without_blocking(pair):
    zero, _ = pair
    three = Liveness(zero.store, 0, 4, TIMEOUT, INTERVAL)  # a world of 4 where ranks 2 and 3 never started
    try:
        start = time.monotonic()
        assert three.silent_ranks() == [2, 3]
        assert three.describe([2]) == "rank 2 (not started)"
        assert time.monotonic() - start < 2
    finally:
        three.stop()
