"""Start-up checks of config values (config/checks.py): nonsense values fail naming key and value."""

import glob
import os

import pytest

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.config.checks import ConfigValueError, check_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CPU_CONFIG = os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_FPN_cpu.yaml")


def _cfg(tmp_path, *opts):
    c = global_cfg.clone()
    c.merge_from_file(CPU_CONFIG)
    c.merge_from_list(["OUTPUT_DIR", str(tmp_path / "out")] + list(opts))
    return c


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)))
def test_every_shipped_config_passes(path, tmp_path):
    c = global_cfg.clone()
    c.merge_from_file(path)
    c.merge_from_list(["MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path)])
    check_config(c)


def test_defaults_pass_on_cpu(tmp_path):
    c = global_cfg.clone()
    c.merge_from_list(["MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path)])
    check_config(c)


@pytest.mark.parametrize(
    "opts, key, allowed",
    [
        (["INPUT.MIN_SIZE_TRAIN", "(0,)"], "INPUT.MIN_SIZE_TRAIN", "> 0"),
        (["INPUT.MIN_SIZE_TRAIN", "(-5, 200)"], "INPUT.MIN_SIZE_TRAIN", "> 0"),
        (["INPUT.MIN_SIZE_TRAIN", "()"], "INPUT.MIN_SIZE_TRAIN", "empty"),
        (["INPUT.MIN_SIZE_TEST", "0"], "INPUT.MIN_SIZE_TEST", "> 0"),
        (["INPUT.MAX_SIZE_TRAIN", "100"], "INPUT.MAX_SIZE_TRAIN", ">= INPUT.MIN_SIZE_TRAIN (256)"),
        (["INPUT.MAX_SIZE_TEST", "-1"], "INPUT.MAX_SIZE_TEST", ">= INPUT.MIN_SIZE_TEST"),
        (["INPUT.PIXEL_MEAN", "[1.0, 2.0]"], "INPUT.PIXEL_MEAN", "3 values"),
        (["INPUT.PIXEL_STD", "[1.0, 0.0, 1.0]"], "INPUT.PIXEL_STD", "> 0"),
        (["INPUT.HORIZONTAL_FLIP_PROB_TRAIN", "1.5"], "INPUT.HORIZONTAL_FLIP_PROB_TRAIN", "[0, 1]"),
        (["INPUT.BRIGHTNESS", "-0.2"], "INPUT.BRIGHTNESS", ">= 0"),
        (["DATALOADER.NUM_WORKERS", "-1"], "DATALOADER.NUM_WORKERS", ">= 0"),
        (["DATALOADER.SIZE_DIVISIBILITY", "-32"], "DATALOADER.SIZE_DIVISIBILITY", ">= 0"),
        (["SOLVER.MAX_ITER", "0"], "SOLVER.MAX_ITER", ">= 1"),
        (["SOLVER.MAX_ITER", "-10"], "SOLVER.MAX_ITER", ">= 1"),
        (["SOLVER.CHECKPOINT_PERIOD", "-1"], "SOLVER.CHECKPOINT_PERIOD", ">= 0"),
        (["SOLVER.STEPS", "(900, 700)"], "SOLVER.STEPS", "increasing"),
        (["SOLVER.STEPS", "(700, 700)"], "SOLVER.STEPS", "increasing"),
        (["SOLVER.STEPS", "(-1, 700)"], "SOLVER.STEPS", "positive"),
        (["SOLVER.WARMUP_METHOD", "foo"], "SOLVER.WARMUP_METHOD", "'constant', 'linear'"),
        (["SOLVER.WARMUP_FACTOR", "0.0"], "SOLVER.WARMUP_FACTOR", "(0, 1]"),
        (["SOLVER.WARMUP_FACTOR", "3.0"], "SOLVER.WARMUP_FACTOR", "(0, 1]"),
        (["SOLVER.BASE_LR", "-0.1"], "SOLVER.BASE_LR", "> 0"),
        (["SOLVER.BASE_LR", "0.0"], "SOLVER.BASE_LR", "> 0"),
        (["SOLVER.IMS_PER_BATCH", "0"], "SOLVER.IMS_PER_BATCH", ">= 1"),
        (["SOLVER.ACCUMULATE_GRAD_ITERS", "0"], "SOLVER.ACCUMULATE_GRAD_ITERS", ">= 1"),
        (["SOLVER.MOMENTUM", "1.5"], "SOLVER.MOMENTUM", "[0, 1]"),
        (["TEST.IMS_PER_BATCH", "0"], "TEST.IMS_PER_BATCH", ">= 1"),
        (["MODEL.DEVICE", "tpu"], "MODEL.DEVICE", "cpu, cuda or cuda:N"),
        (["MODEL.DEVICE", "''"], "MODEL.DEVICE", "cpu, cuda or cuda:N"),
        (["MODEL.DEVICE", "meta"], "MODEL.DEVICE", "cpu, cuda or cuda:N"),
        (["DTYPE", "float64"], "DTYPE", "'bfloat16', 'float16', 'float32'"),
        (["DTYPE", "half"], "DTYPE", '"half" is float16'),
        (["MODEL.RPN.ANCHOR_SIZES", "(16, 32, 64)"], "MODEL.RPN.ANCHOR_SIZES", "5 feature levels"),
        (
            ["MODEL.RPN.ANCHOR_SIZES", "(16, 32, 64)", "MODEL.RPN.ANCHOR_STRIDE", "(4, 8, 16)"],
            "MODEL.RPN.ANCHOR_STRIDE",
            "5 feature levels",
        ),
        (["MODEL.RPN.ASPECT_RATIOS", "()"], "MODEL.RPN.ASPECT_RATIOS", "empty"),
        (["MODEL.RPN.ASPECT_RATIOS", "(0.0, 1.0)"], "MODEL.RPN.ASPECT_RATIOS", "> 0"),
        (["MODEL.RPN.USE_FPN", "False"], "MODEL.RPN.USE_FPN", "must be True"),
        (["MODEL.RPN.FG_IOU_THRESHOLD", "0.2"], "MODEL.RPN.BG_IOU_THRESHOLD", "<= MODEL.RPN.FG_IOU_THRESHOLD"),
        (["MODEL.ROI_BOX_HEAD.NUM_CLASSES", "1"], "MODEL.ROI_BOX_HEAD.NUM_CLASSES", ">= 2"),
        (["MODEL.ROI_BOX_HEAD.NUM_CLASSES", "0"], "MODEL.ROI_BOX_HEAD.NUM_CLASSES", ">= 2"),
        (["MODEL.ROI_BOX_HEAD.POOLER_SCALES", "(0.25,)"], "MODEL.ROI_BOX_HEAD.POOLER_SCALES", "(4: P2-P5"),
        (
            ["MODEL.ROI_MASK_HEAD.POOLER_SCALES", "(0.25, 0.125, 0.0625, 0.03125, 0.015625)"],
            "MODEL.ROI_MASK_HEAD.POOLER_SCALES",
            "(4: P2-P5",
        ),
        (["MODEL.ROI_HEADS.NMS", "1.5"], "MODEL.ROI_HEADS.NMS", "[0, 1]"),
        (["MODEL.ROI_HEADS.DETECTIONS_PER_IMG", "0"], "MODEL.ROI_HEADS.DETECTIONS_PER_IMG", ">= 1"),
    ],
)
def test_nonsense_values_name_the_key_the_value_and_what_is_allowed(tmp_path, opts, key, allowed):
    with pytest.raises(ConfigValueError) as error:
        check_config(_cfg(tmp_path, *opts))
    message = str(error.value)
    assert f"config key {key} is " in message and allowed in message, message


def test_c4_models_need_one_stride_and_one_pooler_scale(tmp_path):
    c = global_cfg.clone()
    c.merge_from_file(os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_C4_cpu.yaml"))
    c.OUTPUT_DIR = str(tmp_path)
    check_config(c)
    c.MODEL.RPN.ANCHOR_STRIDE = (8, 16)
    with pytest.raises(ConfigValueError, match=r"MODEL.RPN.ANCHOR_STRIDE is \(8, 16\); .*one stride"):
        check_config(c)


def test_rpn_only_models_need_no_classifier(tmp_path):
    check_config(
        _cfg(tmp_path, "MODEL.RPN_ONLY", "True", "MODEL.MASK_ON", "False", "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "0")
    )


def test_a_gpu_index_beyond_the_machine_fails(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_config(_cfg(tmp_path, "MODEL.DEVICE", "cuda:1"))
    with pytest.raises(
        ConfigValueError, match=r"MODEL.DEVICE is 'cuda:7'; this machine has 2 GPU\(s\): use cuda:0 .. cuda:1"
    ):
        check_config(_cfg(tmp_path, "MODEL.DEVICE", "cuda:7"))


def test_cuda_without_a_gpu_says_to_use_the_cpu(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="MODEL.DEVICE cpu"):
        check_config(_cfg(tmp_path, "MODEL.DEVICE", "cuda"))


def test_output_dir_that_is_a_file_or_under_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigValueError, match="OUTPUT_DIR is .*afile'; it is an existing file"):
        check_config(_cfg(tmp_path, "OUTPUT_DIR", str(tmp_path / "afile")))
    with pytest.raises(ConfigValueError, match="is a file, so the folder cannot be created"):
        check_config(_cfg(tmp_path, "OUTPUT_DIR", str(tmp_path / "afile" / "run1")))
    check_config(_cfg(tmp_path, "OUTPUT_DIR", str(tmp_path / "new" / "deeper")))  # created later


def test_output_dir_that_is_not_writable(tmp_path, monkeypatch):
    # Read-only for this process (root may write anywhere, so os.access stands in for the permission).
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(locked) else real_access(path, mode))
    with pytest.raises(ConfigValueError, match="locked is not writable"):
        check_config(_cfg(tmp_path, "OUTPUT_DIR", str(locked / "run")))
    check_config(_cfg(tmp_path, "OUTPUT_DIR", str(tmp_path / "writable")))


def test_load_config_checks_before_freezing(tmp_path):
    import argparse

    from maskrcnn_benchmark.engine.cli import load_config

    args = argparse.Namespace(config_file=CPU_CONFIG, opts=["SOLVER.MAX_ITER", "-3", "OUTPUT_DIR", str(tmp_path)])
    saved = global_cfg.clone()
    try:
        with pytest.raises(ConfigValueError, match="SOLVER.MAX_ITER is -3"):
            load_config(args)
    finally:
        global_cfg.defrost()
        global_cfg.merge_from_other_cfg(saved)


def test_library_entry_points_check_their_part(tmp_path):
    from maskrcnn_benchmark.data import make_data_loader
    from maskrcnn_benchmark.modeling.detector import build_detection_model

    with pytest.raises(ConfigValueError, match="MODEL.ROI_BOX_HEAD.NUM_CLASSES is 1"):
        build_detection_model(_cfg(tmp_path, "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "1"))
    with pytest.raises(ConfigValueError, match="INPUT.MIN_SIZE_TRAIN is \\(0,\\)"):
        make_data_loader(_cfg(tmp_path, "INPUT.MIN_SIZE_TRAIN", "(0,)"), is_train=True)


def test_steps_beyond_max_iter_only_warn(tmp_path, caplog):
    check_config(_cfg(tmp_path, "SOLVER.MAX_ITER", "800"))  # a shortened run of a (700, 900) schedule
    assert (
        "SOLVER.STEPS (700, 900) go beyond SOLVER.MAX_ITER (800): the learning rate decays at (700,) only"
        in caplog.text
    )


def test_value_errors_of_merging_and_of_checks_are_one_exception_type():
    from maskrcnn_benchmark.config import ConfigValueError as exported

    assert ConfigValueError is exported
