"""The calls the original library's tools/train_net.py and tools/test_net.py make, in their order and
with their arguments, work against this package: a script written for the original trains, saves a
checkpoint, reloads it and evaluates. (Its scripts themselves also import NVIDIA apex for amp, which
this package does not need; with apex installed they run unmodified, see docs/COMPATIBILITY.md.)"""

import os
import sys

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
from tiny_training import CONFIG, TINY, write_dataset  # noqa: E402

from maskrcnn_benchmark.config import cfg as global_cfg  # noqa: E402
from maskrcnn_benchmark.data import make_data_loader  # noqa: E402
from maskrcnn_benchmark.engine.inference import inference  # noqa: E402
from maskrcnn_benchmark.engine.trainer import do_train  # noqa: E402
from maskrcnn_benchmark.modeling.detector import build_detection_model  # noqa: E402
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer  # noqa: E402
from maskrcnn_benchmark.utils.checkpoint import DetectronCheckpointer  # noqa: E402
from maskrcnn_benchmark.utils.collect_env import collect_env_info  # noqa: E402
from maskrcnn_benchmark.utils.comm import get_rank, synchronize  # noqa: E402
from maskrcnn_benchmark.utils.env import setup_environment  # noqa: E402, F401
from maskrcnn_benchmark.utils.imports import import_file  # noqa: E402, F401
from maskrcnn_benchmark.utils.logger import setup_logger  # noqa: E402
from maskrcnn_benchmark.utils.miscellaneous import mkdir, save_config  # noqa: E402


def _config(tmp_path):
    cfg = global_cfg.clone()  # the original's scripts merge into the global config; a clone keeps tests apart
    cfg.merge_from_file(CONFIG)
    register = write_dataset(tmp_path / "data", 2)
    cfg.merge_from_list(TINY + ["DATASETS.REGISTER_COCO", str(register)])
    cfg.merge_from_list(["SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2", "DTYPE", "float32"])
    cfg.merge_from_list(["OUTPUT_DIR", str(tmp_path / "out"), "SOLVER.CHECKPOINT_PERIOD", "1"])
    cfg.freeze()
    return cfg


def _run_test(cfg, model, output_dir):
    """What the original's run_test() / test_net.py main() do for each test dataset."""
    iou_types = ("bbox",) + (("segm",) if cfg.MODEL.MASK_ON else ())
    output_folders = []
    for dataset_name in cfg.DATASETS.TEST:
        folder = os.path.join(output_dir, "inference", dataset_name)
        mkdir(folder)
        output_folders.append(folder)
    data_loaders_val = make_data_loader(cfg, is_train=False, is_distributed=False)
    results = []
    for output_folder, dataset_name, data_loader_val in zip(output_folders, cfg.DATASETS.TEST, data_loaders_val):
        results.append(
            inference(
                model,
                data_loader_val,
                dataset_name=dataset_name,
                iou_types=iou_types,
                box_only=False if cfg.MODEL.RETINANET_ON else cfg.MODEL.RPN_ONLY,
                bbox_aug=cfg.TEST.BBOX_AUG.ENABLED,
                device=cfg.MODEL.DEVICE,
                expected_results=cfg.TEST.EXPECTED_RESULTS,
                expected_results_sigma_tol=cfg.TEST.EXPECTED_RESULTS_SIGMA_TOL,
                output_folder=output_folder,
            )
        )
        synchronize()
    return results


def test_the_original_train_and_test_scripts_call_sequence(tmp_path):
    cfg = _config(tmp_path)
    output_dir = cfg.OUTPUT_DIR
    mkdir(output_dir)
    logger = setup_logger("maskrcnn_benchmark", output_dir, get_rank())
    logger.info(collect_env_info())
    save_config(cfg, os.path.join(output_dir, "config.yml"))

    # train(): model, optimizer, scheduler, checkpointer, loaders, do_train with 11 positional arguments
    model = build_detection_model(cfg)
    device = torch.device(cfg.MODEL.DEVICE)
    model.to(device)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    arguments = {"iteration": 0}
    checkpointer = DetectronCheckpointer(cfg, model, optimizer, scheduler, output_dir, get_rank() == 0)
    arguments.update(checkpointer.load(cfg.MODEL.WEIGHT))
    data_loader = make_data_loader(cfg, is_train=True, is_distributed=False, start_iter=arguments["iteration"])
    data_loader_val = make_data_loader(cfg, is_train=False, is_distributed=False, is_for_period=True)
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
    assert arguments["iteration"] == 2
    assert os.path.exists(os.path.join(output_dir, "model_final.pth"))
    ((trained_results, _),) = _run_test(cfg, model, output_dir)

    # test_net.py: a fresh model, the checkpoint loaded by path, the same evaluation
    fresh = build_detection_model(cfg).to(device)
    DetectronCheckpointer(cfg, fresh, save_dir=output_dir).load(os.path.join(output_dir, "model_final.pth"))
    ((loaded_results, _),) = _run_test(cfg, fresh, output_dir)
    assert set(trained_results.results) == {"bbox", "segm"}
    assert loaded_results.results == trained_results.results
    assert os.path.exists(os.path.join(output_dir, "inference", "tiny", "predictions.pth"))
