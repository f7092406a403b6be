"""GeneralizedRCNN end to end on CPU: checkpoint layout of the original's models, training losses
and gradients, inference outputs (also with zero detections), and overfitting two images."""

import pytest
import torch

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import to_image_list
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

FPN_BLOCK = [
    "MODEL.BACKBONE.CONV_BODY",
    "R-50-FPN",
    "MODEL.RESNETS.BACKBONE_OUT_CHANNELS",
    256,
    "MODEL.RPN.USE_FPN",
    True,
    "MODEL.RPN.ANCHOR_STRIDE",
    (4, 8, 16, 32, 64),
    "MODEL.ROI_HEADS.USE_FPN",
    True,
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
    7,
    "MODEL.ROI_BOX_HEAD.POOLER_SCALES",
    (0.25, 0.125, 0.0625, 0.03125),
    "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO",
    2,
    "MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR",
    "FPN2MLPFeatureExtractor",
    "MODEL.ROI_BOX_HEAD.PREDICTOR",
    "FPNPredictor",
]
MASK_FPN = [
    "MODEL.MASK_ON",
    True,
    "MODEL.ROI_MASK_HEAD.POOLER_SCALES",
    (0.25, 0.125, 0.0625, 0.03125),
    "MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR",
    "MaskRCNNFPNFeatureExtractor",
    "MODEL.ROI_MASK_HEAD.PREDICTOR",
    "MaskRCNNC4Predictor",
    "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION",
    14,
    "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO",
    2,
    "MODEL.ROI_MASK_HEAD.RESOLUTION",
    28,
    "MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR",
    False,
]
KEYPOINT_FPN = [
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
    2,
    "MODEL.KEYPOINT_ON",
    True,
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_SCALES",
    (0.25, 0.125, 0.0625, 0.03125),
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION",
    14,
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO",
    2,
    "MODEL.ROI_KEYPOINT_HEAD.RESOLUTION",
    56,
    "MODEL.ROI_KEYPOINT_HEAD.SHARE_BOX_FEATURE_EXTRACTOR",
    False,
]
# The model-defining settings of the original's configs of these names (their state_dict layouts
# are in tests/assets/checkpoint_keys.txt).
ORIGINAL_MODELS = {
    "e2e_mask_rcnn_R_50_FPN_1x.yaml": FPN_BLOCK + MASK_FPN,
    "e2e_faster_rcnn_R_50_FPN_1x.yaml": FPN_BLOCK,
    "e2e_keypoint_rcnn_R_50_FPN_1x.yaml": FPN_BLOCK + KEYPOINT_FPN,
    "e2e_faster_rcnn_R_50_C4_1x.yaml": [],
    "e2e_mask_rcnn_R_50_C4_1x.yaml": ["MODEL.MASK_ON", True],
    "rpn_R_50_FPN_1x.yaml": FPN_BLOCK + ["MODEL.RPN_ONLY", True],
    "gn_baselines/e2e_mask_rcnn_R_50_FPN_1x_gn.yaml": FPN_BLOCK
    + MASK_FPN
    + [
        "MODEL.RESNETS.TRANS_FUNC",
        "BottleneckWithGN",
        "MODEL.RESNETS.STEM_FUNC",
        "StemWithGN",
        "MODEL.RESNETS.STRIDE_IN_1X1",
        False,
        "MODEL.FPN.USE_GN",
        True,
        "MODEL.ROI_BOX_HEAD.USE_GN",
        True,
        "MODEL.ROI_MASK_HEAD.USE_GN",
        True,
        "MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR",
        "FPN2MLPFeatureExtractor",
    ],
    "e2e_mask_rcnn_X_101_32x8d_FPN_1x.yaml": FPN_BLOCK
    + MASK_FPN
    + [
        "MODEL.BACKBONE.CONV_BODY",
        "R-101-FPN",
        "MODEL.RESNETS.STRIDE_IN_1X1",
        False,
        "MODEL.RESNETS.NUM_GROUPS",
        32,
        "MODEL.RESNETS.WIDTH_PER_GROUP",
        8,
    ],
}


def _cfg(opts):
    c = cfg.clone()
    c.merge_from_list([str(o) if not isinstance(o, str) else o for o in opts])
    c.MODEL.DEVICE = "cpu"
    return c


@pytest.mark.parametrize("config_name", list(ORIGINAL_MODELS))
def test_state_dict_equals_the_originals(config_name, original_checkpoint_keys):
    with torch.device("meta"):
        model = build_detection_model(_cfg(ORIGINAL_MODELS[config_name]))
    actual = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert actual == original_checkpoint_keys[config_name]


TINY = [
    "MODEL.BACKBONE.CONV_BODY",
    "R-18-FPN",
    "MODEL.RESNETS.RES2_OUT_CHANNELS",
    64,
    "MODEL.RESNETS.BACKBONE_OUT_CHANNELS",
    32,
    "MODEL.RESNETS.TRANS_FUNC",
    "BottleneckWithGN",
    "MODEL.RESNETS.STEM_FUNC",
    "StemWithGN",
    "MODEL.GROUP_NORM.NUM_GROUPS",
    8,
    "MODEL.FPN.USE_GN",
    True,
    "MODEL.BACKBONE.FREEZE_CONV_BODY_AT",
    0,
    "MODEL.RPN.USE_FPN",
    True,
    "MODEL.RPN.ANCHOR_STRIDE",
    (4, 8, 16, 32, 64),
    "MODEL.RPN.ANCHOR_SIZES",
    (16, 32, 64, 128, 256),
    "MODEL.RPN.PRE_NMS_TOP_N_TRAIN",
    300,
    "MODEL.RPN.POST_NMS_TOP_N_TRAIN",
    300,
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN",
    300,
    "MODEL.RPN.PRE_NMS_TOP_N_TEST",
    200,
    "MODEL.RPN.POST_NMS_TOP_N_TEST",
    100,
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST",
    100,
    "MODEL.ROI_HEADS.USE_FPN",
    True,
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    64,
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
    7,
    "MODEL.ROI_BOX_HEAD.POOLER_SCALES",
    (0.25, 0.125, 0.0625, 0.03125),
    "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO",
    2,
    "MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR",
    "FPN2MLPFeatureExtractor",
    "MODEL.ROI_BOX_HEAD.PREDICTOR",
    "FPNPredictor",
    "MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM",
    64,
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
    3,
]
TINY_MASK = [
    "MODEL.MASK_ON",
    True,
    "MODEL.ROI_MASK_HEAD.POOLER_SCALES",
    (0.25, 0.125, 0.0625, 0.03125),
    "MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR",
    "MaskRCNNFPNFeatureExtractor",
    "MODEL.ROI_MASK_HEAD.PREDICTOR",
    "MaskRCNNC4Predictor",
    "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION",
    14,
    "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO",
    2,
    "MODEL.ROI_MASK_HEAD.RESOLUTION",
    28,
    "MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR",
    False,
    "MODEL.ROI_MASK_HEAD.CONV_LAYERS",
    (32, 32),
]
TINY_KEYPOINT = [
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
    2,
    "MODEL.KEYPOINT_ON",
    True,
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_SCALES",
    (0.25, 0.125, 0.0625, 0.03125),
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION",
    14,
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO",
    2,
    "MODEL.ROI_KEYPOINT_HEAD.RESOLUTION",
    56,
    "MODEL.ROI_KEYPOINT_HEAD.SHARE_BOX_FEATURE_EXTRACTOR",
    False,
    "MODEL.ROI_KEYPOINT_HEAD.CONV_LAYERS",
    (32, 32),
]
TINY_C4_MASK = [
    "MODEL.BACKBONE.CONV_BODY",
    "R-18-C4",
    "MODEL.RESNETS.RES2_OUT_CHANNELS",
    64,
    "MODEL.RESNETS.BACKBONE_OUT_CHANNELS",
    256,
    "MODEL.RESNETS.TRANS_FUNC",
    "BottleneckWithGN",
    "MODEL.RESNETS.STEM_FUNC",
    "StemWithGN",
    "MODEL.GROUP_NORM.NUM_GROUPS",
    8,
    "MODEL.BACKBONE.FREEZE_CONV_BODY_AT",
    0,
    "MODEL.RPN.ANCHOR_SIZES",
    (16, 32, 64),
    "MODEL.RPN.PRE_NMS_TOP_N_TRAIN",
    300,
    "MODEL.RPN.POST_NMS_TOP_N_TRAIN",
    100,
    "MODEL.RPN.PRE_NMS_TOP_N_TEST",
    200,
    "MODEL.RPN.POST_NMS_TOP_N_TEST",
    50,
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    32,
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
    3,
    "MODEL.MASK_ON",
    True,
]

LOSS_KEYS = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}


def _targets(with_masks=False, with_keypoints=False):
    """Two 96x128 images: one with two objects, one with one."""
    specs = [[(10, 12, 50, 60, 1), (60, 20, 110, 80, 2)], [(30, 30, 90, 70, 1)]]
    targets = []
    for objects in specs:
        boxes = torch.tensor([o[:4] for o in objects], dtype=torch.float32)
        t = BoxList(boxes, (128, 96))
        t.add_field("labels", torch.tensor([1 if with_keypoints else o[4] for o in objects]))
        if with_masks:
            polys = [[[x1, y1, x2, y1, x2, y2, x1, y2]] for x1, y1, x2, y2, _ in objects]
            t.add_field("masks", SegmentationMask(polys, (128, 96)))
        if with_keypoints:
            kp = torch.zeros(len(objects), 17, 3)
            for i, (x1, y1, x2, y2, _) in enumerate(objects):
                kp[i, :, 0] = torch.linspace(x1 + 2, x2 - 2, 17)
                kp[i, :, 1] = torch.linspace(y1 + 2, y2 - 2, 17)
                kp[i, :, 2] = 2
            t.add_field("keypoints", PersonKeypoints(kp, (128, 96)))
        targets.append(t)
    return targets


def _images():
    g = torch.Generator().manual_seed(0)
    return to_image_list([torch.randn(3, 96, 128, generator=g), torch.randn(3, 96, 128, generator=g)], 32)


@pytest.mark.parametrize(
    "opts,extra_losses,masks,keypoints",
    [
        (TINY, set(), False, False),
        (TINY + TINY_MASK, {"loss_mask"}, True, False),
        (TINY + TINY_KEYPOINT, {"loss_kp"}, False, True),
        (TINY_C4_MASK, {"loss_mask"}, True, False),
    ],
    ids=["faster_fpn", "mask_fpn", "keypoint_fpn", "mask_c4"],
)
def test_training_losses_and_gradients(opts, extra_losses, masks, keypoints):
    model = build_detection_model(_cfg(opts)).train()
    losses = model(_images(), _targets(masks, keypoints))
    assert set(losses) == LOSS_KEYS | extra_losses
    for name, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), name
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    for n, p in model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), n


def test_training_requires_targets():
    model = build_detection_model(_cfg(TINY)).train()
    with pytest.raises(ValueError, match="targets should be passed"):
        model(_images())


@pytest.mark.parametrize(
    "opts,fields",
    [
        (TINY + TINY_MASK, {"scores", "labels", "mask"}),
        (TINY + TINY_KEYPOINT, {"scores", "labels", "keypoints"}),
        (TINY_C4_MASK, {"scores", "labels", "mask"}),
        (TINY + ["MODEL.RPN_ONLY", True], {"objectness"}),
    ],
    ids=["mask_fpn", "keypoint_fpn", "mask_c4", "rpn_only"],
)
def test_inference_fields(opts, fields):
    c = _cfg(opts + ["MODEL.ROI_HEADS.SCORE_THRESH", 0.0])
    model = build_detection_model(c).eval()
    with torch.no_grad():
        results = model(_images())
    assert len(results) == 2
    for r in results:
        assert isinstance(r, BoxList) and r.mode == "xyxy" and r.size == (128, 96)
        assert set(r.fields()) == fields
        assert len(r) > 0
        if "mask" in fields:
            m = 28 if "FPN" in str(opts) else 14
            assert r.get_field("mask").shape == (len(r), 1, m, m)
        if "keypoints" in fields:
            assert r.get_field("keypoints").keypoints.shape == (len(r), 17, 3)


@pytest.mark.parametrize("opts", [TINY + TINY_MASK, TINY + TINY_KEYPOINT, TINY_C4_MASK], ids=["mask", "keypoint", "c4"])
def test_inference_with_zero_detections(opts):
    model = build_detection_model(_cfg(opts + ["MODEL.ROI_HEADS.SCORE_THRESH", 1.0])).eval()
    with torch.no_grad():
        results = model(_images())
    for r in results:
        assert len(r) == 0
        if r.has_field("mask"):
            assert r.get_field("mask").shape[0] == 0
        if r.has_field("keypoints"):
            assert r.get_field("keypoints").keypoints.shape == (0, 17, 3)


def test_small_model_overfits_two_images():
    torch.manual_seed(0)
    model = build_detection_model(_cfg(TINY + TINY_MASK)).train()
    images, targets = _images(), _targets(with_masks=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    history = []
    for _ in range(40):
        losses = model(images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    first, last = sum(history[:3]) / 3, sum(history[-3:]) / 3
    assert last < 0.5 * first, history
