"""Which processes of a distributed run still answer.

Each process adds 1 to a counter of its own in the rendezvous store every second, from a background
thread. A process that is stopped (SIGSTOP, a debugger), hung with the interpreter lock held, or dead
stops counting; one that is merely busy (evaluating, saving a checkpoint) keeps counting. So:

- a process whose collective failed (gloo's timeout, a peer gone) can name the ranks that do not
  answer: a roll call (install_failure_report does it for an uncaught failure);
- a wait that may legitimately be long (the others waiting while the main process evaluates) lasts
  as long as the awaited processes answer, instead of being cut by the collective timeout, and fails
  with their names once they stopped answering for that timeout (wait_for_all).

The counters live in a client of their own to the run's store (MASTER_ADDR:MASTER_PORT), so a broken
process group does not stop the roll call. Counters are compared with themselves, never clocks of
different hosts.
"""

import datetime
import logging
import os
import socket
import sys
import threading
import time
from typing import Callable, List, Optional, Sequence

import torch.distributed as dist

BEAT_INTERVAL_S = 1.0
WAIT_POLL_S = 0.25
LOGGER_NAME = "maskrcnn_benchmark.liveness"


class CollectiveTimeoutError(RuntimeError):
    """Processes stopped answering while the others waited for them."""


class Liveness:
    """The beating thread of this process, and the roll call of the others (see the module doc)."""

    def __init__(
        self, store: "dist.Store", rank: int, world_size: int, timeout_s: float, interval_s: float = BEAT_INTERVAL_S
    ):
        self.store = store
        self.rank = rank
        self.world_size = world_size
        self.timeout_s = float(timeout_s)  # the collective timeout (DIST_TIMEOUT), for waits and messages
        self.interval_s = interval_s
        self._lock = threading.Lock()  # one store client for the beating thread and the main thread
        self._stop = threading.Event()
        self._waits = 0
        self._call("set", f"who/{rank}", f"host {socket.gethostname()}, pid {os.getpid()}")
        self._call("add", f"beat/{rank}", 1)
        self._thread = threading.Thread(target=self._beat, name="liveness", daemon=True)
        self._thread.start()

    def _call(self, method: str, *args):
        with self._lock:
            return getattr(self.store, method)(*args)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._call("add", f"beat/{self.rank}", 1)
            except Exception:  # the store is gone (the launcher exited): nobody is left to ask
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def beats(self, ranks: Sequence[int]) -> List[int]:
        """The current counters of `ranks` (0 for a rank that has not started: a store get would wait)."""
        keys = [f"beat/{r}" for r in ranks]
        if self._call("check", keys):
            return [int(v) for v in self._call("multi_get", keys)]
        return [self._call("add", key, 0) for key in keys]

    def describe(self, ranks: Sequence[int]) -> str:
        """'rank 1 (host h, pid 12)' for each of `ranks`, comma-separated."""
        names = []
        for r in ranks:
            key = f"who/{r}"
            who = self._call("get", key).decode() if self._call("check", [key]) else "not started"
            names.append(f"rank {r} ({who})")
        return ", ".join(names)

    def silent_ranks(self, ranks: Optional[Sequence[int]] = None, wait_s: Optional[float] = None) -> List[int]:
        """Roll call: the ranks among `ranks` (default: the others) whose counter did not move in
        wait_s seconds (default: 2.5 beats)."""
        ranks = [r for r in range(self.world_size) if r != self.rank] if ranks is None else list(ranks)
        before = self.beats(ranks)
        time.sleep(2.5 * self.interval_s if wait_s is None else wait_s)
        after = self.beats(ranks)
        return [r for r, a, b in zip(ranks, before, after) if a == b]

    def wait_for_all(self, name: str) -> None:
        """A barrier in the store: returns once every rank called wait_for_all (the same calls in the
        same order on every rank). Raises CollectiveTimeoutError when a rank that has not arrived
        stopped answering for timeout_s."""
        key = f"wait/{self._waits}/{name}"
        self._waits += 1
        self._call("set", f"{key}/{self.rank}", "")
        self._call("add", key, 1)
        others = [r for r in range(self.world_size) if r != self.rank]
        last_beats = self.beats(others)
        last_change = {r: time.monotonic() for r in others}
        while self._call("add", key, 0) < self.world_size:
            time.sleep(WAIT_POLL_S)
            now = time.monotonic()
            beats = self.beats(others)
            for r, beat, last in zip(others, beats, last_beats):
                if beat != last:
                    last_change[r] = now
            last_beats = beats
            stale = [r for r in others if now - last_change[r] > self.timeout_s]
            missing = [r for r in stale if not self._call("check", [f"{key}/{r}"])]
            if missing:
                raise CollectiveTimeoutError(
                    f"rank {self.rank} waited at {name!r} for {self.describe(missing)}, which stopped answering "
                    f"{self.timeout_s:g} s ago (DIST_TIMEOUT): stopped (SIGSTOP, a debugger), hung or dead."
                )


_active: Optional[Liveness] = None


def start(timeout_s: float) -> Optional[Liveness]:
    """Start this process's beating (once), in a run launched with MASTER_ADDR / MASTER_PORT (torchrun,
    torch.distributed.launch) whose process group is initialised; None otherwise."""
    global _active
    if _active is not None:
        return _active
    if not (dist.is_available() and dist.is_initialized()) or "MASTER_ADDR" not in os.environ:
        return None
    try:
        client = dist.TCPStore(
            os.environ["MASTER_ADDR"],
            int(os.environ["MASTER_PORT"]),
            is_master=False,
            wait_for_workers=False,
            timeout=datetime.timedelta(seconds=max(timeout_s, 1.0)),
        )
    except Exception as e:  # a diagnosis only: training goes on without it
        logging.getLogger(LOGGER_NAME).warning(
            "cannot reach the run's store (%s): a failed collective will not name the ranks that stopped", e
        )
        return None
    # A restarted torchrun attempt (--max-restarts) reuses the store: keep its keys apart.
    prefix = f"maskrcnn_benchmark/liveness/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
    _active = Liveness(dist.PrefixStore(prefix, client), dist.get_rank(), dist.get_world_size(), timeout_s)
    return _active


def active() -> Optional[Liveness]:
    """The running Liveness of this process, if any."""
    return _active


def is_collective_failure(exc: BaseException) -> bool:
    """A failed collective: torch's distributed errors (NCCL, the store) and gloo's timeouts and
    closed connections, which arrive as plain RuntimeErrors naming gloo."""
    return isinstance(exc, dist.DistError) or (isinstance(exc, RuntimeError) and "gloo" in str(exc))


def failure_report(liveness: Liveness, exc: BaseException) -> str:
    """After a failed collective: which ranks do not answer (roll call), as one message."""
    head = f"rank {liveness.rank}: a collective failed ({str(exc).strip().splitlines()[0][:200]})."
    try:
        silent = liveness.silent_ranks()
    except Exception as e:  # without torchrun the store is served by rank 0, which may be the one stopped
        return f"{head} The run's store does not answer either ({type(e).__name__}): rank 0 may be stopped or dead."
    if silent:
        return (
            f"{head} Not answering: {liveness.describe(silent)}: stopped (SIGSTOP, a debugger), hung or dead. "
            f"Collectives wait DIST_TIMEOUT = {liveness.timeout_s:g} s for the others."
        )
    return (
        f"{head} Every other rank still answers: one of them spent longer than DIST_TIMEOUT = "
        f"{liveness.timeout_s:g} s outside the collective (or failed on its own); raise DIST_TIMEOUT if that "
        f"wait is legitimate."
    )


def install_failure_report() -> None:
    """On an uncaught collective failure, after the traceback: the roll call's message (stderr and the
    log). Covers collectives called anywhere (DDP's gradient all-reduce inside backward too). NCCL's
    watchdog aborts the process on a timeout instead, with its own message."""
    previous: Callable = sys.excepthook
    if getattr(previous, "_liveness_report", False):
        return

    def hook(exc_type, exc, tb) -> None:
        previous(exc_type, exc, tb)
        if _active is not None and is_collective_failure(exc):
            message = failure_report(_active, exc)
            logging.getLogger(LOGGER_NAME).error(message)
            if _active.rank != 0:  # rank 0's log also prints on the console (utils/logger.py); the others' do not
                print(message, file=sys.stderr, flush=True)

    hook._liveness_report = True  # type: ignore[attr-defined]
    sys.excepthook = hook
