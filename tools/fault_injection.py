r"""Kill, stop and interrupt tiny CPU trainings, and check that they resume exactly or fail fast.

    python tools/fault_injection.py                       # every scenario, in a temporary folder
    python tools/fault_injection.py --scenarios kill2 stall --work-dir /tmp/faults --keep

Scenarios (each prints PASS or FAIL with its numbers; the exit status is 1 if any failed):
  workers  DATALOADER.NUM_WORKERS 0, 1 and 2 load identical batches (images and randomly flipped
           boxes), and a data loader resumed at an iteration loads what the uninterrupted one did
  kill     kill -9 a one-process training (2 data workers, random flips) after a checkpoint, run the
           same command again: losses of every iteration and final weights equal an uninterrupted run's
  kill2    the same with two processes under torchrun
  sigint   Ctrl-C (SIGINT) while a checkpoint is being written: no partial file is left, every
           checkpoint loads, and the same command resumes exactly
  stall    SIGSTOP one of two processes (rank 1): the other exits within DIST_TIMEOUT (plus a short
           roll call) with a message naming the stopped rank, instead of hanging
  stall0   the same with rank 0 stopped (the one that writes checkpoints and logs)
  nodes    two torchrun launchers of one process each, meeting as two nodes (c10d rendezvous on
           127.0.0.1), equal one launcher with two processes

The runs use a tiny generated COCO-format dataset (8 images of 96x128) and the CPU Mask R-CNN config
with tiny overrides (tools/tiny_training.py); every run of a scenario keeps its log in the work folder.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_training as tt  # noqa: E402  (a sibling module of this script)

sys.path.insert(1, tt.REPO)  # the workers scenario loads data in this process: this checkout's package

POLL_S = 0.05
SAVE_POLL_S = 0.002  # fast enough to catch a checkpoint being written (tens of milliseconds at least)


@dataclass
class Outcome:
    scenario: str
    passed: bool
    details: str
    seconds: float = 0.0

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.scenario} ({self.seconds:.0f} s): {self.details}"


class Background:
    """A command running in a session of its own, its output in a file; signals reach its process
    group (like a terminal's Ctrl-C) or every process it started."""

    def __init__(self, command: List[str], log: Path):
        self.log = log
        with open(log, "w") as f:
            self.proc = subprocess.Popen(
                command,
                cwd=tt.REPO,
                env=tt.run_env(),
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_interruptible,
            )

    def signal_group(self, sig: int) -> None:
        """`sig` to the launched process's group (what a terminal's Ctrl-C reaches)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def signal_all(self, sig: int) -> None:
        """`sig` to every process of the run: torchrun starts each worker in a session of its own,
        beyond the reach of signal_group. The tree is listed before any of it dies."""
        for pid in [self.proc.pid] + _descendants(self.proc.pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rank_pid(self, rank: int) -> int:
        """The process of `rank`: the launched one itself, or the child of torchrun with RANK=rank."""
        ranks = {_environ(pid).get("RANK"): pid for pid in _children(self.proc.pid)}
        ranks.pop(None, None)  # data workers of a run without torchrun
        if not ranks and rank == 0:
            return self.proc.pid
        if str(rank) not in ranks:
            raise LookupError(f"no process of rank {rank} under {self.proc.pid}")
        return ranks[str(rank)]

    def close(self) -> None:
        """Whatever is still running: killed."""
        self.signal_all(signal.SIGKILL)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass


def _interruptible() -> None:
    # As in a terminal: SIGINT interrupts. A shell's background job inherits it ignored, and Python
    # leaves an ignored SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _children(pid: int) -> List[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _descendants(pid: int) -> List[int]:
    found = []
    for child in _children(pid):
        found += [child] + _descendants(child)
    return found


def _environ(pid: int) -> Dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            items = f.read().split(b"\0")
    except OSError:
        return {}
    return dict(item.decode(errors="replace").split("=", 1) for item in items if b"=" in item)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_until(
    condition: Callable[[], bool], timeout: float, what: str, process: Optional[Background] = None, poll: float = POLL_S
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and not process.running():
            raise RuntimeError(f"the run ended before {what}:\n{process.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout:.0f} s")
        time.sleep(poll)


def last_iteration(output_dir: Path) -> int:
    """The last iteration in metrics.json (0 if none yet)."""
    try:
        text = (output_dir / "metrics.json").read_text()
    except FileNotFoundError:
        return 0
    return max(map(int, re.findall(r'"iteration": (\d+)', text)), default=0)


def last_checkpoint(output_dir: Path) -> str:
    try:
        return os.path.basename((output_dir / "last_checkpoint").read_text().strip())
    except FileNotFoundError:
        return "none"


class Lab:
    """The work folder, the tiny dataset, the shared training options and the uninterrupted runs that
    scenarios compare with (made once per number of processes)."""

    def __init__(self, work_dir: Path, iters: int = 4, timeout_s: int = 5, run_timeout: float = 600):
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.register = tt.write_dataset(self.work_dir / "data", 8)
        self.iters = iters
        self.timeout_s = timeout_s
        self.run_timeout = run_timeout
        self._references: Dict[int, Path] = {}

    def options(self, *extra) -> list:
        # Random flips drawn in 2 data workers per process; a checkpoint every iteration.
        return [
            "SOLVER.MAX_ITER",
            self.iters,
            "SOLVER.IMS_PER_BATCH",
            2,
            "SOLVER.CHECKPOINT_PERIOD",
            1,
            "DATALOADER.NUM_WORKERS",
            2,
            "INPUT.HORIZONTAL_FLIP_PROB_TRAIN",
            0.5,
            *extra,
        ]

    def folder(self, name: str) -> Path:
        path = self.work_dir / name
        if path.exists():
            shutil.rmtree(path)
        return path

    def command(self, output_dir: Path, nproc: int = 1, *extra, **launch) -> List[str]:
        return tt.launcher(nproc, **launch) + tt.train_args(output_dir, self.register, self.options(*extra))

    def reference(self, nproc: int) -> Path:
        """An uninterrupted run with `nproc` processes."""
        if nproc not in self._references:
            output_dir = self.folder(f"straight_{nproc}proc")
            tt.run(self.command(output_dir, nproc), timeout=self.run_timeout)
            self._references[nproc] = output_dir
        return self._references[nproc]


def compare_with(reference: Path, output_dir: Path) -> tuple:
    """(passed, numbers): losses of every iteration and final weights, bit for bit."""
    ref, got = tt.metrics(reference), tt.metrics(output_dir)
    keys = [k for k in ref[0] if k.startswith("loss")] if ref else []
    same = sum(1 for a, b in zip(ref, got) if a["iteration"] == b["iteration"] and all(a[k] == b[k] for k in keys))
    worst = max((abs(a[k] - b[k]) for a, b in zip(ref, got) for k in keys), default=0.0)
    ref_weights, got_weights = tt.weights(reference), tt.weights(output_dir)
    differ = tt.weight_differences(ref_weights, got_weights)
    passed = len(ref) == len(got) and same == len(ref) and not differ
    numbers = (
        f"losses of {same}/{len(ref)} iterations bit-identical (largest difference {worst:.3g}), "
        f"final weights: {len(differ)} of {len(ref_weights)} tensors differ"
        + (f" (first: {differ[0]})" if differ else "")
    )
    return passed, numbers


def scenario_workers(lab: Lab) -> Outcome:
    """In this process: the training loaders of NUM_WORKERS 0, 1, 2, and one resumed at iteration 2."""
    import torch

    from maskrcnn_benchmark.config import cfg as global_cfg
    from maskrcnn_benchmark.data import make_data_loader

    def batches(num_workers: int, flip: float = 0.5, start_iter: int = 0) -> list:
        cfg = global_cfg.clone()
        cfg.merge_from_file(tt.CONFIG)
        cfg.merge_from_list(
            tt.TINY
            + ["DATASETS.REGISTER_COCO", repr(lab.register)]
            + list(
                map(
                    str,
                    lab.options(
                        "DATALOADER.NUM_WORKERS",
                        num_workers,
                        "INPUT.HORIZONTAL_FLIP_PROB_TRAIN",
                        flip,
                        "SOLVER.MAX_ITER",
                        6,
                    ),
                )
            )
        )
        loader = make_data_loader(cfg, is_train=True, start_iter=start_iter)
        return [(images.tensors, [t.bbox for t in targets], list(ids)) for images, targets, ids in loader]

    def same(a: list, b: list) -> bool:
        return len(a) == len(b) and all(
            ia == ib and torch.equal(ta, tb) and all(torch.equal(x, y) for x, y in zip(ba, bb))
            for (ta, ba, ia), (tb, bb, ib) in zip(a, b)
        )

    start = time.monotonic()
    base = batches(0)
    agree = {w: same(base, batches(w)) for w in (1, 2)}
    resumed = same(base[2:], batches(2, start_iter=2))
    unflipped = batches(0, flip=0.0)
    flipped = sum(not torch.equal(a, b) for (ta, _, _), (tb, _, _) in zip(base, unflipped) for a, b in zip(ta, tb))
    samples = sum(len(ids) for _, _, ids in base)
    passed = all(agree.values()) and resumed and 0 < flipped < samples
    details = (
        f"NUM_WORKERS 1 and 2 vs 0: {'identical' if agree[1] else 'DIFFERENT'} / "
        f"{'identical' if agree[2] else 'DIFFERENT'} over {len(base)} batches; {flipped} of {samples} "
        f"samples flipped; loader resumed at iteration 2 with 2 workers: "
        f"{'identical' if resumed else 'DIFFERENT'}"
    )
    return Outcome("workers", passed, details, time.monotonic() - start)


def scenario_kill(lab: Lab, nproc: int = 1) -> Outcome:
    """kill -9 (the whole process group) once iteration iters/2 is logged, then the same command."""
    name = "kill" if nproc == 1 else f"kill{nproc}"
    start = time.monotonic()
    reference = lab.reference(nproc)
    output_dir = lab.folder(name)
    kill_after = max(lab.iters // 2, 2)
    victim = Background(lab.command(output_dir, nproc), lab.work_dir / f"{name}_killed.log")
    try:
        _wait_until(
            lambda: last_iteration(output_dir) >= kill_after, lab.run_timeout, f"iteration {kill_after}", victim
        )
        victim.signal_all(signal.SIGKILL)
        victim.wait(60)
    finally:
        victim.close()
    killed_at, resumed_from = last_iteration(output_dir), last_checkpoint(output_dir)
    if (output_dir / "model_final.pth").exists() or resumed_from == "none":
        return Outcome(
            name,
            False,
            f"the kill came too late or too early (after iteration {killed_at}, last "
            f"checkpoint {resumed_from}): nothing to resume",
            time.monotonic() - start,
        )
    log = tt.run(lab.command(output_dir, nproc), timeout=lab.run_timeout)
    (lab.work_dir / f"{name}_resumed.log").write_text(log)
    passed, numbers = compare_with(reference, output_dir)
    details = (
        f"{nproc} process(es) killed after iteration {killed_at} of {lab.iters}, resumed from {resumed_from}: {numbers}"
    )
    return Outcome(name, passed, details, time.monotonic() - start)


def scenario_sigint(lab: Lab) -> Outcome:
    """SIGINT to the process group (what Ctrl-C does) while a checkpoint's temporary file exists."""
    start = time.monotonic()
    reference = lab.reference(1)
    output_dir = lab.folder("sigint")
    run = Background(lab.command(output_dir, 1), lab.work_dir / "sigint_interrupted.log")
    writing: List[str] = []

    def saving() -> bool:
        # The second checkpoint or a later one, so that an earlier one is there to resume from.
        names = [p.name for p in output_dir.glob(".model_*.tmp")] if output_dir.exists() else []
        writing[:] = [n for n in names if not n.startswith(".model_0000001.")]
        return bool(writing)

    try:
        _wait_until(saving, lab.run_timeout, "checkpoint being written", run, poll=SAVE_POLL_S)
        run.signal_group(signal.SIGINT)
        status = run.wait(60)
    finally:
        run.close()
    interrupted_at = last_iteration(output_dir)
    leftovers = [p.name for p in output_dir.glob("*.tmp")] + [p.name for p in output_dir.glob(".*.tmp")]
    checkpoints = sorted(output_dir.glob("model_*.pth"))
    loadable = sum(1 for p in checkpoints if _loads(p))
    resumed_from = last_checkpoint(output_dir)
    log = tt.run(lab.command(output_dir, 1), timeout=lab.run_timeout)
    (lab.work_dir / "sigint_resumed.log").write_text(log)
    passed, numbers = compare_with(reference, output_dir)
    passed = passed and status != 0 and not leftovers and loadable == len(checkpoints) and resumed_from != "none"
    details = (
        f"SIGINT while writing {writing[0] if writing else '?'} (after iteration {interrupted_at}): exit status "
        f"{status}, temporary files left {len(leftovers)}, checkpoints loadable {loadable}/{len(checkpoints)}; "
        f"resumed from {resumed_from}: {numbers}"
    )
    return Outcome("sigint", passed, details, time.monotonic() - start)


def _loads(path: Path) -> bool:
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=False)
        return True
    except Exception:
        return False


def scenario_stall(lab: Lab, stopped: int = 1) -> Outcome:
    """SIGSTOP rank `stopped` (of 2) after iteration 1 of a long run with DIST_TIMEOUT = lab.timeout_s."""
    start = time.monotonic()
    output_dir = lab.folder("stall")
    command = lab.command(
        output_dir,
        2,
        "DIST_TIMEOUT",
        lab.timeout_s,
        "SOLVER.MAX_ITER",
        1000,
        "SOLVER.CHECKPOINT_PERIOD",
        0,
        "DATALOADER.NUM_WORKERS",
        0,
    )
    run = Background(command, lab.work_dir / "stall.log")
    try:
        _wait_until(lambda: last_iteration(output_dir) >= 1, lab.run_timeout, "iteration 1", run)
        victim, other = run.rank_pid(stopped), run.rank_pid(1 - stopped)
        os.kill(victim, signal.SIGSTOP)
        stop_time = time.monotonic()
        _wait_until(lambda: not _alive(other), lab.timeout_s + 120, f"exit of rank {1 - stopped}")
        other_after = time.monotonic() - stop_time
        # torchrun now sends SIGTERM to the stopped process, which takes it only once continued (else
        # torchrun kills it 30 s later): continue it, as whoever stopped it would.
        os.kill(victim, signal.SIGCONT)
        _wait_until(lambda: not run.running(), 120, "exit of torchrun")
        torchrun_after = time.monotonic() - stop_time
    finally:
        run.close()
    output = run.output()
    message = next((line for line in output.splitlines() if "Not answering:" in line), "")
    # The other may first finish its iteration; then its collective times out, the roll call takes
    # 2.5 s, and at exit gloo may wait for another pending operation to time out (seen: up to one more
    # DIST_TIMEOUT).
    limit = 2 * lab.timeout_s + 15
    passed = f"Not answering: rank {stopped} (" in message and other_after <= limit
    details = (
        f"rank {stopped} stopped after iteration {last_iteration(output_dir)}; rank {1 - stopped} exited "
        f"{other_after:.1f} s later (DIST_TIMEOUT {lab.timeout_s} s, limit {limit} s); torchrun ended "
        f"{torchrun_after:.1f} s after the stop once rank {stopped} was continued; message: "
        f"{message.strip()[:400] or 'NONE'}"
    )
    return Outcome("stall" if stopped == 1 else f"stall{stopped}", passed, details, time.monotonic() - start)


def scenario_nodes(lab: Lab) -> Outcome:
    """Two launchers with --nnodes 2 --nproc_per_node 1 vs one launcher with 2 processes."""
    start = time.monotonic()
    reference = lab.reference(2)
    output_dir = lab.folder("nodes")
    port = tt.free_port()
    launchers = [
        Background(lab.command(output_dir, 1, nnodes=2, node_rank=node, port=port), lab.work_dir / f"nodes_{node}.log")
        for node in (0, 1)
    ]
    try:
        statuses = [launcher.wait(lab.run_timeout) for launcher in launchers]
    finally:
        for launcher in launchers:
            launcher.close()
    if any(statuses):
        tail = launchers[statuses.index(next(s for s in statuses if s))].output()[-2000:]
        return Outcome("nodes", False, f"launcher exit statuses {statuses}:\n{tail}", time.monotonic() - start)
    passed, numbers = compare_with(reference, output_dir)
    details = f"2 nodes x 1 process (c10d rendezvous at 127.0.0.1:{port}) vs 1 node x 2 processes: {numbers}"
    return Outcome("nodes", passed, details, time.monotonic() - start)


SCENARIOS: Dict[str, Callable[[Lab], Outcome]] = {
    "workers": scenario_workers,
    "kill": scenario_kill,
    "kill2": lambda lab: scenario_kill(lab, nproc=2),
    "sigint": scenario_sigint,
    "stall": scenario_stall,
    "stall0": lambda lab: scenario_stall(lab, stopped=0),
    "nodes": scenario_nodes,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--work-dir", help="folder for the dataset, runs and logs (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (always kept with --work-dir)")
    parser.add_argument("--iters", type=int, default=4, help="SOLVER.MAX_ITER of the runs (default 4)")
    parser.add_argument(
        "--timeout", type=int, default=5, help="DIST_TIMEOUT of the stall scenario, seconds (default 5)"
    )
    args = parser.parse_args()

    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="fault_injection_"))
    lab = Lab(work_dir, iters=args.iters, timeout_s=args.timeout)
    outcomes = []
    for name in args.scenarios:
        started = time.monotonic()
        try:
            outcome = SCENARIOS[name](lab)
        except Exception as e:  # a scenario that cannot even run is a failure, the others still run
            outcome = Outcome(name, False, f"{type(e).__name__}: {e}", time.monotonic() - started)
        outcomes.append(outcome)
        print(outcome.line(), flush=True)
    print(f"{sum(o.passed for o in outcomes)}/{len(outcomes)} passed; runs and logs in {work_dir}")
    if not args.work_dir and not args.keep:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
