"""Default values of every configuration key.

The names and defaults are those of the original maskrcnn_benchmark (171 keys), so its YAML files and
command-line overrides work unchanged. Keys this project adds are marked "(added)" and listed in
ADDED_KEYS at the bottom. Tuples are written as tuples; YAML files may give them as strings like
"(800,)", which yacs evaluates.

Conventions: image sizes are in pixels; PIXEL_MEAN/PIXEL_STD are in the BGR 0-255 space when
TO_BGR255 is True (the Caffe2/Detectron convention); NUM_CLASSES counts the background class.
"""

import os

from .config_node import CfgNode as CN

_C = CN()

_C.MODEL = CN()
_C.MODEL.RPN_ONLY = False
_C.MODEL.MASK_ON = False
_C.MODEL.RETINANET_ON = False
_C.MODEL.KEYPOINT_ON = False
_C.MODEL.DEVICE = "cuda"
_C.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
_C.MODEL.CLS_AGNOSTIC_BBOX_REG = False
# A path, a URL, or "catalog://<name>" resolved through ModelCatalog.
_C.MODEL.WEIGHT = ""
# (added) torch.compile of the model's dense parts: backbone, RPN head, RoI feature extractors (after
# pooling) and predictors; the rest stays eager (engine/compile.py says what and why). Also --compile.
_C.MODEL.COMPILE = CN()
# Compile when the tools (and Predictor) build the model. The first iterations take longer (compiling).
_C.MODEL.COMPILE.ENABLED = False
# torch.compile mode: "default", "reduce-overhead" (CUDA graphs: GPUs only), "max-autotune",
# "max-autotune-no-cudagraphs".
_C.MODEL.COMPILE.MODE = "default"
# Shapes: "auto" compiles each part for the first sizes it sees and once more, with symbolic sizes, when
# they change (torch's default); "true" compiles with symbolic sizes from the first call; "false" never
# does (a recompilation per new image size or RoI count, until torch falls back to eager).
_C.MODEL.COMPILE.DYNAMIC = "auto"
# torch.compile backend: "inductor" (generated kernels), or e.g. "aot_eager" to check tracing only.
_C.MODEL.COMPILE.BACKEND = "inductor"

# ---------------------------------------------------------------------------- input pipeline
_C.INPUT = CN()
# One size is drawn at random per image from this tuple (multi-scale training).
_C.INPUT.MIN_SIZE_TRAIN = (800,)
_C.INPUT.MAX_SIZE_TRAIN = 1333
_C.INPUT.MIN_SIZE_TEST = 800
_C.INPUT.MAX_SIZE_TEST = 1333
_C.INPUT.PIXEL_MEAN = [102.9801, 115.9465, 122.7717]
_C.INPUT.PIXEL_STD = [1.0, 1.0, 1.0]
# Convert RGB [0, 1] tensors to BGR [0, 255] before normalizing (Caffe2-trained weights expect it).
_C.INPUT.TO_BGR255 = True
_C.INPUT.BRIGHTNESS = 0.0
_C.INPUT.CONTRAST = 0.0
_C.INPUT.SATURATION = 0.0
_C.INPUT.HUE = 0.0
_C.INPUT.HORIZONTAL_FLIP_PROB_TRAIN = 0.5
_C.INPUT.VERTICAL_FLIP_PROB_TRAIN = 0.0

# ---------------------------------------------------------------------------- datasets
_C.DATASETS = CN()
# Names registered in paths_catalog.DatasetCatalog.
_C.DATASETS.TRAIN = ()
_C.DATASETS.TEST = ()
# (added) What to do with a malformed entry of the annotation file (an annotation, a polygon, an image
# entry, duplicated ids) or an unreadable training image: "skip" drops it (training and evaluation
# alike) and reports the counts and the first few in one warning (file, image id, annotation id, field,
# value); "error" raises at the first one. A broken file or category list always raises.
_C.DATASETS.ON_BAD_INPUT = "skip"
# (added) COCO-format datasets of your own, registered before DATASETS.TRAIN / TEST are looked up:
# a list of [name, images folder, annotation json] (relative paths: against the data folder), e.g.
# [["shelves_train", "/data/shelves/images", "/data/shelves/train.json"]].
_C.DATASETS.REGISTER_COCO = []

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4
# Pad batched images so that height and width are multiples of this (32 for FPN).
_C.DATALOADER.SIZE_DIVISIBILITY = 0
# Batch landscape and portrait images separately (saves padding).
_C.DATALOADER.ASPECT_RATIO_GROUPING = True

# ---------------------------------------------------------------------------- backbone
_C.MODEL.BACKBONE = CN()
# Registered name in modeling.registry.BACKBONES, e.g. "R-50-C4", "R-50-FPN".
_C.MODEL.BACKBONE.CONV_BODY = "R-50-C4"
# Freeze the stem (1) and the first stages up to this index; < 0 freezes nothing.
_C.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = 2

_C.MODEL.FPN = CN()
_C.MODEL.FPN.USE_GN = False
_C.MODEL.FPN.USE_RELU = False

_C.MODEL.GROUP_NORM = CN()
# Channels per group; -1 means "use NUM_GROUPS groups" instead.
_C.MODEL.GROUP_NORM.DIM_PER_GP = -1
_C.MODEL.GROUP_NORM.NUM_GROUPS = 32
_C.MODEL.GROUP_NORM.EPSILON = 1e-5

# ---------------------------------------------------------------------------- RPN
_C.MODEL.RPN = CN()
_C.MODEL.RPN.USE_FPN = False
# Anchor sizes in absolute pixels of the network input (one per FPN level with FPN).
_C.MODEL.RPN.ANCHOR_SIZES = (32, 64, 128, 256, 512)
_C.MODEL.RPN.ANCHOR_STRIDE = (16,)
_C.MODEL.RPN.ASPECT_RATIOS = (0.5, 1.0, 2.0)
# Anchors extending more than this beyond the image are ignored in training; < 0 keeps all.
_C.MODEL.RPN.STRADDLE_THRESH = 0
_C.MODEL.RPN.FG_IOU_THRESHOLD = 0.7
_C.MODEL.RPN.BG_IOU_THRESHOLD = 0.3
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
# Proposals kept per feature level before NMS, and per image after it.
_C.MODEL.RPN.PRE_NMS_TOP_N_TRAIN = 12000
_C.MODEL.RPN.PRE_NMS_TOP_N_TEST = 6000
_C.MODEL.RPN.POST_NMS_TOP_N_TRAIN = 2000
_C.MODEL.RPN.POST_NMS_TOP_N_TEST = 1000
_C.MODEL.RPN.NMS_THRESH = 0.7
# Proposals with a side smaller than this (network input pixels) are dropped.
_C.MODEL.RPN.MIN_SIZE = 0
# With FPN: proposals kept after merging all levels (per batch or per image, see below).
_C.MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN = 2000
_C.MODEL.RPN.FPN_POST_NMS_TOP_N_TEST = 2000
# True (the original's default): FPN_POST_NMS_TOP_N_TRAIN counts over the whole per-GPU batch.
_C.MODEL.RPN.FPN_POST_NMS_PER_BATCH = True
_C.MODEL.RPN.RPN_HEAD = "SingleConvRPNHead"

# ---------------------------------------------------------------------------- ROI heads
_C.MODEL.ROI_HEADS = CN()
_C.MODEL.ROI_HEADS.USE_FPN = False
_C.MODEL.ROI_HEADS.FG_IOU_THRESHOLD = 0.5
_C.MODEL.ROI_HEADS.BG_IOU_THRESHOLD = 0.5
# Box regression target weights (wx, wy, ww, wh).
_C.MODEL.ROI_HEADS.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
# Inference: minimum class score, per-class NMS threshold, detections kept per image.
_C.MODEL.ROI_HEADS.SCORE_THRESH = 0.05
_C.MODEL.ROI_HEADS.NMS = 0.5
_C.MODEL.ROI_HEADS.DETECTIONS_PER_IMG = 100

_C.MODEL.ROI_BOX_HEAD = CN()
_C.MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR = "ResNet50Conv5ROIFeatureExtractor"
_C.MODEL.ROI_BOX_HEAD.PREDICTOR = "FastRCNNPredictor"
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
# 0 means adaptive: ceil(roi_size / POOLER_RESOLUTION) samples per bin.
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_BOX_HEAD.POOLER_SCALES = (1.0 / 16,)
# Number of classes including the background.
_C.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 81
_C.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM = 1024
_C.MODEL.ROI_BOX_HEAD.USE_GN = False
_C.MODEL.ROI_BOX_HEAD.DILATION = 1
_C.MODEL.ROI_BOX_HEAD.CONV_HEAD_DIM = 256
_C.MODEL.ROI_BOX_HEAD.NUM_STACKED_CONVS = 4

_C.MODEL.ROI_MASK_HEAD = CN()
_C.MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR = "ResNet50Conv5ROIFeatureExtractor"
_C.MODEL.ROI_MASK_HEAD.PREDICTOR = "MaskRCNNC4Predictor"
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_MASK_HEAD.POOLER_SCALES = (1.0 / 16,)
_C.MODEL.ROI_MASK_HEAD.MLP_HEAD_DIM = 1024
_C.MODEL.ROI_MASK_HEAD.CONV_LAYERS = (256, 256, 256, 256)
# Side of the predicted (and target) square mask.
_C.MODEL.ROI_MASK_HEAD.RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR = True
# Paste masks into the image inside the model (otherwise the evaluator/demo does it).
_C.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS = False
_C.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS_THRESHOLD = 0.5
_C.MODEL.ROI_MASK_HEAD.DILATION = 1
_C.MODEL.ROI_MASK_HEAD.USE_GN = False

_C.MODEL.ROI_KEYPOINT_HEAD = CN()
_C.MODEL.ROI_KEYPOINT_HEAD.FEATURE_EXTRACTOR = "KeypointRCNNFeatureExtractor"
_C.MODEL.ROI_KEYPOINT_HEAD.PREDICTOR = "KeypointRCNNPredictor"
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_SCALES = (1.0 / 16,)
_C.MODEL.ROI_KEYPOINT_HEAD.MLP_HEAD_DIM = 1024
_C.MODEL.ROI_KEYPOINT_HEAD.CONV_LAYERS = tuple(512 for _ in range(8))
_C.MODEL.ROI_KEYPOINT_HEAD.RESOLUTION = 14
_C.MODEL.ROI_KEYPOINT_HEAD.NUM_CLASSES = 17
_C.MODEL.ROI_KEYPOINT_HEAD.SHARE_BOX_FEATURE_EXTRACTOR = True

# ---------------------------------------------------------------------------- ResNe(X)t
_C.MODEL.RESNETS = CN()
# 1 = ResNet, > 1 = ResNeXt (e.g. 32 groups of WIDTH_PER_GROUP 8 for X-101-32x8d).
_C.MODEL.RESNETS.NUM_GROUPS = 1
_C.MODEL.RESNETS.WIDTH_PER_GROUP = 64
# Stride in the 1x1 conv of a bottleneck (MSRA weights) instead of the 3x3 (FAIR/torchvision).
_C.MODEL.RESNETS.STRIDE_IN_1X1 = True
_C.MODEL.RESNETS.TRANS_FUNC = "BottleneckWithFixedBatchNorm"
_C.MODEL.RESNETS.STEM_FUNC = "StemWithFixedBatchNorm"
_C.MODEL.RESNETS.RES5_DILATION = 1
_C.MODEL.RESNETS.BACKBONE_OUT_CHANNELS = 256 * 4
_C.MODEL.RESNETS.RES2_OUT_CHANNELS = 256
_C.MODEL.RESNETS.STEM_OUT_CHANNELS = 64
_C.MODEL.RESNETS.STAGE_WITH_DCN = (False, False, False, False)
_C.MODEL.RESNETS.WITH_MODULATED_DCN = False
_C.MODEL.RESNETS.DEFORMABLE_GROUPS = 1

# ---------------------------------------------------------------------------- RetinaNet
_C.MODEL.RETINANET = CN()
_C.MODEL.RETINANET.NUM_CLASSES = 81
_C.MODEL.RETINANET.ANCHOR_SIZES = (32, 64, 128, 256, 512)
_C.MODEL.RETINANET.ASPECT_RATIOS = (0.5, 1.0, 2.0)
_C.MODEL.RETINANET.ANCHOR_STRIDES = (8, 16, 32, 64, 128)
_C.MODEL.RETINANET.STRADDLE_THRESH = 0
_C.MODEL.RETINANET.OCTAVE = 2.0
_C.MODEL.RETINANET.SCALES_PER_OCTAVE = 3
# P6 is computed from C5 (True) or from P5 (False).
_C.MODEL.RETINANET.USE_C5 = True
_C.MODEL.RETINANET.NUM_CONVS = 4
# The original divides the regression loss by this (docs/CONVENTIONS.md#loss-normalisations).
_C.MODEL.RETINANET.BBOX_REG_WEIGHT = 4.0
_C.MODEL.RETINANET.BBOX_REG_BETA = 0.11
_C.MODEL.RETINANET.PRE_NMS_TOP_N = 1000
_C.MODEL.RETINANET.FG_IOU_THRESHOLD = 0.5
_C.MODEL.RETINANET.BG_IOU_THRESHOLD = 0.4
_C.MODEL.RETINANET.LOSS_ALPHA = 0.25
_C.MODEL.RETINANET.LOSS_GAMMA = 2.0
_C.MODEL.RETINANET.PRIOR_PROB = 0.01
_C.MODEL.RETINANET.INFERENCE_TH = 0.05
_C.MODEL.RETINANET.NMS_TH = 0.4

# ---------------------------------------------------------------------------- FBNet
_C.MODEL.FBNET = CN()
_C.MODEL.FBNET.ARCH = "default"
_C.MODEL.FBNET.ARCH_DEF = ""
_C.MODEL.FBNET.BN_TYPE = "bn"
_C.MODEL.FBNET.SCALE_FACTOR = 1.0
_C.MODEL.FBNET.WIDTH_DIVISOR = 1
_C.MODEL.FBNET.DW_CONV_SKIP_BN = True
_C.MODEL.FBNET.DW_CONV_SKIP_RELU = True
_C.MODEL.FBNET.DET_HEAD_LAST_SCALE = 1.0
_C.MODEL.FBNET.DET_HEAD_BLOCKS = []
_C.MODEL.FBNET.DET_HEAD_STRIDE = 0
_C.MODEL.FBNET.KPTS_HEAD_LAST_SCALE = 0.0
_C.MODEL.FBNET.KPTS_HEAD_BLOCKS = []
_C.MODEL.FBNET.KPTS_HEAD_STRIDE = 0
_C.MODEL.FBNET.MASK_HEAD_LAST_SCALE = 0.0
_C.MODEL.FBNET.MASK_HEAD_BLOCKS = []
_C.MODEL.FBNET.MASK_HEAD_STRIDE = 0
_C.MODEL.FBNET.RPN_HEAD_BLOCKS = 0
_C.MODEL.FBNET.RPN_BN_TYPE = ""

# ---------------------------------------------------------------------------- solver
_C.SOLVER = CN()
_C.SOLVER.MAX_ITER = 40000
_C.SOLVER.BASE_LR = 0.001
# Biases get BASE_LR * BIAS_LR_FACTOR and WEIGHT_DECAY_BIAS.
_C.SOLVER.BIAS_LR_FACTOR = 2
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.WEIGHT_DECAY = 0.0005
_C.SOLVER.WEIGHT_DECAY_BIAS = 0
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = (30000,)
_C.SOLVER.WARMUP_FACTOR = 1.0 / 3
_C.SOLVER.WARMUP_ITERS = 500
_C.SOLVER.WARMUP_METHOD = "linear"
_C.SOLVER.CHECKPOINT_PERIOD = 2500
# Run validation every TEST_PERIOD iterations (0 = never).
_C.SOLVER.TEST_PERIOD = 0
# Images per batch over ALL processes (divided by the world size).
_C.SOLVER.IMS_PER_BATCH = 16
# (added) Sum the gradients of this many batches before each optimizer step; one "iteration" is one
# optimizer step (so MAX_ITER, STEPS and the periods keep their meaning), and the effective batch is
# IMS_PER_BATCH * ACCUMULATE_GRAD_ITERS images.
_C.SOLVER.ACCUMULATE_GRAD_ITERS = 1
# (added) Clip the total gradient norm to this value before each step (0 = no clipping).
_C.SOLVER.CLIP_GRAD_NORM = 0.0
# (added) Log (and write metrics.json lines) every LOG_PERIOD iterations (the original: 20).
_C.SOLVER.LOG_PERIOD = 20
# (added) Stop training (before the step is applied) when the total loss exceeds this multiple of the
# run's reference loss (the median of its first 20 batches), as well as on NaN/inf losses. A checkpoint
# becomes OUTPUT_DIR/last_checkpoint only once the next loss computed with its weights passed this
# check, so rerunning a stopped run resumes from healthy weights. 0 = stop on NaN/inf losses only.
_C.SOLVER.DIVERGENCE_RATIO = 100.0
# (added) DistributedDataParallel of multi-process training (engine/distributed_model.py).
_C.SOLVER.DDP = CN()
# Gradients are views into the all-reduce buckets: saves a copy of every gradient per iteration and
# their memory. False: the original's separate gradient tensors.
_C.SOLVER.DDP.GRADIENT_AS_BUCKET_VIEW = True
# The same parameters get gradients in every iteration (true for the detectors here, also without
# positive proposals), so DDP checks that once instead of per iteration. Turn off for a model that
# skips parameters in some iterations (and set FIND_UNUSED_PARAMETERS). Off by itself when
# SOLVER.ACCUMULATE_GRAD_ITERS > 1 (torch's static graph cannot start under no_sync()).
_C.SOLVER.DDP.STATIC_GRAPH = True
# Search every iteration's graph for parameters without gradients (slower); only with STATIC_GRAPH off.
_C.SOLVER.DDP.FIND_UNUSED_PARAMETERS = False
# All-reduce the gradients in 16 bits: "none", "fp16" or "bf16" (halves the bytes sent, rounds the
# gradients; fp16 flushes values below ~6e-8 to zero). For slow links between machines.
_C.SOLVER.DDP.GRADIENT_COMPRESSION = "none"
# Size of a gradient bucket in MiB (torch's default, 25): one all-reduce per bucket, overlapping backward.
_C.SOLVER.DDP.BUCKET_CAP_MB = 25

# ---------------------------------------------------------------------------- test
_C.TEST = CN()
# List of [task, metric, mean, std] checked after evaluation.
_C.TEST.EXPECTED_RESULTS = []
_C.TEST.EXPECTED_RESULTS_SIGMA_TOL = 4
# Images per batch over ALL processes.
_C.TEST.IMS_PER_BATCH = 8
# Used by RetinaNet only (the ROI heads use MODEL.ROI_HEADS.DETECTIONS_PER_IMG).
_C.TEST.DETECTIONS_PER_IMG = 100
# (added) Also compute and log the AP of every category (COCO evaluation).
_C.TEST.PER_CLASS_AP = False
# (added) COCOeval implementation of the COCO evaluation: "faster_coco_eval" (C++, several times
# faster) or "pycocotools" (the original's); both give the same numbers (docs/EVALUATION.md).
_C.TEST.COCO_EVAL_BACKEND = "faster_coco_eval"

_C.TEST.BBOX_AUG = CN()
_C.TEST.BBOX_AUG.ENABLED = False
_C.TEST.BBOX_AUG.H_FLIP = False
_C.TEST.BBOX_AUG.SCALES = ()
_C.TEST.BBOX_AUG.MAX_SIZE = 4000
_C.TEST.BBOX_AUG.SCALE_H_FLIP = False

# ---------------------------------------------------------------------------- misc
_C.OUTPUT_DIR = "."
_C.PATHS_CATALOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paths_catalog.py")
# Training/inference precision: "float32", "float16" (autocast + GradScaler; the original used
# apex O1) or "bfloat16" (added value; autocast, works on CPU).
_C.DTYPE = "float32"
# (added) Seed of the random generators (weight initialisation, box sampling, data augmentation), so
# that a training command gives the same result every time; process k of a distributed run draws from
# SEED + k after the model is built. -1: a different seed every run (the original's behaviour).
_C.SEED = 0
# (added) Seconds a process of a distributed run waits in a collective (gradient all-reduce, loss
# averaging, barriers) for the others before it fails, followed by a message naming the ranks that do
# not answer (stopped, hung or dead). 0 = automatic: 300 on CPU (gloo), torch's default for NCCL. The
# others waiting while the main process evaluates are not cut by it as long as that process answers.
_C.DIST_TIMEOUT = 0
# Accepted for compatibility with the original (it configured apex logging).
_C.AMP_VERBOSE = False

# Keys this project adds to the original's set (documented in README.md).
ADDED_KEYS: tuple = (
    "DATASETS.ON_BAD_INPUT",
    "DATASETS.REGISTER_COCO",
    "DIST_TIMEOUT",
    "MODEL.COMPILE.BACKEND",
    "MODEL.COMPILE.DYNAMIC",
    "MODEL.COMPILE.ENABLED",
    "MODEL.COMPILE.MODE",
    "SEED",
    "SOLVER.ACCUMULATE_GRAD_ITERS",
    "SOLVER.CLIP_GRAD_NORM",
    "SOLVER.DDP.BUCKET_CAP_MB",
    "SOLVER.DDP.FIND_UNUSED_PARAMETERS",
    "SOLVER.DDP.GRADIENT_AS_BUCKET_VIEW",
    "SOLVER.DDP.GRADIENT_COMPRESSION",
    "SOLVER.DDP.STATIC_GRAPH",
    "SOLVER.DIVERGENCE_RATIO",
    "SOLVER.LOG_PERIOD",
    "TEST.COCO_EVAL_BACKEND",
    "TEST.PER_CLASS_AP",
)
