"""Tiny detectors, their exported files and test images shared by the deploy tests.

Exports are the slow part, so each model is built and exported once per session and shared. On 2 CPU
cores: the FPN model's ONNX export ~60 s and pt2 export ~85 s, the C4 model's ~25 s and ~50 s.

The models have random weights (seeded) with the box classifier's weights scaled so that the class
scores depend on the image and spread over (0.3, 1): textured images give detections above SCORE_THRESH,
while an image of the PIXEL_MEAN colour (normalised to ~0, so every feature is ~0 and every class
score is 1 / NUM_CLASSES, below SCORE_THRESH) gives none.
"""

import os
from types import SimpleNamespace
from typing import List

import numpy as np
import pytest
import torch

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.deploy import export_onnx, export_pt2, load_model
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FPN_CONFIG = os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_FPN_cpu.yaml")
C4_CONFIG = os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_C4_cpu.yaml")
PIXEL_MEAN = (100.0, 110.0, 120.0)  # BGR, integers: a uniform image of this colour normalises to ~0
# Small and fast: frozen batch norm (no GroupNorm), 16-channel layers, few proposals, ~100 px inputs.
SMALL = [
    "DTYPE", "float32",
    "MODEL.RESNETS.TRANS_FUNC", "BottleneckWithFixedBatchNorm",
    "MODEL.RESNETS.STEM_FUNC", "StemWithFixedBatchNorm",
    "MODEL.RESNETS.STEM_OUT_CHANNELS", "16",
    "MODEL.RESNETS.RES2_OUT_CHANNELS", "16",
    "MODEL.RPN.PRE_NMS_TOP_N_TEST", "60",
    "MODEL.RPN.POST_NMS_TOP_N_TEST", "30",
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST", "30",
    "MODEL.ROI_HEADS.SCORE_THRESH", "0.3",
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMG", "8",
    "INPUT.MIN_SIZE_TEST", "96",
    "INPUT.MAX_SIZE_TEST", "160",
    "INPUT.PIXEL_MEAN", str(list(PIXEL_MEAN)),
    "TEST.IMS_PER_BATCH", "4",
]  # fmt: skip
# FPN Mask + Keypoint R-CNN, 4 classes: boxes, masks and keypoints from one model.
MASK_KEYPOINT = [
    "MODEL.RESNETS.BACKBONE_OUT_CHANNELS", "16",
    "MODEL.FPN.USE_GN", "False",
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "4",
    "MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM", "32",
    "MODEL.ROI_MASK_HEAD.USE_GN", "False",
    "MODEL.ROI_MASK_HEAD.CONV_LAYERS", "(16,)",
    "MODEL.KEYPOINT_ON", "True",
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_SCALES", "(0.25, 0.125, 0.0625, 0.03125)",
    "MODEL.ROI_KEYPOINT_HEAD.CONV_LAYERS", "(16,)",
    "MODEL.ROI_KEYPOINT_HEAD.SHARE_BOX_FEATURE_EXTRACTOR", "False",
]  # fmt: skip
# C4 Mask R-CNN, 7 classes: another class count, one feature level, the res5 stage shared by the
# box and mask heads, and no size divisibility (as the shipped C4 configs: the dynamic export takes
# any height and width).
C4_MASK = [
    "MODEL.ROI_MASK_HEAD.CONV_LAYERS", "(16,)",
    "DATALOADER.SIZE_DIVISIBILITY", "0",
    "MODEL.RESNETS.BACKBONE_OUT_CHANNELS", "64",
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "7",
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", "6",
]  # fmt: skip
PT2_IMAGE_SIZE = (160, 160)  # fixed-size pt2 exports: compiled in about half the time of dynamic ones
# -O0 C++: the same graph, built ~20% faster (the tests time the build, not the kernels).
PT2_TEST_OPTIONS = {"aot_inductor.debug_compile": True}


def tiny_cfg(config: str, *opts: str):
    cfg = global_cfg.clone()
    cfg.merge_from_file(config)
    cfg.merge_from_list([*SMALL, *opts])
    return cfg


def tiny_model(cfg, folder, seed: int, classifier_scale: float):
    """A random model (seed) with its classifier weights scaled, saved to `folder`: (model in eval
    mode, weights path)."""
    torch.manual_seed(seed)
    model = load_model(cfg, "")
    with torch.no_grad():
        model.roi_heads.box.predictor.cls_score.weight.mul_(classifier_scale)
    os.makedirs(folder, exist_ok=True)
    Checkpointer(model, save_dir=str(folder), save_to_disk=True).save("model")
    return model, os.path.join(folder, "model.pth")


def _setup(tmp_path_factory, name: str, config: str, opts: List[str], seed: int, scale: float) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp(name)
    cfg = tiny_cfg(config, *opts)
    model, weights = tiny_model(cfg, folder, seed, scale)
    return SimpleNamespace(cfg=cfg, model=model, weights=weights, folder=folder)


@pytest.fixture(scope="session")
def mask_keypoint(tmp_path_factory):
    return _setup(tmp_path_factory, "mask_keypoint", FPN_CONFIG, MASK_KEYPOINT, seed=0, scale=0.3)


@pytest.fixture(scope="session")
def c4_mask(tmp_path_factory):
    return _setup(tmp_path_factory, "c4_mask", C4_CONFIG, C4_MASK, seed=0, scale=0.1)


@pytest.fixture(scope="session")
def mask_keypoint_onnx(mask_keypoint):
    return export_onnx(mask_keypoint.model, mask_keypoint.cfg, str(mask_keypoint.folder / "model.onnx"))


@pytest.fixture(scope="session")
def c4_mask_onnx(c4_mask):
    return export_onnx(c4_mask.model, c4_mask.cfg, str(c4_mask.folder / "model.onnx"))


@pytest.fixture(scope="session")
def mask_keypoint_pt2(mask_keypoint):
    path = str(mask_keypoint.folder / "model.pt2")
    return export_pt2(mask_keypoint.model, mask_keypoint.cfg, path, PT2_IMAGE_SIZE, PT2_TEST_OPTIONS)


@pytest.fixture(scope="session")
def c4_mask_pt2(c4_mask):
    path = str(c4_mask.folder / "model.pt2")
    return export_pt2(c4_mask.model, c4_mask.cfg, path, PT2_IMAGE_SIZE, PT2_TEST_OPTIONS)


def noise_image(height: int, width: int, seed: int) -> np.ndarray:
    """A BGR uint8 image of smooth random blobs (detections everywhere with the sharp classifier)."""
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, (height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    image = np.kron(small, np.ones((8, 8, 1), dtype=np.float32))[:height, :width]
    return image.astype(np.uint8)


def blank_image(height: int, width: int) -> np.ndarray:
    """A BGR image of the PIXEL_MEAN colour: no detection."""
    return np.broadcast_to(np.array(PIXEL_MEAN, dtype=np.uint8), (height, width, 3)).copy()


@pytest.fixture(scope="session")
def images() -> List[np.ndarray]:
    """Images of different sizes (two with the same padded network-input size, so that they share a
    batch), the third one blank."""
    return [noise_image(120, 90, 1), noise_image(100, 140, 2), blank_image(130, 110), noise_image(118, 92, 3)]


def assert_same_detections(actual: BoxList, expected: BoxList, mask_tolerance: float = 2e-3) -> None:
    """Predictor-style results equal within float tolerance: boxes, scores, labels, pasted masks (a
    fraction `mask_tolerance` of pixels may flip: probabilities within rounding of the threshold) and
    keypoints (positions and logits)."""
    assert actual.size == expected.size
    assert len(actual) == len(expected), (len(actual), len(expected))
    assert set(actual.fields()) == set(expected.fields())
    torch.testing.assert_close(actual.bbox, expected.bbox, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(actual.get_field("scores"), expected.get_field("scores"), atol=1e-4, rtol=1e-4)
    assert torch.equal(actual.get_field("labels"), expected.get_field("labels"))
    if expected.has_field("mask"):
        a, e = actual.get_field("mask"), expected.get_field("mask")
        assert a.shape == e.shape and a.dtype == e.dtype
        assert (a != e).float().mean().item() <= mask_tolerance if a.numel() else True
    if expected.has_field("keypoints"):
        a, e = actual.get_field("keypoints"), expected.get_field("keypoints")
        torch.testing.assert_close(a.keypoints, e.keypoints, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(a.get_field("logits"), e.get_field("logits"), atol=1e-3, rtol=1e-3)


@pytest.fixture(scope="session")
def assert_same():
    """assert_same_detections, for the test modules (conftest is not importable by name)."""
    return assert_same_detections


@pytest.fixture(scope="session")
def make_noise_image():
    return noise_image
