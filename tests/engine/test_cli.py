"""Command-line handling shared by tools/train_net.py and tools/test_net.py."""

import argparse

import pytest

from maskrcnn_benchmark.engine.cli import add_common_arguments, take_trailing_flags


def _parse(argv, monkeypatch, local_rank_env=None):
    if local_rank_env is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", local_rank_env)
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "argv,env,expected",
    [
        (["--local_rank", "3"], None, 3),  # torch.distributed.launch (old spelling)
        (["--local-rank=2"], None, 2),  # torch.distributed.launch (new spelling)
        ([], "5", 5),  # torchrun sets LOCAL_RANK
        ([], None, 0),  # a single process
    ],
)
def test_local_rank_from_either_flag_or_the_environment(argv, env, expected, monkeypatch):
    assert _parse(argv + ["--config-file", "x.yaml"], monkeypatch, env).local_rank == expected


def test_trailing_overrides_are_kept_as_key_value_pairs(monkeypatch):
    args = _parse(["--config-file", "x.yaml", "SOLVER.BASE_LR", "0.1", "MODEL.DEVICE", "cpu"], monkeypatch)
    assert args.config_file == "x.yaml" and args.opts == ["SOLVER.BASE_LR", "0.1", "MODEL.DEVICE", "cpu"]


def test_flags_given_after_the_overrides_are_taken_out_of_them():
    args = argparse.Namespace(opts=["SOLVER.MAX_ITER", "2", "--skip-test"], skip_test=False, allow_random_weights=False)
    take_trailing_flags(args, "--skip-test", "--allow-random-weights")
    assert args.opts == ["SOLVER.MAX_ITER", "2"] and args.skip_test and not args.allow_random_weights
    take_trailing_flags(argparse.Namespace(opts=None), "--skip-test")  # no overrides at all
