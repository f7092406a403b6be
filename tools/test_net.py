r"""Evaluate a trained detector on DATASETS.TEST with COCO metrics (the original's tools/test_net.py).

    python tools/test_net.py --config-file CONFIG [--ckpt model_final.pth] [KEY VALUE ...]
    torchrun --nproc_per_node=8 tools/test_net.py --config-file CONFIG --ckpt ...

Without --ckpt the last checkpoint of OUTPUT_DIR is used if there is one, else MODEL.WEIGHT.
Results go to OUTPUT_DIR/inference/<dataset>/ (predictions.pth, bbox.json, segm.json, ...).
"""
import argparse

import torch

from maskrcnn_benchmark.engine.launch import add_common_arguments, init_distributed, load_config, run_test, setup_run
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.utils.checkpoint import DetectronCheckpointer
from maskrcnn_benchmark.utils.comm import synchronize


def main() -> None:
    parser = argparse.ArgumentParser(description="PyTorch Object Detection Inference")
    add_common_arguments(parser)
    parser.add_argument("--ckpt", default=None, help="The path to the checkpoint for test, default is the latest checkpoint.")
    args = parser.parse_args()
    cfg = load_config(args)
    distributed = init_distributed(cfg.MODEL.DEVICE, args.local_rank)
    setup_run(args, cfg, "", distributed)
    model = build_detection_model(cfg)
    model.to(torch.device(cfg.MODEL.DEVICE))
    checkpointer = DetectronCheckpointer(cfg, model, save_dir=cfg.OUTPUT_DIR)
    ckpt = cfg.MODEL.WEIGHT if args.ckpt is None else args.ckpt
    checkpointer.load(ckpt, use_latest=args.ckpt is None)
    run_test(cfg, model, distributed, cfg.OUTPUT_DIR)
    synchronize()


if __name__ == "__main__":
    main()
