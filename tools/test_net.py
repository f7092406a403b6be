r"""Evaluate a trained detector on DATASETS.TEST with COCO metrics (the original's tools/test_net.py).

    python tools/test_net.py --config-file CONFIG [--ckpt model_final.pth] [KEY VALUE ...]
    torchrun --nproc_per_node=8 tools/test_net.py --config-file CONFIG --ckpt ...

Without --ckpt the last checkpoint of OUTPUT_DIR is used if there is one, else MODEL.WEIGHT.
The weights must cover the whole model (every tensor, with the right shape): evaluating weights
that leave part of the model random is an error, and so is having no weights at all, unless
--allow-random-weights is given (then it runs, with a warning).
--compile (or MODEL.COMPILE.ENABLED True) evaluates with the model's dense parts compiled (torch.compile).
Results go to OUTPUT_DIR/inference/<dataset>/ (predictions.pth, bbox.json, segm.json, ...).
"""

import argparse
import logging
from typing import List, Optional

import torch

from maskrcnn_benchmark.config import CfgNode
from maskrcnn_benchmark.engine.cli import add_common_arguments, load_config, setup_run, take_trailing_flags
from maskrcnn_benchmark.engine.compile import COMPILE_HELP, maybe_compile, with_compile_flag
from maskrcnn_benchmark.engine.distributed_init import init_distributed
from maskrcnn_benchmark.engine.evaluation import run_test
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.utils.checkpoint import CheckpointFileError, DetectronCheckpointer, WeightsCoverageError
from maskrcnn_benchmark.utils.comm import synchronize

ALLOW_HINT = "Pass --allow-random-weights to evaluate anyway."


def load_weights(cfg: CfgNode, model: torch.nn.Module, ckpt, allow_random: bool, logger: logging.Logger) -> None:
    """Load the weights to evaluate into `model` (see the module docstring); SystemExit with a
    message saying what to pass when there are none or they do not cover the model."""
    checkpointer = DetectronCheckpointer(cfg, model, save_dir=cfg.OUTPUT_DIR)
    use_latest = ckpt is None
    weights = cfg.MODEL.WEIGHT if ckpt is None else ckpt
    if not weights and not (use_latest and checkpointer.has_checkpoint()):
        if not allow_random:
            raise SystemExit(
                f"test_net.py: no weights to evaluate: OUTPUT_DIR ({cfg.OUTPUT_DIR!r}) has no last_checkpoint and "
                f"MODEL.WEIGHT is empty. Pass --ckpt path/to/model_final.pth (or MODEL.WEIGHT path/to/weights), "
                f"or --allow-random-weights to evaluate a randomly initialised model."
            )
        logger.warning("No weights: evaluating a RANDOMLY INITIALISED model (--allow-random-weights).")
        return
    try:
        checkpointer.load(weights, use_latest=use_latest, require="none" if allow_random else "all")
    except WeightsCoverageError as e:
        raise SystemExit(f"test_net.py: {e.with_hint(ALLOW_HINT)}") from None
    except CheckpointFileError as e:  # the message names the file and what is wrong with it
        raise SystemExit(f"test_net.py: {e}") from None
    result = checkpointer.last_load_result
    if result is not None and not result.complete:
        not_loaded = len(result.missing) + len(result.mismatched)
        logger.warning(
            "Evaluating a PARTLY RANDOM model (--allow-random-weights): %d of %d model tensors were not loaded.",
            not_loaded,
            not_loaded + len(result.loaded),
        )


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="PyTorch Object Detection Inference")
    add_common_arguments(parser)
    parser.add_argument(
        "--ckpt", default=None, help="The path to the checkpoint for test, default is the latest checkpoint."
    )
    parser.add_argument(
        "--allow-random-weights",
        dest="allow_random_weights",
        action="store_true",
        help="Evaluate even when there are no weights or they do not cover the whole model (random or partly random "
        "weights; a warning is logged). Without it, either is an error.",
    )
    parser.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    args = parser.parse_args(argv)
    take_trailing_flags(args, "--allow-random-weights", "--compile")
    return with_compile_flag(args)


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    distributed = init_distributed(cfg.MODEL.DEVICE, args.local_rank, cfg.DIST_TIMEOUT)
    logger = setup_run(args, cfg, "", distributed)
    model = build_detection_model(cfg)
    model.to(torch.device(cfg.MODEL.DEVICE))
    load_weights(cfg, model, args.ckpt, args.allow_random_weights, logger)
    maybe_compile(model, cfg)  # MODEL.COMPILE / --compile
    run_test(cfg, model, distributed, cfg.OUTPUT_DIR)
    synchronize()


if __name__ == "__main__":
    main()
