"""What tools/train_net.py and tools/test_net.py do before the work: parse the command line, load
and check the config, set up the output folder and the log."""

import argparse
import logging
import os

import torch.distributed as dist

from ..config import CfgNode
from ..config import cfg as global_cfg
from ..config.checks import check_config
from ..utils.collect_env import collect_env_info
from ..utils.comm import get_rank
from ..utils.logger import setup_logger
from ..utils.miscellaneous import mkdir


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--config-file, --local_rank / --local-rank (torch.distributed.launch passes either; torchrun
    sets LOCAL_RANK instead) and the trailing KEY VALUE overrides."""
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument(
        "--local_rank", "--local-rank", dest="local_rank", type=int, default=int(os.environ.get("LOCAL_RANK", 0))
    )
    parser.add_argument(
        "opts",
        help="Modify config options using the command-line (KEY VALUE pairs)",
        default=None,
        nargs=argparse.REMAINDER,
    )


def take_trailing_flags(args: argparse.Namespace, *flags: str) -> None:
    """Also accept the store_true `flags` (e.g. "--skip-test") after the KEY VALUE overrides, where
    argparse leaves them in args.opts: remove them there and set their attributes."""
    for flag in flags:
        if flag in (args.opts or []):
            args.opts.remove(flag)
            setattr(args, flag.lstrip("-").replace("-", "_"), True)


def load_config(args: argparse.Namespace) -> CfgNode:
    """The global cfg with the config file and the overrides merged, its values checked, frozen."""
    cfg = global_cfg
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    check_config(cfg)  # nonsense values fail here, before any model, data or output is made
    cfg.freeze()
    return cfg


def setup_run(args: argparse.Namespace, cfg: CfgNode, output_dir: str, distributed: bool) -> logging.Logger:
    """Output folder, logger "maskrcnn_benchmark", and the environment / config in the log."""
    if output_dir:
        mkdir(output_dir)
    logger = setup_logger("maskrcnn_benchmark", output_dir, get_rank())
    logger.info("Using %d processes", dist.get_world_size() if distributed else 1)
    logger.info(args)
    logger.info("Collecting env info (might take some time)\n%s", collect_env_info())
    if args.config_file:
        with open(args.config_file, "r") as f:
            logger.info("Loaded configuration file %s:\n%s", args.config_file, f.read())
    logger.info("Running with config:\n%s", cfg)
    return logger
