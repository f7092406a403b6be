"""engine/compile.py: torch.compile of the detector's dense parts, on CPU with tiny models.

A compiled and an eager model with the same weights give the same detections (boxes, scores, labels,
masks), also after the image size changes, and the same training losses and gradients; state_dict
keys do not change and checkpoints load either way; MODEL.COMPILE values are checked; the tools'
--compile flag sets MODEL.COMPILE.ENABLED.

The regions are compiled with the "aot_eager" backend: dynamo's whole-graph capture (fullgraph, so a
graph break fails) and AOTAutograd's forward and backward graphs as with inductor, without inductor's
C++ code generation, which takes minutes on a 2-core machine. MASKRCNN_TEST_COMPILE_BACKEND=inductor
runs the same tests with inductor (looser float agreement is then expected; see TOLERANCE).
"""

import argparse
import importlib.util
import logging
import os

import pytest
import torch

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.config.checks import ConfigValueError, check_compile, check_config
from maskrcnn_benchmark.engine.compile import compile_detector, compiled_regions, maybe_compile, with_compile_flag
from maskrcnn_benchmark.layers.batch_norm import FrozenBatchNorm2d
from maskrcnn_benchmark.modeling.backbone.resnet import STAGE_SPECS, BasicBlock, ResNet
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import to_image_list
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKEND = os.environ.get("MASKRCNN_TEST_COMPILE_BACKEND", "aot_eager")
TOLERANCE = dict(rtol=1e-4, atol=1e-5) if BACKEND != "inductor" else dict(rtol=1e-3, atol=1e-3)

# Mask R-CNN R-18-FPN with GroupNorm, 32 channels, small heads; score threshold 0 so that every
# image gets detections (and masks) to compare.
TINY = [
    "MODEL.DEVICE",
    "cpu",
    "MODEL.MASK_ON",
    "True",
    "MODEL.BACKBONE.CONV_BODY",
    "R-18-FPN",
    "MODEL.BACKBONE.FREEZE_CONV_BODY_AT",
    "2",
    "MODEL.RESNETS.RES2_OUT_CHANNELS",
    "64",
    "MODEL.RESNETS.BACKBONE_OUT_CHANNELS",
    "32",
    "MODEL.RPN.USE_FPN",
    "True",
    "MODEL.RPN.ANCHOR_STRIDE",
    "(4, 8, 16, 32, 64)",
    "MODEL.RPN.ANCHOR_SIZES",
    "(16, 32, 64, 128, 256)",
    "MODEL.RPN.PRE_NMS_TOP_N_TRAIN",
    "200",
    "MODEL.RPN.POST_NMS_TOP_N_TRAIN",
    "100",
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN",
    "100",
    "MODEL.RPN.PRE_NMS_TOP_N_TEST",
    "100",
    "MODEL.RPN.POST_NMS_TOP_N_TEST",
    "50",
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST",
    "50",
    "MODEL.ROI_HEADS.USE_FPN",
    "True",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "64",
    "MODEL.ROI_HEADS.SCORE_THRESH",
    "0.0",
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMG",
    "20",
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
    "7",
    "MODEL.ROI_BOX_HEAD.POOLER_SCALES",
    "(0.25, 0.125, 0.0625, 0.03125)",
    "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO",
    "2",
    "MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR",
    "FPN2MLPFeatureExtractor",
    "MODEL.ROI_BOX_HEAD.PREDICTOR",
    "FPNPredictor",
    "MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM",
    "64",
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
    "3",
    "MODEL.ROI_MASK_HEAD.POOLER_SCALES",
    "(0.25, 0.125, 0.0625, 0.03125)",
    "MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR",
    "MaskRCNNFPNFeatureExtractor",
    "MODEL.ROI_MASK_HEAD.PREDICTOR",
    "MaskRCNNC4Predictor",
    "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION",
    "14",
    "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO",
    "2",
    "MODEL.ROI_MASK_HEAD.RESOLUTION",
    "28",
    "MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR",
    "False",
    "MODEL.ROI_MASK_HEAD.CONV_LAYERS",
    "(32, 32)",
    "MODEL.COMPILE.BACKEND",
    BACKEND,
]
REGIONS = [
    "backbone",
    "rpn.head",
    "roi_heads.box.feature_extractor",
    "roi_heads.box.predictor",
    "roi_heads.mask.feature_extractor",
    "roi_heads.mask.predictor",
]


def tiny_cfg(*opts):
    c = global_cfg.clone()
    c.merge_from_list(TINY + list(opts))
    return c


def images(height=96, width=128):
    g = torch.Generator().manual_seed(0)
    return to_image_list([torch.randn(3, height, width, generator=g) for _ in range(2)], 32)


def targets():
    """Two 96x128 images: two objects in the first, one in the second, with masks."""
    result = []
    for objects in ([(10, 12, 50, 60, 1), (60, 20, 110, 80, 2)], [(30, 30, 90, 70, 1)]):
        t = BoxList(torch.tensor([o[:4] for o in objects], dtype=torch.float32), (128, 96))
        t.add_field("labels", torch.tensor([o[4] for o in objects]))
        t.add_field(
            "masks", SegmentationMask([[[x1, y1, x2, y1, x2, y2, x1, y2]] for x1, y1, x2, y2, _ in objects], (128, 96))
        )
        result.append(t)
    return result


@pytest.fixture(scope="module")
def models():
    """(eager, compiled): the compiled one built from another seed, then given the eager one's weights."""
    torch._dynamo.reset()  # nothing compiled by other test modules counts against recompile limits
    torch.manual_seed(0)
    eager = build_detection_model(tiny_cfg())
    torch.manual_seed(1)
    compiled = maybe_compile(
        build_detection_model(tiny_cfg("MODEL.COMPILE.ENABLED", "True")), tiny_cfg("MODEL.COMPILE.ENABLED", "True")
    )
    compiled.load_state_dict(eager.state_dict())  # loading into a compiled model reaches its regions
    return eager, compiled


def test_the_dense_parts_are_compiled_and_the_rest_is_not(models):
    eager, compiled = models
    assert compiled_regions(eager) == []
    assert compiled_regions(compiled) == REGIONS
    assert not any("pooler" in name or "post_processor" in name for name in compiled_regions(compiled))


def test_state_dict_keys_do_not_change(models):
    eager, compiled = models
    assert list(compiled.state_dict()) == list(eager.state_dict())
    assert [n for n, _ in compiled.named_parameters()] == [n for n, _ in eager.named_parameters()]


def _run_training(model, seed=0):
    model.train()
    torch.manual_seed(seed)  # the same anchor and proposal sampling in both models
    losses = model(images(), targets())
    model.zero_grad(set_to_none=True)
    sum(losses.values()).backward()
    return {k: v.detach() for k, v in losses.items()}, {n: p.grad for n, p in model.named_parameters()}


def test_training_losses_and_gradients_equal_eager(models):
    eager, compiled = models
    eager_losses, eager_grads = _run_training(eager)
    compiled_losses, compiled_grads = _run_training(compiled)
    assert set(compiled_losses) == {
        "loss_objectness",
        "loss_rpn_box_reg",
        "loss_classifier",
        "loss_box_reg",
        "loss_mask",
    }
    for name, value in eager_losses.items():
        torch.testing.assert_close(compiled_losses[name], value, **TOLERANCE, msg=name)
    trainable = [n for n, p in eager.named_parameters() if p.requires_grad]  # FREEZE_CONV_BODY_AT 2: not all
    assert [n for n, g in compiled_grads.items() if g is not None] == trainable
    for name in trainable:
        torch.testing.assert_close(compiled_grads[name], eager_grads[name], rtol=1e-3, atol=1e-4, msg=name)


def _detect(model, size):
    model.eval()
    with torch.no_grad():
        return model(images(*size))


@pytest.mark.parametrize("size", [(96, 128), (128, 96)], ids=["first_size", "other_size"])
def test_inference_outputs_equal_eager(models, size):
    eager, compiled = models
    for expected, actual in zip(_detect(eager, size), _detect(compiled, size)):
        assert len(expected) == len(actual) > 0
        torch.testing.assert_close(actual.bbox, expected.bbox, **TOLERANCE)
        torch.testing.assert_close(actual.get_field("scores"), expected.get_field("scores"), **TOLERANCE)
        assert torch.equal(actual.get_field("labels"), expected.get_field("labels"))
        torch.testing.assert_close(actual.get_field("mask"), expected.get_field("mask"), **TOLERANCE)


def test_checkpoints_load_between_compiled_and_eager_models(models, tmp_path):
    eager, compiled = models
    with torch.no_grad():  # weights a compiled training would have changed
        for p in compiled.parameters():
            p.add_(0.01)
    Checkpointer(compiled, save_dir=str(tmp_path), save_to_disk=True).save("compiled")
    torch.manual_seed(2)
    fresh = build_detection_model(tiny_cfg())
    Checkpointer(fresh, save_dir="").load(str(tmp_path / "compiled.pth"), use_latest=False, require="all")
    for (name, expected), actual in zip(compiled.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(actual, expected), name
    # ... and back: an eager model's checkpoint into the compiled model, which then computes with it.
    Checkpointer(eager, save_dir=str(tmp_path), save_to_disk=True).save("eager")
    Checkpointer(compiled, save_dir="").load(str(tmp_path / "eager.pth"), use_latest=False, require="all")
    expected, actual = _detect(eager, (96, 128))[0], _detect(compiled, (96, 128))[0]
    torch.testing.assert_close(actual.bbox, expected.bbox, **TOLERANCE)


def test_frozen_batch_norm_backbone_compiles_for_inference():
    # Without autograd FrozenBatchNorm2d's folded weights are cached by data pointer, which dynamo
    # cannot trace: compiled code folds them in the graph instead.
    torch.manual_seed(0)
    body = ResNet(
        STAGE_SPECS["R-18-C4"], block=BasicBlock, norm=FrozenBatchNorm2d, res2_out_channels=16, stem_out_channels=16
    ).eval()
    for m in body.modules():
        if isinstance(m, FrozenBatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = body(x)[0]  # fills the eager cache
        body.compile(fullgraph=True, backend=BACKEND)
        torch.testing.assert_close(body(x)[0], expected, **TOLERANCE)


def test_a_shared_feature_extractor_is_compiled_once():
    c = global_cfg.clone()
    c.merge_from_file(os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_C4_cpu.yaml"))
    c.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR", "True"])
    with torch.device("meta"):
        model = build_detection_model(c)
    keys = list(model.state_dict())
    compile_detector(model, backend=BACKEND)  # lazily: nothing is traced before the first call
    assert model.roi_heads.mask.feature_extractor is model.roi_heads.box.feature_extractor
    assert compiled_regions(model) == [
        "backbone",
        "rpn.head",
        "roi_heads.box.feature_extractor",
        "roi_heads.box.predictor",
        "roi_heads.mask.predictor",
    ]
    assert list(model.state_dict()) == keys


def test_compile_is_off_by_default():
    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg())
    assert global_cfg.MODEL.COMPILE.ENABLED is False
    assert maybe_compile(model, tiny_cfg()) is model and compiled_regions(model) == []


@pytest.mark.parametrize(
    "opts, key, allowed",
    [
        (["MODEL.COMPILE.MODE", "fast"], "MODEL.COMPILE.MODE", "'default', 'reduce-overhead'"),
        (["MODEL.COMPILE.DYNAMIC", "maybe"], "MODEL.COMPILE.DYNAMIC", "'auto', 'true', 'false'"),
        (["MODEL.COMPILE.ENABLED", "True", "MODEL.COMPILE.BACKEND", "nope"], "MODEL.COMPILE.BACKEND", "'inductor'"),
        (
            [
                "MODEL.COMPILE.ENABLED",
                "True",
                "MODEL.COMPILE.BACKEND",
                "aot_eager",
                "MODEL.COMPILE.MODE",
                "max-autotune",
            ],
            "MODEL.COMPILE.MODE",
            "inductor backend's",
        ),
    ],
)
def test_bad_compile_values_name_the_key_and_the_value(tmp_path, opts, key, allowed):
    c = tiny_cfg("OUTPUT_DIR", str(tmp_path), *opts)
    for check in (check_compile, check_config, lambda c: maybe_compile(torch.nn.Module(), c)):
        with pytest.raises(ConfigValueError) as error:
            check(c)
        message = str(error.value)
        assert f"config key {key} is {c.MODEL.COMPILE[key.split('.')[-1]]!r}" in message and allowed in message, message


def test_reduce_overhead_off_the_gpu_only_warns(caplog):
    with caplog.at_level(logging.WARNING):
        check_compile(
            tiny_cfg(
                "MODEL.COMPILE.ENABLED",
                "True",
                "MODEL.COMPILE.BACKEND",
                "inductor",
                "MODEL.COMPILE.MODE",
                "reduce-overhead",
            )
        )
    assert "CUDA graphs" in caplog.text


def _tool(name):
    spec = importlib.util.spec_from_file_location(f"compile_test_{name}", os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("tool", ["train_net", "test_net"])
@pytest.mark.parametrize(
    "argv",
    [
        ["--compile", "--config-file", "x.yaml", "SOLVER.BASE_LR", "0.1"],
        ["--config-file", "x.yaml", "SOLVER.BASE_LR", "0.1", "--compile"],  # after the KEY VALUE pairs
    ],
    ids=["before_overrides", "after_overrides"],
)
def test_the_tools_compile_flag_enables_compile(tool, argv, monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    args = _tool(tool).parse_args(argv)
    assert args.compile and args.opts == ["SOLVER.BASE_LR", "0.1", "MODEL.COMPILE.ENABLED", "True"]
    c = global_cfg.clone()
    c.merge_from_list(args.opts)
    assert c.MODEL.COMPILE.ENABLED is True
    plain = _tool(tool).parse_args(["--config-file", "x.yaml", "SOLVER.BASE_LR", "0.1"])
    assert not plain.compile and plain.opts == ["SOLVER.BASE_LR", "0.1"]


def test_with_compile_flag_leaves_other_arguments_alone():
    args = with_compile_flag(argparse.Namespace(compile=False, opts=None))
    assert args.opts is None
    assert with_compile_flag(argparse.Namespace(compile=True, opts=None)).opts == ["MODEL.COMPILE.ENABLED", "True"]
