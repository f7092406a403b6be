"""Evaluating a model on every test dataset of a config (the original's run_test)."""

import os
from typing import Tuple

import torch

from ..config import CfgNode
from ..data import make_data_loader
from ..utils.miscellaneous import mkdir
from .bbox_aug import BoxTestTimeAugmentation
from .inference import inference
from .precision import autocast_dtype


def box_only_of(cfg: CfgNode) -> bool:
    """Whether a model returns proposals only (RPN-only; RetinaNet's boxes are detections)."""
    return cfg.MODEL.RPN_ONLY and not cfg.MODEL.RETINANET_ON


def iou_types_of(cfg: CfgNode) -> Tuple[str, ...]:
    """The evaluation tasks of a model: bbox, plus segm / keypoints when it predicts them."""
    return ("bbox",) + (("segm",) if cfg.MODEL.MASK_ON else ()) + (("keypoints",) if cfg.MODEL.KEYPOINT_ON else ())


def run_test(cfg: CfgNode, model: torch.nn.Module, distributed: bool, output_dir: str) -> list:
    """Evaluate `model` on every DATASETS.TEST entry into output_dir/inference/<name>/ (the
    original's run_test); returns the per-dataset results (None on non-main processes)."""
    model = getattr(model, "module", model)  # evaluation runs the bare model (DDP is for training)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    names = list(cfg.DATASETS.TEST)
    folders = [os.path.join(output_dir, "inference", name) if output_dir else None for name in names]
    for folder in folders:
        if folder:
            mkdir(folder)
    loaders = make_data_loader(cfg, is_train=False, is_distributed=distributed)
    bbox_aug = BoxTestTimeAugmentation.from_config(cfg) if cfg.TEST.BBOX_AUG.ENABLED else None
    results = []
    for name, folder, loader in zip(names, folders, loaders):
        results.append(
            inference(
                model,
                loader,
                dataset_name=name,
                iou_types=iou_types_of(cfg),
                box_only=box_only_of(cfg),
                bbox_aug=bbox_aug,
                device=cfg.MODEL.DEVICE,
                expected_results=cfg.TEST.EXPECTED_RESULTS,
                expected_results_sigma_tol=cfg.TEST.EXPECTED_RESULTS_SIGMA_TOL,
                output_folder=folder,
                per_class_ap=cfg.TEST.PER_CLASS_AP,
                autocast_dtype=autocast_dtype(cfg),
                coco_eval_backend=cfg.TEST.COCO_EVAL_BACKEND,
            )
        )  # every process leaves inference() together, once the main one evaluated
    return results
