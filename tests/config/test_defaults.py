"""The default config holds every key of the original with the original's default (listed below)."""

import math

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.config.config_node import _all_keys
from maskrcnn_benchmark.config.defaults import ADDED_KEYS

# Written from the original's documented defaults, group by group.
EXPECTED = {
    "MODEL": dict(
        RPN_ONLY=False,
        MASK_ON=False,
        RETINANET_ON=False,
        KEYPOINT_ON=False,
        DEVICE="cuda",
        META_ARCHITECTURE="GeneralizedRCNN",
        CLS_AGNOSTIC_BBOX_REG=False,
        WEIGHT="",
    ),
    "MODEL.BACKBONE": dict(CONV_BODY="R-50-C4", FREEZE_CONV_BODY_AT=2),
    "MODEL.FPN": dict(USE_GN=False, USE_RELU=False),
    "MODEL.GROUP_NORM": dict(DIM_PER_GP=-1, NUM_GROUPS=32, EPSILON=1e-5),
    "MODEL.RPN": dict(
        USE_FPN=False,
        ANCHOR_SIZES=(32, 64, 128, 256, 512),
        ANCHOR_STRIDE=(16,),
        ASPECT_RATIOS=(0.5, 1.0, 2.0),
        STRADDLE_THRESH=0,
        FG_IOU_THRESHOLD=0.7,
        BG_IOU_THRESHOLD=0.3,
        BATCH_SIZE_PER_IMAGE=256,
        POSITIVE_FRACTION=0.5,
        PRE_NMS_TOP_N_TRAIN=12000,
        PRE_NMS_TOP_N_TEST=6000,
        POST_NMS_TOP_N_TRAIN=2000,
        POST_NMS_TOP_N_TEST=1000,
        NMS_THRESH=0.7,
        MIN_SIZE=0,
        FPN_POST_NMS_TOP_N_TRAIN=2000,
        FPN_POST_NMS_TOP_N_TEST=2000,
        FPN_POST_NMS_PER_BATCH=True,
        RPN_HEAD="SingleConvRPNHead",
    ),
    "MODEL.ROI_HEADS": dict(
        USE_FPN=False,
        FG_IOU_THRESHOLD=0.5,
        BG_IOU_THRESHOLD=0.5,
        BBOX_REG_WEIGHTS=(10.0, 10.0, 5.0, 5.0),
        BATCH_SIZE_PER_IMAGE=512,
        POSITIVE_FRACTION=0.25,
        SCORE_THRESH=0.05,
        NMS=0.5,
        DETECTIONS_PER_IMG=100,
    ),
    "MODEL.ROI_BOX_HEAD": dict(
        FEATURE_EXTRACTOR="ResNet50Conv5ROIFeatureExtractor",
        PREDICTOR="FastRCNNPredictor",
        POOLER_RESOLUTION=14,
        POOLER_SAMPLING_RATIO=0,
        POOLER_SCALES=(1.0 / 16,),
        NUM_CLASSES=81,
        MLP_HEAD_DIM=1024,
        USE_GN=False,
        DILATION=1,
        CONV_HEAD_DIM=256,
        NUM_STACKED_CONVS=4,
    ),
    "MODEL.ROI_MASK_HEAD": dict(
        FEATURE_EXTRACTOR="ResNet50Conv5ROIFeatureExtractor",
        PREDICTOR="MaskRCNNC4Predictor",
        POOLER_RESOLUTION=14,
        POOLER_SAMPLING_RATIO=0,
        POOLER_SCALES=(1.0 / 16,),
        MLP_HEAD_DIM=1024,
        CONV_LAYERS=(256, 256, 256, 256),
        RESOLUTION=14,
        SHARE_BOX_FEATURE_EXTRACTOR=True,
        POSTPROCESS_MASKS=False,
        POSTPROCESS_MASKS_THRESHOLD=0.5,
        DILATION=1,
        USE_GN=False,
    ),
    "MODEL.ROI_KEYPOINT_HEAD": dict(
        FEATURE_EXTRACTOR="KeypointRCNNFeatureExtractor",
        PREDICTOR="KeypointRCNNPredictor",
        POOLER_RESOLUTION=14,
        POOLER_SAMPLING_RATIO=0,
        POOLER_SCALES=(1.0 / 16,),
        MLP_HEAD_DIM=1024,
        CONV_LAYERS=(512,) * 8,
        RESOLUTION=14,
        NUM_CLASSES=17,
        SHARE_BOX_FEATURE_EXTRACTOR=True,
    ),
    "MODEL.RESNETS": dict(
        NUM_GROUPS=1,
        WIDTH_PER_GROUP=64,
        STRIDE_IN_1X1=True,
        TRANS_FUNC="BottleneckWithFixedBatchNorm",
        STEM_FUNC="StemWithFixedBatchNorm",
        RES5_DILATION=1,
        BACKBONE_OUT_CHANNELS=1024,
        RES2_OUT_CHANNELS=256,
        STEM_OUT_CHANNELS=64,
        STAGE_WITH_DCN=(False,) * 4,
        WITH_MODULATED_DCN=False,
        DEFORMABLE_GROUPS=1,
    ),
    "MODEL.RETINANET": dict(
        NUM_CLASSES=81,
        ANCHOR_SIZES=(32, 64, 128, 256, 512),
        ASPECT_RATIOS=(0.5, 1.0, 2.0),
        ANCHOR_STRIDES=(8, 16, 32, 64, 128),
        STRADDLE_THRESH=0,
        OCTAVE=2.0,
        SCALES_PER_OCTAVE=3,
        USE_C5=True,
        NUM_CONVS=4,
        BBOX_REG_WEIGHT=4.0,
        BBOX_REG_BETA=0.11,
        PRE_NMS_TOP_N=1000,
        FG_IOU_THRESHOLD=0.5,
        BG_IOU_THRESHOLD=0.4,
        LOSS_ALPHA=0.25,
        LOSS_GAMMA=2.0,
        PRIOR_PROB=0.01,
        INFERENCE_TH=0.05,
        NMS_TH=0.4,
    ),
    "MODEL.FBNET": dict(
        ARCH="default",
        ARCH_DEF="",
        BN_TYPE="bn",
        SCALE_FACTOR=1.0,
        WIDTH_DIVISOR=1,
        DW_CONV_SKIP_BN=True,
        DW_CONV_SKIP_RELU=True,
        DET_HEAD_LAST_SCALE=1.0,
        DET_HEAD_BLOCKS=[],
        DET_HEAD_STRIDE=0,
        KPTS_HEAD_LAST_SCALE=0.0,
        KPTS_HEAD_BLOCKS=[],
        KPTS_HEAD_STRIDE=0,
        MASK_HEAD_LAST_SCALE=0.0,
        MASK_HEAD_BLOCKS=[],
        MASK_HEAD_STRIDE=0,
        RPN_HEAD_BLOCKS=0,
        RPN_BN_TYPE="",
    ),
    "INPUT": dict(
        MIN_SIZE_TRAIN=(800,),
        MAX_SIZE_TRAIN=1333,
        MIN_SIZE_TEST=800,
        MAX_SIZE_TEST=1333,
        PIXEL_MEAN=[102.9801, 115.9465, 122.7717],
        PIXEL_STD=[1.0, 1.0, 1.0],
        TO_BGR255=True,
        BRIGHTNESS=0.0,
        CONTRAST=0.0,
        SATURATION=0.0,
        HUE=0.0,
        HORIZONTAL_FLIP_PROB_TRAIN=0.5,
        VERTICAL_FLIP_PROB_TRAIN=0.0,
    ),
    "DATASETS": dict(TRAIN=(), TEST=()),
    "DATALOADER": dict(NUM_WORKERS=4, SIZE_DIVISIBILITY=0, ASPECT_RATIO_GROUPING=True),
    "SOLVER": dict(
        MAX_ITER=40000,
        BASE_LR=0.001,
        BIAS_LR_FACTOR=2,
        MOMENTUM=0.9,
        WEIGHT_DECAY=0.0005,
        WEIGHT_DECAY_BIAS=0,
        GAMMA=0.1,
        STEPS=(30000,),
        WARMUP_FACTOR=1.0 / 3,
        WARMUP_ITERS=500,
        WARMUP_METHOD="linear",
        CHECKPOINT_PERIOD=2500,
        TEST_PERIOD=0,
        IMS_PER_BATCH=16,
    ),
    "TEST": dict(EXPECTED_RESULTS=[], EXPECTED_RESULTS_SIGMA_TOL=4, IMS_PER_BATCH=8, DETECTIONS_PER_IMG=100),
    "TEST.BBOX_AUG": dict(ENABLED=False, H_FLIP=False, SCALES=(), MAX_SIZE=4000, SCALE_H_FLIP=False),
    "": dict(OUTPUT_DIR=".", DTYPE="float32", AMP_VERBOSE=False),
}


def _node(path):
    node = cfg
    for part in filter(None, path.split(".")):
        node = node[part]
    return node


def test_every_original_key_has_its_default():
    for group, values in EXPECTED.items():
        node = _node(group)
        for key, expected in values.items():
            actual = node[key]
            where = f"{group}.{key}".lstrip(".")
            if isinstance(expected, float):
                assert math.isclose(actual, expected, rel_tol=1e-12), where
            elif isinstance(expected, tuple) and expected and isinstance(expected[0], float):
                assert len(actual) == len(expected) and all(
                    math.isclose(a, e, rel_tol=1e-12) for a, e in zip(actual, expected)
                ), where
            else:
                assert actual == expected, where
            assert type(actual) is type(expected), f"{where}: {type(actual)} vs {type(expected)}"


def test_key_count_is_the_originals_plus_documented_additions():
    expected_keys = {f"{g}.{k}".lstrip(".") for g, values in EXPECTED.items() for k in values}
    expected_keys.add("PATHS_CATALOG")
    assert len(expected_keys) == 171
    actual = set(_all_keys(cfg))
    assert actual - expected_keys == set(ADDED_KEYS)
    assert expected_keys <= actual


def test_paths_catalog_default_points_at_the_packaged_file():
    import os

    assert os.path.isabs(cfg.PATHS_CATALOG)
    assert os.path.isfile(cfg.PATHS_CATALOG)
    assert cfg.PATHS_CATALOG.endswith(os.path.join("config", "paths_catalog.py"))
