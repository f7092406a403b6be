"""Degenerate intermediate results end to end, on tiny CPU models (Faster/Mask/Keypoint R-CNN, FPN
and C4): diverged weights (NaN, +-1e30), images without proposals or detections, NaN pixels, and
training batches whose targets were all removed. Inference must return well-formed BoxLists (every
usual field, right shapes and dtypes, nothing non-finite); training must give finite losses.
The post-processors' own degenerate cases are tested next to them (tests/modeling/roi_heads, rpn)."""

from typing import Dict, List

import pytest
import torch

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import to_image_list
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

_GN_BODY = [  # narrow (16-channel res2) ResNet-18 with GroupNorm, few proposals
    "MODEL.RESNETS.STEM_OUT_CHANNELS",
    16,
    "MODEL.RESNETS.RES2_OUT_CHANNELS",
    16,
    "MODEL.RESNETS.TRANS_FUNC",
    "BottleneckWithGN",
    "MODEL.RESNETS.STEM_FUNC",
    "StemWithGN",
    "MODEL.GROUP_NORM.NUM_GROUPS",
    8,
    "MODEL.BACKBONE.FREEZE_CONV_BODY_AT",
    0,
    "MODEL.RPN.PRE_NMS_TOP_N_TRAIN",
    100,
    "MODEL.RPN.POST_NMS_TOP_N_TRAIN",
    50,
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN",
    50,
    "MODEL.RPN.PRE_NMS_TOP_N_TEST",
    60,
    "MODEL.RPN.POST_NMS_TOP_N_TEST",
    20,
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST",
    20,
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    32,
    "MODEL.ROI_HEADS.SCORE_THRESH",
    0.0,
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMG",
    10,
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
    3,
]
_FPN_SCALES = (0.25, 0.125, 0.0625, 0.03125)
_FPN = _GN_BODY + [
    "MODEL.BACKBONE.CONV_BODY",
    "R-18-FPN",
    "MODEL.RESNETS.BACKBONE_OUT_CHANNELS",
    16,
    "MODEL.FPN.USE_GN",
    True,
    "MODEL.RPN.USE_FPN",
    True,
    "MODEL.RPN.ANCHOR_STRIDE",
    (4, 8, 16, 32, 64),
    "MODEL.RPN.ANCHOR_SIZES",
    (16, 32, 64, 128, 256),
    "MODEL.ROI_HEADS.USE_FPN",
    True,
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
    7,
    "MODEL.ROI_BOX_HEAD.POOLER_SCALES",
    _FPN_SCALES,
    "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO",
    2,
    "MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR",
    "FPN2MLPFeatureExtractor",
    "MODEL.ROI_BOX_HEAD.PREDICTOR",
    "FPNPredictor",
    "MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM",
    32,
]


def _fpn_head(head: str) -> list:
    """The FPN pooling and two 16-channel convs of the mask or keypoint head."""
    options = {
        "POOLER_SCALES": _FPN_SCALES,
        "POOLER_RESOLUTION": 14,
        "POOLER_SAMPLING_RATIO": 2,
        "SHARE_BOX_FEATURE_EXTRACTOR": False,
        "CONV_LAYERS": (16, 16),
    }
    return [x for key, value in options.items() for x in (f"MODEL.{head}.{key}", value)]


_MASK_FPN = _fpn_head("ROI_MASK_HEAD") + [
    "MODEL.MASK_ON",
    True,
    "MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR",
    "MaskRCNNFPNFeatureExtractor",
    "MODEL.ROI_MASK_HEAD.PREDICTOR",
    "MaskRCNNC4Predictor",
    "MODEL.ROI_MASK_HEAD.RESOLUTION",
    28,
    "MODEL.ROI_MASK_HEAD.USE_GN",
    True,
]
_KEYPOINT_FPN = _fpn_head("ROI_KEYPOINT_HEAD") + [
    "MODEL.KEYPOINT_ON",
    True,
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
    2,
    "MODEL.ROI_KEYPOINT_HEAD.RESOLUTION",
    56,
]
_C4 = _GN_BODY + [
    "MODEL.BACKBONE.CONV_BODY",
    "R-18-C4",
    "MODEL.RESNETS.BACKBONE_OUT_CHANNELS",
    64,
    "MODEL.RPN.ANCHOR_SIZES",
    (16, 32, 64),
    "MODEL.RPN.POST_NMS_TOP_N_TEST",
    8,
    "MODEL.MASK_ON",
    True,
]
MODELS = {
    "faster_fpn": _FPN,
    "mask_fpn": _FPN + _MASK_FPN,
    "mask_fpn_pasted": _FPN + _MASK_FPN + ["MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS", True],
    "keypoint_fpn": _FPN + _KEYPOINT_FPN,
    "mask_c4": _C4,
    "rpn_only": _FPN + ["MODEL.RPN_ONLY", True],
}
TRAINABLE = ["faster_fpn", "mask_fpn", "keypoint_fpn", "mask_c4"]
SIZES = [(32, 64), (32, 32)]  # (height, width): a batch of two images of different sizes


def _cfg(name: str):
    c = global_cfg.clone()
    c.merge_from_list([o if isinstance(o, str) else str(o) for o in MODELS[name]])
    c.MODEL.DEVICE = "cpu"
    return c


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tensors here are tiny: thread start-up and contention cost more than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models() -> Dict[str, torch.nn.Module]:
    """One model per kind, built once; tests restore its weights (see `_fresh`)."""
    torch.manual_seed(0)
    return {name: build_detection_model(_cfg(name)) for name in MODELS}


@pytest.fixture(scope="module")
def weights(models) -> Dict[str, dict]:
    return {name: {k: v.clone() for k, v in model.state_dict().items()} for name, model in models.items()}


def _fresh(models, weights, name: str, training: bool = False) -> torch.nn.Module:
    """The model `name` with its initial weights and default post-processing thresholds."""
    model = models[name]
    model.load_state_dict(weights[name])
    model.zero_grad(set_to_none=True)
    c = _cfg(name)
    model.rpn.box_selector_test.min_size = c.MODEL.RPN.MIN_SIZE
    model.rpn.box_selector_train.min_size = c.MODEL.RPN.MIN_SIZE
    if model.roi_heads:
        model.roi_heads.box.post_processor.score_thresh = c.MODEL.ROI_HEADS.SCORE_THRESH
    return model.train(training)


def _images(count: int, nan_image: int = -1):
    g = torch.Generator().manual_seed(0)
    images = [torch.randn(3, *SIZES[i % 2], generator=g) for i in range(count)]
    if nan_image >= 0:
        images[nan_image] = torch.full_like(images[nan_image], float("nan"))
    return to_image_list(images, 32)


def _infer(model, images) -> List[BoxList]:
    with torch.no_grad():
        return model(images)


def _check(name: str, results: List[BoxList], count: int) -> None:
    """Every result well formed: the usual fields, shapes and dtypes, nothing non-finite."""
    c = _cfg(name)
    assert len(results) == count
    for r, (h, w) in zip(results, SIZES * count):
        n = len(r)
        assert r.size == (w, h) and r.mode == "xyxy"
        assert r.bbox.shape == (n, 4) and r.bbox.dtype == torch.float32 and torch.isfinite(r.bbox).all()
        if c.MODEL.RPN_ONLY:
            objectness = r.get_field("objectness")
            assert r.fields() == ["objectness"] and objectness.shape == (n,) and torch.isfinite(objectness).all()
            continue
        scores, labels = r.get_field("scores"), r.get_field("labels")
        assert scores.shape == (n,) and scores.dtype == torch.float32 and torch.isfinite(scores).all()
        assert labels.shape == (n,) and labels.dtype == torch.int64
        assert ((labels >= 1) & (labels < c.MODEL.ROI_BOX_HEAD.NUM_CLASSES)).all()
        if c.MODEL.MASK_ON:
            mask = r.get_field("mask")
            if c.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS:
                assert mask.shape == (n, 1, h, w) and mask.dtype == torch.bool
            else:
                m = c.MODEL.ROI_MASK_HEAD.RESOLUTION
                assert mask.shape == (n, 1, m, m) and mask.dtype == torch.float32
                assert ((mask >= 0) & (mask <= 1)).all()  # also false for NaN
        if c.MODEL.KEYPOINT_ON:
            kp = r.get_field("keypoints")
            assert isinstance(kp, PersonKeypoints) and kp.keypoints.shape == (n, 17, 3)
            assert kp.keypoints.dtype == torch.float32 and torch.isfinite(kp.keypoints).all()
            logits = kp.get_field("logits")
            assert logits.shape == (n, 17) and torch.isfinite(logits).all()


@pytest.mark.parametrize("value", [float("nan"), 1e30, -1e30], ids=["nan", "huge", "minus_huge"])
@pytest.mark.parametrize("name", list(MODELS))
def test_diverged_weights_give_empty_results(models, weights, name, value):
    model = _fresh(models, weights, name)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    for count in (1, 2):
        results = _infer(model, _images(count))
        _check(name, results, count)
        assert [len(r) for r in results] == [0] * count


@pytest.mark.parametrize("name", list(MODELS))
def test_no_proposals_and_no_detections(models, weights, name):
    model = _fresh(models, weights, name)
    model.rpn.box_selector_test.min_size = 10_000  # removes every proposal
    for count in (1, 2):
        results = _infer(model, _images(count))
        _check(name, results, count)
        assert [len(r) for r in results] == [0] * count
    if name == "rpn_only":
        return
    model = _fresh(models, weights, name)
    model.roi_heads.box.post_processor.score_thresh = 1.0  # no softmax score exceeds it
    results = _infer(model, _images(2))
    _check(name, results, 2)
    assert [len(r) for r in results] == [0, 0]


@pytest.mark.parametrize("name", list(MODELS))
def test_an_image_of_nan_pixels_gets_nothing_and_spoils_no_other(models, weights, name):
    model = _fresh(models, weights, name)
    results = _infer(model, _images(3, nan_image=1))
    _check(name, results, 3)
    assert len(results[0]) > 0 and len(results[1]) == 0 and len(results[2]) > 0


_LAYERS = {
    "box_deltas": "roi_heads.box.predictor.bbox_pred",
    "box_scores": "roi_heads.box.predictor.cls_score",
    "rpn_deltas": "rpn.head.bbox_pred",
    "rpn_scores": "rpn.head.cls_logits",
    "mask": "roi_heads.mask.predictor",
    "keypoint": "roi_heads.keypoint.predictor",
}
_ONE_LAYER = [
    (name, layer, value)
    for name, layers in [
        ("mask_fpn_pasted", [k for k in _LAYERS if k != "keypoint"]),
        ("keypoint_fpn", ["box_deltas", "keypoint"]),
        ("mask_c4", ["box_deltas", "rpn_deltas", "mask"]),
    ]
    for layer in layers
    for value in (float("nan"), 1e30, -1e30)
]


@pytest.mark.parametrize("name,layer,value", _ONE_LAYER, ids=[f"{n}-{l}-{v:g}" for n, l, v in _ONE_LAYER])
def test_one_diverged_layer(models, weights, name, layer, value):
    model = _fresh(models, weights, name)
    params = [p for k, p in model.named_parameters() if k.startswith(_LAYERS[layer] + ".")]
    assert params
    with torch.no_grad():
        for p in params:
            p.fill_(value)
    _check(name, _infer(model, _images(2)), 2)


def _target(objects, with_masks: bool, with_keypoints: bool, size=(96, 64)) -> BoxList:
    """A target BoxList of `objects` [(x1, y1, x2, y2), ...] (may be empty) with every field."""
    boxes = torch.tensor(objects, dtype=torch.float32).reshape(-1, 4)
    t = BoxList(boxes, size)
    t.add_field("labels", torch.ones(len(objects), dtype=torch.int64))
    if with_masks:
        t.add_field("masks", SegmentationMask([[[x1, y1, x2, y1, x2, y2, x1, y2]] for x1, y1, x2, y2 in objects], size))
    if with_keypoints:
        kp = torch.zeros(len(objects), 17, 3)
        for i, (x1, y1, x2, y2) in enumerate(objects):
            kp[i, :, 0], kp[i, :, 1], kp[i, :, 2] = torch.linspace(x1, x2, 17), torch.linspace(y1, y2, 17), 2
        t.add_field("keypoints", PersonKeypoints(kp, size))
    return t


_TRAINING_CASES = {  # case: (objects of each image, whether the RPN keeps any proposal)
    "one_image_without_targets": ([[(10, 12, 50, 60), (60, 20, 90, 60)], []], True),
    "no_rpn_proposals": ([[(10, 12, 50, 60)], [(30, 30, 90, 60)]], False),  # only the ground truth is left
    "no_targets_no_proposals": ([[], []], False),  # not a single RoI
}


@pytest.mark.parametrize("case", list(_TRAINING_CASES))
@pytest.mark.parametrize("name", TRAINABLE)
def test_training_on_degenerate_batches(models, weights, name, case):
    model = _fresh(models, weights, name, training=True)
    objects, proposals = _TRAINING_CASES[case]
    if not proposals:
        model.rpn.box_selector_train.min_size = 10_000
    c = _cfg(name)
    g = torch.Generator().manual_seed(0)
    images = to_image_list([torch.randn(3, 64, 96, generator=g) for _ in objects], 32)
    targets = [_target(o, c.MODEL.MASK_ON, c.MODEL.KEYPOINT_ON) for o in objects]
    losses = model(images, targets)
    for key, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), key
    sum(losses.values()).backward()
    for n, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), n
    if case == "no_targets_no_proposals":  # only the RPN's objectness has something to learn
        assert all(value == 0 for key, value in losses.items() if key != "loss_objectness"), losses
