"""Process set-up shared by tools/train_net.py and tools/test_net.py: the distributed process group
(torch.distributed.launch, torchrun, single process), config loading and logging."""
import argparse
import datetime
import logging
import os
import random
from typing import Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.constants import default_pg_nccl_timeout

from ..config import cfg as global_cfg
from ..config.checks import check_config
from ..utils import liveness
from ..utils.collect_env import collect_env_info
from ..utils.comm import get_rank
from ..utils.logger import setup_logger
from ..utils.miscellaneous import mkdir

# DIST_TIMEOUT 0 on CPU (gloo): long enough for the slowest legitimate collective wait of a CPU run (a
# checkpoint save, the first batches), short enough that a stopped process is noticed.
GLOO_TIMEOUT_S = 300.0


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--config-file, --local_rank / --local-rank (torch.distributed.launch passes either; torchrun
    sets LOCAL_RANK instead) and the trailing KEY VALUE overrides."""
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument("--local_rank", "--local-rank", dest="local_rank", type=int,
                        default=int(os.environ.get("LOCAL_RANK", 0)))
    parser.add_argument("opts", help="Modify config options using the command-line (KEY VALUE pairs)",
                        default=None, nargs=argparse.REMAINDER)


def take_trailing_flags(args: argparse.Namespace, *flags: str) -> None:
    """Also accept the store_true `flags` (e.g. "--skip-test") after the KEY VALUE overrides, where
    argparse leaves them in args.opts: remove them there and set their attributes."""
    for flag in flags:
        if flag in (args.opts or []):
            args.opts.remove(flag)
            setattr(args, flag.lstrip("-").replace("-", "_"), True)


def collective_timeout_s(dist_timeout: float, backend: str) -> float:
    """DIST_TIMEOUT in seconds, 0 meaning automatic: GLOO_TIMEOUT_S on CPU (a stopped process should not
    hold the others for torch's 30 minutes), torch's own default for NCCL."""
    if dist_timeout < 0:
        raise ValueError(f"DIST_TIMEOUT must be >= 0 seconds (0 = automatic), got {dist_timeout}")
    if dist_timeout > 0:
        return float(dist_timeout)
    if backend == "nccl":
        return default_pg_nccl_timeout.total_seconds()
    return GLOO_TIMEOUT_S


def init_distributed(device: str, local_rank: int, dist_timeout: Optional[float] = None) -> bool:
    """Join the process group when WORLD_SIZE > 1 (NCCL on GPUs, gloo on CPU); True if distributed.

    Collectives fail after `dist_timeout` seconds (DIST_TIMEOUT; None: the loaded config's), and an
    uncaught failure is followed by a message naming the ranks that do not answer (utils/liveness.py).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return False
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    timeout_s = collective_timeout_s(global_cfg.DIST_TIMEOUT if dist_timeout is None else dist_timeout, backend)
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend, init_method="env://", timeout=datetime.timedelta(seconds=timeout_s)
        )
    liveness.start(timeout_s)
    liveness.install_failure_report()
    return True


def seed_everything(seed: int) -> int:
    """Seed torch (CPU and GPUs), Python's random and numpy; seed < 0 picks a random seed. Returns it."""
    if seed < 0:
        seed = int.from_bytes(os.urandom(4), "little") >> 1
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def load_config(args: argparse.Namespace):
    """The global cfg with the config file and the overrides merged, its values checked, frozen."""
    cfg = global_cfg
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    check_config(cfg)  # nonsense values fail here, before any model, data or output is made
    cfg.freeze()
    return cfg


def setup_run(args: argparse.Namespace, cfg, output_dir: str, distributed: bool) -> logging.Logger:
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


def box_only_of(cfg) -> bool:
    """Whether a model returns proposals only (RPN-only; RetinaNet's boxes are detections)."""
    return cfg.MODEL.RPN_ONLY and not cfg.MODEL.RETINANET_ON


def iou_types_of(cfg) -> Tuple[str, ...]:
    """The evaluation tasks of a model: bbox, plus segm / keypoints when it predicts them."""
    return ("bbox",) + (("segm",) if cfg.MODEL.MASK_ON else ()) + (("keypoints",) if cfg.MODEL.KEYPOINT_ON else ())


def run_test(cfg, model: torch.nn.Module, distributed: bool, output_dir: str) -> list:
    """Evaluate `model` on every DATASETS.TEST entry into output_dir/inference/<name>/ (the
    original's run_test); returns the per-dataset results (None on non-main processes)."""
    from ..data import make_data_loader
    from .inference import inference
    from .precision import autocast_dtype

    model = getattr(model, "module", model)  # evaluation runs the bare model (DDP is for training)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    names = list(cfg.DATASETS.TEST)
    folders = [os.path.join(output_dir, "inference", name) if output_dir else None for name in names]
    for folder in folders:
        if folder:
            mkdir(folder)
    loaders = make_data_loader(cfg, is_train=False, is_distributed=distributed)
    results = []
    for name, folder, loader in zip(names, folders, loaders):
        results.append(inference(
            model, loader, dataset_name=name, iou_types=iou_types_of(cfg),
            box_only=box_only_of(cfg), bbox_aug=cfg.TEST.BBOX_AUG.ENABLED,
            device=cfg.MODEL.DEVICE, expected_results=cfg.TEST.EXPECTED_RESULTS,
            expected_results_sigma_tol=cfg.TEST.EXPECTED_RESULTS_SIGMA_TOL, output_folder=folder,
            per_class_ap=cfg.TEST.PER_CLASS_AP, autocast_dtype=autocast_dtype(cfg),
        ))  # every process leaves inference() together, once the main one evaluated
    return results
