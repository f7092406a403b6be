r"""Train a detector from a config (the original's tools/train_net.py command line).

    python tools/train_net.py --config-file configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml [KEY VALUE ...]
    python -m torch.distributed.launch --nproc_per_node=8 tools/train_net.py --config-file ...
    torchrun --nproc_per_node=8 [--nnodes=2 --node_rank=0 --master_addr=...] tools/train_net.py --config-file ...

--compile (or MODEL.COMPILE.ENABLED True) runs the model's dense parts through torch.compile
(maskrcnn_benchmark/engine/compile.py); its checkpoints load into uncompiled models and back.
Restarting the same command continues from OUTPUT_DIR/last_checkpoint (model, optimizer, scheduler,
GradScaler, iteration and data order). SOLVER.IMS_PER_BATCH is the batch over all processes.
"""

import argparse
import logging
import os
from typing import List, Optional

import torch

from maskrcnn_benchmark.config import CfgNode
from maskrcnn_benchmark.data import make_data_loader
from maskrcnn_benchmark.engine.cli import add_common_arguments, load_config, setup_run, take_trailing_flags
from maskrcnn_benchmark.engine.compile import COMPILE_HELP, maybe_compile, with_compile_flag
from maskrcnn_benchmark.engine.distributed_init import init_distributed
from maskrcnn_benchmark.engine.distributed_model import wrap_distributed
from maskrcnn_benchmark.engine.evaluation import run_test
from maskrcnn_benchmark.engine.rng_state import seed_everything
from maskrcnn_benchmark.engine.trainer import do_train
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer
from maskrcnn_benchmark.solver.resume import apply_schedule_settings, schedule_settings
from maskrcnn_benchmark.utils.checkpoint import DetectronCheckpointer
from maskrcnn_benchmark.utils.comm import get_rank, synchronize
from maskrcnn_benchmark.utils.miscellaneous import save_config, save_labels
from maskrcnn_benchmark.utils.output_lock import OutputDirLock


def train(cfg: CfgNode, local_rank: int, distributed: bool):
    seed = seed_everything(cfg.SEED)  # the same initial weights on every process (DDP also broadcasts them)
    model = build_detection_model(cfg)
    device = torch.device(cfg.MODEL.DEVICE)
    model.to(device)
    maybe_compile(model, cfg)  # MODEL.COMPILE / --compile: in place, state_dict keys unchanged
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    if distributed:
        model = wrap_distributed(model, cfg, local_rank)  # SOLVER.DDP: bucket views, static graph, compression
    seed_everything(seed + get_rank())  # then a stream of its own per process (sampling, augmentation)
    arguments = {"iteration": 0}
    output_dir = cfg.OUTPUT_DIR
    # Checkpoints hold the bare model's keys (no DDP "module." prefix), loadable anywhere.
    bare_model = model.module if distributed else model
    checkpointer = DetectronCheckpointer(
        cfg, bare_model, optimizer, scheduler, output_dir, save_to_disk=get_rank() == 0
    )
    if checkpointer.has_checkpoint():
        # Resuming this OUTPUT_DIR: model, optimizer state, iteration, GradScaler, generators; the
        # schedule (learning rates, steps, weight decay...) is the config's, which config.yml records.
        settings = schedule_settings(optimizer, scheduler)
        arguments.update(checkpointer.load(cfg.MODEL.WEIGHT))
        changes = apply_schedule_settings(settings, optimizer, scheduler)
        if changes:
            logging.getLogger("maskrcnn_benchmark.trainer").warning(
                "Resuming at iteration %d with the config's schedule, which differs from the checkpoint's:\n  %s",
                arguments["iteration"],
                "\n  ".join(changes),
            )
        if arguments["iteration"] >= cfg.SOLVER.MAX_ITER:
            logging.getLogger("maskrcnn_benchmark.trainer").warning(
                "The checkpoint is at iteration %d and SOLVER.MAX_ITER is %d: nothing left to train "
                "(raise SOLVER.MAX_ITER to train longer).",
                arguments["iteration"],
                cfg.SOLVER.MAX_ITER,
            )
    else:
        # Starting: MODEL.WEIGHT only initialises the model. The original also restored the
        # optimizer, scheduler and iteration stored in it, so fine-tuning from a finished run started
        # at its last iteration (the original's issue #652).
        DetectronCheckpointer(cfg, bare_model, save_dir=output_dir).load(cfg.MODEL.WEIGHT, use_latest=False)
    data_loader = make_data_loader(cfg, is_train=True, is_distributed=distributed, start_iter=arguments["iteration"])
    if get_rank() == 0:
        dataset = data_loader.dataset
        save_labels(getattr(dataset, "datasets", [dataset]), output_dir)
    data_loader_val = None
    if cfg.SOLVER.TEST_PERIOD > 0:
        data_loader_val = make_data_loader(cfg, is_train=False, is_distributed=distributed)
    do_train(
        cfg,
        model,
        data_loader,
        data_loader_val,
        optimizer,
        scheduler,
        checkpointer,
        device,
        cfg.SOLVER.CHECKPOINT_PERIOD,
        cfg.SOLVER.TEST_PERIOD,
        arguments,
    )
    return model


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="PyTorch Object Detection Training")
    add_common_arguments(parser)
    parser.add_argument("--skip-test", dest="skip_test", help="Do not test the final model", action="store_true")
    parser.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    args = parser.parse_args(argv)
    take_trailing_flags(args, "--skip-test", "--compile")
    return with_compile_flag(args)


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    distributed = init_distributed(cfg.MODEL.DEVICE, args.local_rank, cfg.DIST_TIMEOUT)
    # One training per OUTPUT_DIR, taken before anything is written there (log, config, checkpoints).
    lock = OutputDirLock(cfg.OUTPUT_DIR).acquire() if get_rank() == 0 and cfg.OUTPUT_DIR else None
    logger = setup_run(args, cfg, cfg.OUTPUT_DIR, distributed)
    output_config_path = os.path.join(cfg.OUTPUT_DIR, "config.yml")
    if get_rank() == 0:
        save_config(cfg, output_config_path)
    logger.info("Saving config into: %s", output_config_path)
    model = train(cfg, args.local_rank, distributed)
    if not args.skip_test:
        run_test(cfg, model, distributed, cfg.OUTPUT_DIR)
    synchronize()
    if lock is not None:
        lock.release()


if __name__ == "__main__":
    main()
