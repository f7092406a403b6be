"""Every YAML file under configs/ merges into the default config and builds its model.

Files are found with a glob, so a new config is covered without editing this file. For each one:
- it merges into `cfg.clone()` (yacs rejects unknown keys and type mismatches);
- the backbone and RPN build, and the backbone's `out_channels` equals
  MODEL.RESNETS.BACKBONE_OUT_CHANNELS (FBNet: its trunk's last width);
- the whole detector builds (`build_detection_model`) with the heads the config asks for (box
  head with NUM_CLASSES outputs, mask / keypoint heads, none for RPN-only), and switches between
  train and eval mode;
- where the original's checkpoint layout is known (tests/assets/checkpoint_keys.txt), the
  state_dict keys and shapes equal the original's (caffe2/, quick_schedules/, retinanet/ and test_time_aug/
  variants are compared with the 1x config that has the same model).
The original's configs are built on the "meta" device (no weights are allocated: the ResNet-101/152
models take seconds to initialise on a small CPU). The CPU configs (configs/cpu/) are built with
real weights and run one training step on two small random images with synthetic targets.

The full-detector tests need maskrcnn_benchmark.layers.roi_align (the poolers use it); without it
they are skipped with that reason, and only the backbone + RPN check runs.
"""

import contextlib
import glob
import os

import pytest
import torch

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.engine.class_names import num_classes_of
from maskrcnn_benchmark.modeling.backbone import build_backbone
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.rpn.rpn import build_rpn
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import to_image_list
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(REPO, "configs")
CONFIGS = sorted(
    os.path.relpath(p, CONFIG_DIR).replace(os.sep, "/")
    for p in glob.glob(os.path.join(CONFIG_DIR, "**", "*.yaml"), recursive=True)
)
CPU_CONFIGS = [c for c in CONFIGS if c.startswith("cpu/")]

LOSS_KEYS = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}


@pytest.fixture(autouse=True, scope="module")
def _few_threads():
    # The machines that run this are small; more threads than cores only slows the builds.
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)


def test_configs_are_found():
    assert "e2e_mask_rcnn_R_50_FPN_1x.yaml" in CONFIGS
    assert len(CPU_CONFIGS) >= 5


def _load(name):
    c = cfg.clone()
    c.merge_from_file(os.path.join(CONFIG_DIR, name))
    c.MODEL.DEVICE = "cpu"
    return c


def _build(c, meta):
    with torch.device("meta") if meta else contextlib.nullcontext():
        return build_detection_model(c)


# FBNet trunks end with the channels of their last trunk stage (fbnet_modeldef), not BACKBONE_OUT_CHANNELS.
FBNET_TRUNK_CHANNELS = {"default": 96, "cham_v1a": 88, "xirb16d_dsmask": 128}


def _backbone_out_channels(c):
    if c.MODEL.BACKBONE.CONV_BODY == "FBNet":
        return FBNET_TRUNK_CHANNELS[c.MODEL.FBNET.ARCH]
    return c.MODEL.RESNETS.BACKBONE_OUT_CHANNELS


def _reference_name(name):
    """The config in tests/assets/checkpoint_keys.txt whose model `name` builds, or None."""
    base = os.path.basename(name)
    folder = os.path.dirname(name)
    if folder == "caffe2":
        base = base.replace("_caffe2.yaml", ".yaml")
    elif folder == "quick_schedules":
        base = base.replace("_quick.yaml", "_1x.yaml")
    elif folder == "gn_baselines":
        # Finetune and scratch configs of the same head build the same model.
        base = base.replace("scratch_", "").replace("_3x_gn", "_1x_gn")
        return "gn_baselines/" + base
    elif folder == "retinanet":
        # The quick schedule builds the same model as the 1x one.
        return "retinanet/" + base.replace("_1x_quick.yaml", "_1x.yaml")
    elif folder == "dcn":
        return "dcn/" + base
    elif folder not in ("", "test_time_aug"):
        return None
    return base.replace("_periodically_testing", "")


@pytest.mark.parametrize("name", CONFIGS)
def test_backbone_and_rpn_build(name):
    c = _load(name)
    with torch.device("meta"):
        backbone = build_backbone(c)
        rpn = build_rpn(c, backbone.out_channels)
    assert backbone.out_channels == _backbone_out_channels(c)
    assert hasattr(backbone, "fpn") == ("-FPN" in c.MODEL.BACKBONE.CONV_BODY)  # also *-FPN-RETINANET
    assert isinstance(rpn, torch.nn.Module)


@pytest.mark.parametrize("name", CONFIGS)
def test_detector_builds(name, original_checkpoint_keys):
    c = _load(name)
    model = _build(c, meta=not name.startswith("cpu/"))
    assert model.backbone.out_channels == _backbone_out_channels(c)
    if c.MODEL.RPN_ONLY:
        assert not model.roi_heads
    else:
        heads = set(model.roi_heads.keys())
        expected = {"box"} | ({"mask"} if c.MODEL.MASK_ON else set()) | ({"keypoint"} if c.MODEL.KEYPOINT_ON else set())
        assert heads == expected
        assert model.roi_heads.box.predictor.cls_score.out_features == c.MODEL.ROI_BOX_HEAD.NUM_CLASSES
    assert sum(p.numel() for p in model.parameters()) > 0
    # Mode switches work on the whole tree (no submodule overrides train() badly).
    assert all(not m.training for m in model.eval().modules())
    assert model.train().training

    reference = _reference_name(name)
    if reference in original_checkpoint_keys:
        actual = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
        assert actual == original_checkpoint_keys[reference], f"{name} vs the original's {reference}"


def _targets(c, size):
    """Synthetic targets for two images of `size` (w, h): boxes, labels and, as the config needs,
    polygon masks or 17 person keypoints."""
    w, h = size
    specs = [[(8, 10, 70, 80), (80, 30, 150, 110)], [(20, 16, 120, 100)]]
    num_classes = num_classes_of(c)
    targets = []
    for i, objects in enumerate(specs):
        boxes = torch.tensor(objects, dtype=torch.float32)
        t = BoxList(boxes, (w, h), mode="xyxy")
        labels = [1 + (i + j) % (num_classes - 1) for j in range(len(objects))]
        t.add_field("labels", torch.tensor(labels, dtype=torch.int64))
        if c.MODEL.MASK_ON:
            # A triangle inside each box (a polygon per instance).
            polys = [[[x1, y2, (x1 + x2) / 2, y1, x2, y2]] for x1, y1, x2, y2 in objects]
            t.add_field("masks", SegmentationMask(polys, (w, h), mode="poly"))
        if c.MODEL.KEYPOINT_ON:
            kp = torch.zeros(len(objects), c.MODEL.ROI_KEYPOINT_HEAD.NUM_CLASSES, 3)
            for j, (x1, y1, x2, y2) in enumerate(objects):
                kp[j, :, 0] = torch.linspace(x1 + 2, x2 - 2, kp.shape[1])
                kp[j, :, 1] = torch.linspace(y1 + 2, y2 - 2, kp.shape[1])
                kp[j, :, 2] = 2
            t.add_field("keypoints", PersonKeypoints(kp, (w, h)))
        targets.append(t)
    return targets


SEED_CONFIGS = [c for c in CONFIGS if "/" not in c and c.startswith(("e2e_", "rpn_"))]


@pytest.mark.parametrize("name", CPU_CONFIGS + SEED_CONFIGS)
def test_config_trains_one_step(name):
    """One training step on two tiny images: the documented loss terms, finite values and gradients
    (the seed model zoo at full width, the CPU configs as they are)."""
    c = _load(name)
    if name in CPU_CONFIGS:
        assert c.MODEL.DEVICE == "cpu" and c.MODEL.WEIGHT == ""
    torch.manual_seed(0)
    model = _build(c, meta=False).train()
    w, h = 160, 128
    g = torch.Generator().manual_seed(0)
    images = to_image_list([torch.randn(3, h, w, generator=g) * 50 for _ in range(2)], c.DATALOADER.SIZE_DIVISIBILITY)
    losses = model(images, _targets(c, (w, h)))
    if c.MODEL.RETINANET_ON:
        expected = {"loss_retina_cls", "loss_retina_reg"}
    elif c.MODEL.RPN_ONLY:
        expected = {"loss_objectness", "loss_rpn_box_reg"}
    else:
        expected = set(LOSS_KEYS)
    if c.MODEL.MASK_ON:
        expected.add("loss_mask")
    if c.MODEL.KEYPOINT_ON:
        expected.add("loss_kp")
    assert set(losses) == expected
    for key, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), key
    sum(losses.values()).backward()
    for n, p in model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), n
