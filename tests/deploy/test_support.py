"""What cannot be exported fails early, with the reason, from the config check, the model check and
the export functions themselves."""

import os

import pytest

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.deploy import (
    DetectorGraph,
    NotExportableError,
    check_config_exportable,
    export_onnx,
    export_pt2,
    load_model,
    min_image_side,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def config(name: str, *opts: str):
    cfg = global_cfg.clone()
    cfg.merge_from_file(os.path.join(REPO, "configs", name))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", *opts])
    return cfg


@pytest.mark.parametrize(
    "name, opts, message",
    [
        ("retinanet/retinanet_R-50-FPN_1x.yaml", (), "RetinaNet"),
        ("rpn_R_50_C4_1x.yaml", (), "RPN-only"),
        ("e2e_mask_rcnn_R_50_FPN_1x.yaml", ("TEST.BBOX_AUG.ENABLED", "True"), "test-time augmentation"),
    ],
)
def test_config_check_names_the_reason(name, opts, message):
    cfg = config(name, *opts)
    for fmt in ("onnx", "pt2"):
        with pytest.raises(NotExportableError, match=message):
            check_config_exportable(cfg, fmt)


def test_fbnet_and_deformable_convolutions_are_refused():
    with pytest.raises(NotExportableError, match="FBNet"):
        check_config_exportable(config("e2e_mask_rcnn_fbnet.yaml"), "pt2")
    with pytest.raises(NotExportableError, match="deformable"):
        check_config_exportable(config("dcn/e2e_faster_rcnn_dconv_R_50_FPN_1x.yaml"), "onnx")
    with pytest.raises(NotExportableError, match="unknown export format"):
        check_config_exportable(config("e2e_mask_rcnn_R_50_FPN_1x.yaml"), "tflite")


def test_shipped_detection_configs_pass_the_check():
    for name in (
        "e2e_faster_rcnn_R_50_C4_1x.yaml",
        "e2e_mask_rcnn_R_50_FPN_1x.yaml",
        "e2e_keypoint_rcnn_R_50_FPN_1x.yaml",
        "e2e_mask_rcnn_X_101_32x8d_FPN_1x.yaml",
        "gn_baselines/e2e_mask_rcnn_R_50_FPN_1x_gn.yaml",
    ):
        check_config_exportable(config(name), "onnx")


def test_training_mode_and_retinanet_models_are_refused_before_tracing(tmp_path):
    cfg = config("cpu/e2e_mask_rcnn_R_18_C4_cpu.yaml", "DTYPE", "float32")
    model = load_model(cfg, "")
    model.train()
    for export in (export_onnx, export_pt2):
        with pytest.raises(NotExportableError, match="training mode"):
            export(model, cfg, str(tmp_path / "model"))
    with pytest.raises(NotExportableError, match="training mode"):
        DetectorGraph(model)
    retinanet_cfg = config("cpu/retinanet_R_18_FPN_cpu.yaml", "DTYPE", "float32")
    retinanet = load_model(retinanet_cfg, "")
    with pytest.raises(NotExportableError, match="RetinaNet"):
        DetectorGraph(retinanet)
    with pytest.raises(NotExportableError, match="RetinaNet"):
        export_onnx(retinanet, retinanet_cfg, str(tmp_path / "model.onnx"))
    assert not (tmp_path / "model.onnx").exists()


def test_min_image_side():
    assert min_image_side(config("e2e_mask_rcnn_R_50_FPN_1x.yaml")) == 96  # P6 (stride 64): 65, padded to 32
    assert min_image_side(config("e2e_faster_rcnn_R_50_C4_1x.yaml")) == 17  # stride 16, no padding
