"""tools/export_model.py: refusals with their reason (exit status 2, nothing written), argument
errors, and a fixed-size ONNX export of a tiny C4 model whose file runs like the eager model."""

import importlib.util
import os
import warnings

import numpy as np
import pytest
import torch

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.data.transforms import build_transforms
from maskrcnn_benchmark.deploy import inputs as deploy_inputs
from maskrcnn_benchmark.deploy import load_model, load_onnx
from maskrcnn_benchmark.deploy import outputs as deploy_outputs
from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker
from maskrcnn_benchmark.structures.image_list import ImageList
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
C4 = os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_C4_cpu.yaml")
TINY = [
    "DTYPE", "float32",
    "MODEL.MASK_ON", "False",
    "MODEL.RESNETS.TRANS_FUNC", "BottleneckWithFixedBatchNorm",
    "MODEL.RESNETS.STEM_FUNC", "StemWithFixedBatchNorm",
    "MODEL.RESNETS.STEM_OUT_CHANNELS", "16",
    "MODEL.RESNETS.RES2_OUT_CHANNELS", "16",
    "MODEL.RESNETS.BACKBONE_OUT_CHANNELS", "64",
    "MODEL.RPN.PRE_NMS_TOP_N_TEST", "60",
    "MODEL.RPN.POST_NMS_TOP_N_TEST", "30",
    "MODEL.ROI_HEADS.SCORE_THRESH", "0.3",
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMG", "8",
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "3",
    "INPUT.MIN_SIZE_TEST", "96",
    "INPUT.MAX_SIZE_TEST", "128",
]  # fmt: skip


def _tool():
    spec = importlib.util.spec_from_file_location("export_model", os.path.join(REPO, "tools", "export_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "config, opts, reason",
    [
        ("configs/cpu/retinanet_R_18_FPN_cpu.yaml", [], "RetinaNet"),
        ("configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml", ["TEST.BBOX_AUG.ENABLED", "True"], "test-time augmentation"),
    ],
)
def test_refuses_with_the_reason(tmp_path, capsys, config, opts, reason):
    output = tmp_path / "model.onnx"
    argv = ["--config-file", os.path.join(REPO, config), "--format", "onnx", "--output", str(output), *opts]
    assert _tool().main(argv) == 2
    assert reason in capsys.readouterr().err
    assert not output.exists()


def test_bad_arguments(tmp_path):
    tool = _tool()
    for argv in (["--format", "tflite"], ["--format", "onnx", "--image-size", "800"]):
        with pytest.raises(SystemExit):
            tool.main([*argv, "--config-file", C4, "--output", str(tmp_path / "x")])


def test_fixed_size_onnx_export_runs_like_the_eager_model(tmp_path):
    cfg = global_cfg.clone()
    cfg.merge_from_file(C4)
    cfg.merge_from_list(TINY)
    torch.manual_seed(0)
    model = load_model(cfg, "")
    with torch.no_grad():
        model.roi_heads.box.predictor.cls_score.weight.mul_(0.1)  # scores spread over (0.3, 1)
    Checkpointer(model, save_dir=str(tmp_path), save_to_disk=True).save("model")
    output = tmp_path / "model.onnx"
    argv = ["--config-file", C4, "--weights", str(tmp_path / "model.pth"), "--format", "onnx"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _tool().main([*argv, "--image-size", "128", "128", "--output", str(output), *TINY]) == 0

    detector = load_onnx(str(output))
    assert detector.fixed_size == (128, 128) and detector.cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES == 3
    image = np.random.RandomState(0).randint(0, 256, (100, 80, 3), dtype=np.uint8)
    tensor, original = deploy_inputs.preprocess(build_transforms(cfg, is_train=False), image)
    batch, sizes = deploy_inputs.batch([tensor], 32, (128, 128))
    with torch.no_grad():
        (expected,) = model(ImageList(batch, [tuple(s) for s in sizes.tolist()]))
    expected = deploy_outputs.finalize(expected, original, cfg, 0.0, Masker(0.5, 1))
    actual = detector(image)
    assert len(actual) == len(expected) > 0
    torch.testing.assert_close(actual.bbox, expected.bbox, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(actual.get_field("scores"), expected.get_field("scores"), atol=1e-4, rtol=1e-4)
    assert torch.equal(actual.get_field("labels"), expected.get_field("labels"))
