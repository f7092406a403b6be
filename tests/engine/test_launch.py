"""Command-line handling shared by tools/train_net.py and tools/test_net.py."""
import argparse

import pytest

from maskrcnn_benchmark.engine.launch import add_common_arguments, iou_types_of, seed_everything


def _parse(argv, monkeypatch, local_rank_env=None):
    if local_rank_env is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", local_rank_env)
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("argv,env,expected", [
    (["--local_rank", "3"], None, 3),     # torch.distributed.launch (old spelling)
    (["--local-rank=2"], None, 2),        # torch.distributed.launch (new spelling)
    ([], "5", 5),                         # torchrun sets LOCAL_RANK
    ([], None, 0),                        # a single process
])
def test_local_rank_from_either_flag_or_the_environment(argv, env, expected, monkeypatch):
    assert _parse(argv + ["--config-file", "x.yaml"], monkeypatch, env).local_rank == expected


def test_trailing_overrides_are_kept_as_key_value_pairs(monkeypatch):
    args = _parse(["--config-file", "x.yaml", "SOLVER.BASE_LR", "0.1", "MODEL.DEVICE", "cpu"], monkeypatch)
    assert args.config_file == "x.yaml" and args.opts == ["SOLVER.BASE_LR", "0.1", "MODEL.DEVICE", "cpu"]


def test_iou_types_follow_the_model_heads():
    from maskrcnn_benchmark.config import cfg

    c = cfg.clone()
    assert iou_types_of(c) == ("bbox",)
    c.MODEL.MASK_ON, c.MODEL.KEYPOINT_ON = True, True
    assert iou_types_of(c) == ("bbox", "segm", "keypoints")


def test_seed_everything_is_reproducible_and_random_when_negative():
    import torch

    seed_everything(7)
    a = torch.rand(3)
    seed_everything(7)
    assert torch.equal(a, torch.rand(3))
    assert seed_everything(-1) >= 0


@pytest.mark.parametrize("dist_timeout,backend,expected", [
    (0, "gloo", 300.0),      # automatic on CPU: minutes, not torch's 30
    (0, "nccl", 600.0),      # automatic on GPUs: torch's NCCL default
    (7, "gloo", 7.0),
    (45, "nccl", 45.0),
])
def test_collective_timeout_from_dist_timeout(dist_timeout, backend, expected):
    from maskrcnn_benchmark.engine.launch import collective_timeout_s

    assert collective_timeout_s(dist_timeout, backend) == expected


def test_negative_dist_timeout_is_refused():
    from maskrcnn_benchmark.engine.launch import collective_timeout_s

    with pytest.raises(ValueError, match="DIST_TIMEOUT"):
        collective_timeout_s(-1, "gloo")


def test_init_distributed_passes_the_timeout_and_starts_the_roll_call(monkeypatch):
    import datetime

    import torch.distributed as dist

    from maskrcnn_benchmark.engine import launch

    calls = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kwargs: calls.setdefault("init", kwargs))
    monkeypatch.setattr(launch.liveness, "start", lambda timeout_s: calls.setdefault("start", timeout_s))
    monkeypatch.setattr(launch.liveness, "install_failure_report", lambda: calls.setdefault("report", True))
    assert launch.init_distributed("cpu", 0, dist_timeout=4)
    assert calls["init"]["backend"] == "gloo" and calls["init"]["timeout"] == datetime.timedelta(seconds=4)
    assert calls["start"] == 4 and calls["report"]
    calls.clear()
    assert launch.init_distributed("cpu", 0)  # None: the loaded config's DIST_TIMEOUT (default 0 = automatic)
    assert calls["init"]["timeout"] == datetime.timedelta(seconds=300)
    monkeypatch.setenv("WORLD_SIZE", "1")
    calls.clear()
    assert not launch.init_distributed("cpu", 0) and not calls


def test_flags_given_after_the_overrides_are_taken_out_of_them():
    import argparse

    from maskrcnn_benchmark.engine.launch import take_trailing_flags

    args = argparse.Namespace(opts=["SOLVER.MAX_ITER", "2", "--skip-test"], skip_test=False, allow_random_weights=False)
    take_trailing_flags(args, "--skip-test", "--allow-random-weights")
    assert args.opts == ["SOLVER.MAX_ITER", "2"] and args.skip_test and not args.allow_random_weights
    take_trailing_flags(argparse.Namespace(opts=None), "--skip-test")  # no overrides at all
