"""tools/train_net.py end to end: a diverging run stops with advice that works as written, a resumed
run applies the config's schedule, and a second training into the same OUTPUT_DIR refuses to start.
Tiny runs on the tiny dataset of tools/tiny_training.py."""

import os
import subprocess
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import tiny_training as tt  # noqa: E402


def _train(output_dir, register, *opts, check=True):
    command = tt.launcher() + tt.train_args(output_dir, register, opts)
    proc = subprocess.run(command, cwd=tt.REPO, env=tt.run_env(), capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, output[-4000:]
    return proc.returncode, output


def _last_checkpoint(output_dir):
    return (output_dir / "last_checkpoint").read_text().strip()


def test_a_diverging_run_stops_and_rerunning_it_with_a_lower_rate_resumes_from_healthy_weights(tmp_path):
    register = tt.write_dataset(tmp_path / "data", 4)
    out = tmp_path / "run"
    # From iteration 4 on the rate is 0.01 * 1e6: the run explodes within a few iterations.
    diverging = [
        "SOLVER.MAX_ITER",
        10,
        "SOLVER.IMS_PER_BATCH",
        2,
        "SOLVER.CHECKPOINT_PERIOD",
        1,
        "SOLVER.STEPS",
        "(3,)",
        "SOLVER.GAMMA",
        1e6,
    ]
    code, log = _train(out, register, *diverging, check=False)
    assert code != 0
    assert "Training stopped before this step was applied" in log and "run the same command again" in log
    resume_from = _last_checkpoint(out)
    state = torch.load(resume_from, weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert state["iteration"] <= 4  # weights trained at the exploding rate never became last_checkpoint
    stopped_at = max(m["iteration"] for m in tt.metrics(out)) if (out / "metrics.json").exists() else 0
    later = [p.name for p in out.glob("model_*.pth") if int(p.stem.split("_")[1]) > state["iteration"]]
    assert later == [], later  # the unhealthy checkpoint was deleted

    # The advice: a lower rate (here: no step-up), the same command otherwise.
    _, log = _train(out, register, *diverging[:-2], "SOLVER.GAMMA", 0.1)
    assert f"Resuming at iteration {state['iteration']} with the config's schedule" in log
    assert "gamma: 1000000.0 -> 0.1" in log
    final = tt.metrics(out)
    assert final[-1]["iteration"] == 10 and stopped_at <= 10
    assert [m["lr"] for m in final if m["iteration"] > state["iteration"]] == [
        0.01 * 0.1 if i >= 3 else 0.01 for i in range(state["iteration"], 10)
    ]
    assert "GAMMA: 0.1" in (out / "config.yml").read_text()


def test_a_resumed_run_applies_a_changed_base_lr_and_max_iter(tmp_path):
    register = tt.write_dataset(tmp_path / "data", 4)
    out = tmp_path / "run"
    _train(out, register, "SOLVER.MAX_ITER", 2, "SOLVER.IMS_PER_BATCH", 2)
    _, log = _train(out, register, "SOLVER.MAX_ITER", 4, "SOLVER.IMS_PER_BATCH", 2, "SOLVER.BASE_LR", 0.002)
    assert "base_lrs: [0.01, 0.02] -> [0.002, 0.004]" in log
    lrs = {m["iteration"]: m["lr"] for m in tt.metrics(out)}
    assert lrs[1] == lrs[2] == 0.01 and lrs[3] == lrs[4] == 0.002
    assert "BASE_LR: 0.002" in (out / "config.yml").read_text()
    _, log = _train(out, register, "SOLVER.MAX_ITER", 3, "SOLVER.IMS_PER_BATCH", 2)
    assert "nothing left to train" in log


def test_a_second_training_into_the_same_output_dir_refuses_and_names_the_first(tmp_path):
    register = tt.write_dataset(tmp_path / "data", 4)
    out = tmp_path / "run"
    first = subprocess.Popen(
        tt.launcher() + tt.train_args(out, register, ["SOLVER.MAX_ITER", 1000, "SOLVER.IMS_PER_BATCH", 2]),
        cwd=tt.REPO,
        env=tt.run_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 300
        while not (out / "metrics.json").exists():
            assert first.poll() is None and time.time() < deadline, "the first training did not start"
            time.sleep(0.5)
        code, log = _train(out, register, "SOLVER.MAX_ITER", 2, "SOLVER.IMS_PER_BATCH", 2, check=False)
        assert code != 0
        assert f"is in use by another training (pid {first.pid} on" in log
        assert first.poll() is None  # the first one is undisturbed
    finally:
        first.kill()
        first.wait()
