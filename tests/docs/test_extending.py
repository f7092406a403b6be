"""docs/EXTENDING.md stays true: its `# example: <name>` Python blocks run (in order, one shared
namespace, in a scratch folder holding its `# file: <name>` YAML blocks) and do what the text says,
and the files, registries, config keys and compiled ops it names exist.

Nothing here compiles C++: the compiled-op section is checked through its touch points (files, the
schema, the registered op, its fake kernel and opcheck)."""

import os
import re
import traceback
from pathlib import Path

import pytest
import torch
from PIL import Image

import maskrcnn_benchmark.data.datasets as D
from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.config.config_node import CfgNode, ConfigKeyError
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.registry import Registry
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import ImageList
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "EXTENDING.md"
EXPECTED_EXAMPLES = [
    "backbone",
    "backbone-detector",
    "head",
    "dataset",
    "dataset-loader",
    "dataset-catalog",
    "config-key",
    "op-fake",
]
EXPECTED_FILES = ["tiny_fpn.yaml", "tiny_width.yaml"]
# Names the examples add to the global registries; none may exist beforehand.
NEW_NAMES = {"BACKBONES": "TINY-FPN", "ROI_BOX_PREDICTOR": "SharedHiddenPredictor"}


def _doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def _blocks(language: str, marker: str):
    """[(name, code)] of the ```language blocks whose first line is `# <marker>: <name>`."""
    found = []
    for code in re.findall(rf"^```{language}\n(.*?)^```", _doc_text(), flags=re.S | re.M):
        first = code.split("\n", 1)[0].strip()
        match = re.fullmatch(rf"#\s*{marker}:\s*(\S+)", first)
        if match:
            found.append((match.group(1), code))
    return found


def _section(number: int) -> str:
    """The text of section `## <number>.` of the doc."""
    match = re.search(rf"^## {number}\..*?(?=^## |\Z)", _doc_text(), flags=re.S | re.M)
    assert match, f"section {number} not found in {DOC}"
    return match.group(0)


def _registries():
    return {name: value for name, value in vars(registry).items() if isinstance(value, Registry)}


class Examples:
    """The namespace after running every example, and the error of each example that failed."""

    def __init__(self):
        self.namespace = {"__name__": "extending_examples"}
        self.errors = {}

    def run(self, name: str, code: str) -> None:
        try:
            exec(compile(code, f"{DOC.name}:{name}", "exec"), self.namespace)
        except Exception:
            self.errors[name] = traceback.format_exc()

    def require(self, *names: str) -> dict:
        for name in names:
            if name in self.errors:
                pytest.fail(f"example {name!r} of {DOC} failed:\n{self.errors[name]}")
        return self.namespace


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    registries = _registries()
    for reg_name, new_name in NEW_NAMES.items():
        assert new_name not in registries[reg_name], f"{new_name!r} is already in {reg_name}: rename the doc's example"
    saved_registries = {name: dict(reg) for name, reg in registries.items()}
    saved_dataset_names = set(vars(D))
    folder = tmp_path_factory.mktemp("extending")
    for file_name, text in _blocks("yaml", "file"):
        (folder / file_name).write_text(text)
    cwd = os.getcwd()
    result = Examples()
    try:
        os.chdir(folder)  # the examples read their YAML files by relative name
        try:
            for name, code in _blocks("python", "example"):
                result.run(name, code)
        finally:
            os.chdir(cwd)
        yield result
    finally:
        # The examples register into global registries: put them back as they were.
        for name, reg in registries.items():
            reg.clear()
            reg.update(saved_registries[name])
        for attr in set(vars(D)) - saved_dataset_names:
            delattr(D, attr)


def test_the_doc_has_the_examples_this_file_checks():
    assert [name for name, _ in _blocks("python", "example")] == EXPECTED_EXAMPLES
    assert [name for name, _ in _blocks("yaml", "file")] == EXPECTED_FILES


def test_custom_backbone_builds_a_detector(examples):
    ns = examples.require("backbone", "backbone-detector")
    assert registry.BACKBONES["TINY-FPN"] is ns["build_tiny_fpn_backbone"]
    tiny_cfg = ns["tiny_cfg"]
    assert tiny_cfg.MODEL.BACKBONE.CONV_BODY == "TINY-FPN" and tiny_cfg.DATALOADER.SIZE_DIVISIBILITY == 32
    model = ns["model"]
    assert isinstance(model.backbone.body, ns["TinyBody"]) and model.backbone.out_channels == 32
    with torch.no_grad():
        features = model.backbone(torch.rand(1, 3, 64, 64))
    # P2..P6: strides 4..64, all with out_channels, as the table says
    assert [tuple(f.shape) for f in features] == [(1, 32, 64 // s, 64 // s) for s in (4, 8, 16, 32, 64)]
    detections = ns["detections"]
    assert isinstance(detections, list) and len(detections) == 1
    boxes = detections[0]
    assert isinstance(boxes, BoxList) and boxes.size == (64, 64)
    assert boxes.has_field("scores") and boxes.has_field("labels")
    assert boxes.bbox.shape[1] == 4 and torch.isfinite(boxes.bbox).all()


def test_custom_predictor_is_used_in_inference_and_training(examples):
    ns = examples.require("backbone", "backbone-detector", "head", "dataset", "dataset-loader")
    assert registry.ROI_BOX_PREDICTOR["SharedHiddenPredictor"] is ns["build_shared_hidden_predictor"]
    model = ns["head_model"]
    predictor = model.roi_heads.box.predictor
    assert isinstance(predictor, ns["SharedHiddenPredictor"])
    assert predictor.cls_score.out_features == 3 and predictor.bbox_pred.out_features == 12
    with torch.no_grad():
        out = model([torch.rand(3, 64, 64)])
    assert isinstance(out[0], BoxList) and out[0].has_field("scores")
    # a training step on a batch of the dataset section's loader
    images, targets = ns["images"], ns["targets"]
    model.train()
    losses = model(images, list(targets))
    assert {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert predictor.hidden[0].weight.grad is not None and predictor.hidden[0].weight.grad.abs().sum() > 0
    # class-agnostic regression: 2 regression classes
    agnostic = ns["head_cfg"].clone()
    agnostic.merge_from_list(["MODEL.CLS_AGNOSTIC_BBOX_REG", "True"])
    assert ns["build_shared_hidden_predictor"](agnostic, 16).bbox_pred.out_features == 8


def test_dataset_items(examples):
    ns = examples.require("dataset")
    dataset = ns["SquaresDataset"]()
    assert len(dataset) == 4 and dataset.get_img_info(1) == {"height": 48, "width": 64}
    image, target, index = dataset[1]
    assert isinstance(image, Image.Image) and image.size == (64, 48) and index == 1
    assert isinstance(target, BoxList) and target.mode == "xyxy" and target.size == (64, 48)
    assert set(target.fields()) == {"labels", "masks"}
    assert target.get_field("labels").tolist() == [2] and target.get_field("labels").dtype == torch.int64
    assert isinstance(target.get_field("masks"), SegmentationMask) and len(target.get_field("masks")) == 1
    # inclusive corners: the box's corner pixels are painted, the ones just outside are not
    x1, y1, x2, y2 = (int(v) for v in target.bbox[0].tolist())
    assert image.getpixel((x1, y1)) == image.getpixel((x2, y2)) == (0, 255, 0)
    assert image.getpixel((x2 + 1, y2)) == image.getpixel((x1 - 1, y1)) == (0, 0, 0)
    # the polygon covers exactly the box's pixels
    mask = target.get_field("masks").get_mask_tensor().reshape(48, 64)
    assert mask[y1 : y2 + 1, x1 : x2 + 1].all() and mask.sum() == 20 * 20


def test_dataset_loader_batches(examples):
    ns = examples.require("dataset", "dataset-loader")
    images, targets, indices = ns["images"], ns["targets"], ns["indices"]
    assert isinstance(images, ImageList) and tuple(images.tensors.shape) == (2, 3, 64, 64)
    assert images.image_sizes == [(48, 64), (48, 64)]
    assert isinstance(targets, tuple) and len(targets) == 2 and all(isinstance(t, BoxList) for t in targets)
    assert all(t.has_field("labels") and t.has_field("masks") and t.size == (64, 48) for t in targets)
    assert len(indices) == 2 and all(0 <= int(i) < 4 for i in indices)
    assert len(list(ns["loader"])) == 3  # num_iters


def test_dataset_through_build_dataset(examples):
    ns = examples.require("dataset", "dataset-loader", "dataset-catalog")
    train_set = ns["train_set"]
    assert isinstance(train_set, ns["SquaresDataset"]) and len(train_set) == 6 and train_set.name == "squares_train"
    image, target, index = train_set[5]
    assert isinstance(image, torch.Tensor) and image.shape[0] == 3 and target.get_field("labels").tolist() == [2]


def test_config_key(examples, tmp_path):
    ns = examples.require("backbone", "config-key")
    key_cfg = ns["key_cfg"]
    assert key_cfg.MODEL.TINY_NET.WIDTH == 12
    assert ns["body"].channels == [12, 24, 48, 96]
    assert "MODEL.TINY_NET.WIDHT" in ns["unknown_key_message"] and "MODEL.TINY_NET.WIDTH" in ns["unknown_key_message"]
    assert "MODEL.TINY_NET.WIDTH" in ns["bad_value_message"]
    assert "TINY_NET" not in global_cfg.MODEL  # the defaults were not touched
    # the YAML alone gives 8; without the added key, the same YAML is refused
    yaml_file = tmp_path / "tiny_width.yaml"
    yaml_file.write_text(dict(_blocks("yaml", "file"))["tiny_width.yaml"])
    fresh = global_cfg.clone()
    fresh.defrost()
    fresh.MODEL.TINY_NET = CfgNode()
    fresh.MODEL.TINY_NET.WIDTH = 16
    fresh.merge_from_file(str(yaml_file))
    assert fresh.MODEL.TINY_NET.WIDTH == 8
    with pytest.raises(ConfigKeyError, match="MODEL.TINY_NET"):
        global_cfg.clone().merge_from_file(str(yaml_file))


# --- section 5: the compiled op's touch points ------------------------------------------------------

OP = "sigmoid_focal_loss"
OP_NAMES = (f"{OP}_forward", f"{OP}_backward")


def _read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def test_compiled_op_files_named_in_the_doc_exist():
    named = set(re.findall(r"`((?:csrc|maskrcnn_benchmark|tests|benchmarks)/[^`*\s]+|setup\.py)`", _section(5)))
    required = {
        "csrc/vision.cpp",
        f"csrc/cpu/{OP}_cpu.cpp",
        f"csrc/cuda/{OP}_cuda.cu",
        f"maskrcnn_benchmark/layers/{OP}.py",
        "maskrcnn_benchmark/layers/__init__.py",
        f"tests/layers/test_{OP}.py",
        "benchmarks/ops.py",
        "setup.py",
    }
    assert required <= named, f"section 5 no longer names {sorted(required - named)}"
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"section 5 names files that do not exist: {missing}"


def test_compiled_op_touch_points():
    schema = _read("csrc/vision.cpp")
    library = schema[schema.index("TORCH_LIBRARY(maskrcnn_benchmark") :]
    for name in OP_NAMES:
        assert f'"{name}(' in library, f"no schema for {name} in csrc/vision.cpp"
        assert hasattr(torch.ops.maskrcnn_benchmark, name)
    for path, key in ((f"csrc/cpu/{OP}_cpu.cpp", "CPU"), (f"csrc/cuda/{OP}_cuda.cu", "CUDA")):
        text = _read(path)
        assert f"TORCH_LIBRARY_IMPL(maskrcnn_benchmark, {key}, m)" in text
        assert all(f'm.impl("{name}"' in text for name in OP_NAMES), path
    wrapper = _read(f"maskrcnn_benchmark/layers/{OP}.py")
    assert "FAKE_KERNELS" in wrapper and "torch.library.register_autograd" in wrapper
    assert all(f"maskrcnn_benchmark::{name}" in wrapper for name in OP_NAMES)
    layers_init = _read("maskrcnn_benchmark/layers/__init__.py")
    assert "register_fake" in layers_init and f"from . import {OP} as" in layers_init
    assert 'set_python_module("maskrcnn_benchmark.layers")' in schema
    import maskrcnn_benchmark.layers as layers

    assert issubclass(layers.SigmoidFocalLoss, torch.nn.Module)
    tests = _read(f"tests/layers/test_{OP}.py")
    assert "gradcheck" in tests and "opcheck" in tests and "def reference" in tests
    assert "_focal_rows" in _read("benchmarks/ops_nms.py") and "ops_nms" in _read("benchmarks/ops.py")
    setup = _read("setup.py")
    assert all(p in setup for p in ('"*.cpp"', '"cpu", "*.cpp"', '"cuda", "*.cu"'))


def test_compiled_op_fake_kernel_and_opcheck(examples):
    ns = examples.require("op-fake")
    assert ns["fake_shape"] == (8, 4)
    # the autograd registration the doc describes: gradients reach the logits
    logits = torch.randn(5, 3, requires_grad=True)
    ns["focal_forward"](logits, torch.tensor([0, 1, 2, 3, -1]), 3, 2.0, 0.25).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


# --- names the text uses -----------------------------------------------------------------------------


def test_every_registry_is_documented():
    undocumented = [name for name in _registries() if f"`{name}`" not in _doc_text()]
    assert not undocumented, f"the doc does not describe the registries {undocumented}"


def test_config_keys_named_in_the_doc_exist():
    keys = set(re.findall(r"\b((?:MODEL|INPUT|DATASETS|DATALOADER|SOLVER|TEST)\.[A-Z0-9_.*]*[A-Z0-9_])", _doc_text()))
    missing = []
    for key in sorted(keys):
        if "TINY_NET" in key:
            continue  # the key the doc adds itself
        candidates = [key.replace("ROI_*_HEAD", h) for h in ("ROI_BOX_HEAD", "ROI_MASK_HEAD", "ROI_KEYPOINT_HEAD")]
        if not any(_has_key(global_cfg, c) for c in candidates):
            missing.append(key)
    assert not missing, f"the doc names config keys that do not exist: {missing}"


def _has_key(node, key: str) -> bool:
    for part in key.split("."):
        if not isinstance(node, CfgNode) or part not in node:
            return False
        node = node[part]
    return True


def test_repository_paths_named_in_the_doc_exist():
    pattern = r"`((?:csrc|maskrcnn_benchmark|tests|benchmarks|configs|tools|docs)/[^`*\s]*)`"
    paths = set(re.findall(pattern, _doc_text()))
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/")).exists())
    assert not missing, f"the doc names paths that do not exist: {missing}"
