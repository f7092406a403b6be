"""Start-up checks of config VALUES (the types are checked when the config is merged).

`check_config(cfg)` raises ConfigValueError (a ValueError) naming the key, its value and what is
allowed, before any model or data is built: a nonsense value (a zero image size, an unknown device,
anchor settings that do not match the FPN levels...) otherwise fails deep in the model, hangs, or
trains silently wrong. tools/ call it through engine/cli.load_config; library users meet the
model and data parts through build_detection_model and make_data_loader.
"""

import logging
import os
from numbers import Number
from typing import Any, Callable, List, Sequence

import torch

from .config_file import ConfigValueError

logger = logging.getLogger(__name__)

# Feature levels of the FPN backbones (registered by CONV_BODY suffix): the RPN sees P2-P6 (ResNet
# FPN) or P3-P7 (RetinaNet), the ROI poolers P2-P5.
FPN_RPN_LEVELS = 5
FPN_POOLER_LEVELS = 4
DEVICE_TYPES = ("cpu", "cuda")
WARMUP_METHODS = ("constant", "linear")


def _fail(key: str, value: Any, allowed: str) -> ConfigValueError:
    return ConfigValueError(f"config key {key} is {value!r}; {allowed}")


def _seq(value: Any) -> List[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise _fail(key, value, allowed)


def _positive_ints(key: str, value: Any, nonempty: bool = True) -> None:
    items = _seq(value)
    _require(not nonempty or len(items) > 0, key, value, "it must not be empty")
    _require(all(isinstance(v, Number) and v > 0 for v in items), key, value, "every entry must be > 0")


def _in_range(key: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    ok = isinstance(value, Number) and (value > low if low_open else value >= low) and value <= high
    bracket = "(" if low_open else "["
    _require(ok, key, value, f"it must be in {bracket}{low:g}, {high:g}]")


def _at_least(key: str, value: Any, low: float, why: str = "") -> None:
    _require(isinstance(value, Number) and value >= low, key, value, f"it must be >= {low:g}{why}")


def check_input(cfg: Any) -> None:
    """INPUT.* and DATALOADER.*: image sizes, normalisation, augmentation, loading."""
    i = cfg.INPUT
    _positive_ints("INPUT.MIN_SIZE_TRAIN", i.MIN_SIZE_TRAIN)
    _positive_ints("INPUT.MIN_SIZE_TEST", i.MIN_SIZE_TEST)
    for split in ("TRAIN", "TEST"):
        max_key, max_size = f"INPUT.MAX_SIZE_{split}", getattr(i, f"MAX_SIZE_{split}")
        largest_min = max(_seq(getattr(i, f"MIN_SIZE_{split}")))
        _require(
            isinstance(max_size, Number) and max_size >= largest_min,
            max_key,
            max_size,
            f"it caps the longer image side and must be >= INPUT.MIN_SIZE_{split} ({largest_min})",
        )
    for key in ("PIXEL_MEAN", "PIXEL_STD"):
        value = getattr(i, key)
        _require(len(_seq(value)) == 3, f"INPUT.{key}", value, "give 3 values, one per colour channel")
    _require(all(s > 0 for s in i.PIXEL_STD), "INPUT.PIXEL_STD", i.PIXEL_STD, "every value must be > 0")
    for key in ("HORIZONTAL_FLIP_PROB_TRAIN", "VERTICAL_FLIP_PROB_TRAIN"):
        _in_range(f"INPUT.{key}", getattr(i, key), 0.0, 1.0)
    for key in ("BRIGHTNESS", "CONTRAST", "SATURATION"):
        _at_least(f"INPUT.{key}", getattr(i, key), 0.0, " (0 = no jitter)")
    _in_range("INPUT.HUE", i.HUE, 0.0, 0.5)
    _at_least("DATALOADER.NUM_WORKERS", cfg.DATALOADER.NUM_WORKERS, 0, " (0 = load in the main process)")
    _at_least("DATALOADER.SIZE_DIVISIBILITY", cfg.DATALOADER.SIZE_DIVISIBILITY, 0, " (0 = no padding)")


def _check_anchors(cfg: Any) -> None:
    body, rpn = cfg.MODEL.BACKBONE.CONV_BODY, cfg.MODEL.RPN
    if cfg.MODEL.RETINANET_ON:
        r = cfg.MODEL.RETINANET
        _positive_ints("MODEL.RETINANET.ANCHOR_SIZES", r.ANCHOR_SIZES)
        _positive_ints("MODEL.RETINANET.ASPECT_RATIOS", r.ASPECT_RATIOS)
        _positive_ints("MODEL.RETINANET.ANCHOR_STRIDES", r.ANCHOR_STRIDES)
        _require(
            len(r.ANCHOR_STRIDES) == FPN_RPN_LEVELS,
            "MODEL.RETINANET.ANCHOR_STRIDES",
            r.ANCHOR_STRIDES,
            f"give one stride per FPN level ({FPN_RPN_LEVELS}: P3-P7)",
        )
        _require(
            len(r.ANCHOR_SIZES) == len(r.ANCHOR_STRIDES),
            "MODEL.RETINANET.ANCHOR_SIZES",
            r.ANCHOR_SIZES,
            f"give one size per ANCHOR_STRIDES entry ({len(r.ANCHOR_STRIDES)})",
        )
        return
    _positive_ints("MODEL.RPN.ANCHOR_SIZES", rpn.ANCHOR_SIZES)
    _positive_ints("MODEL.RPN.ASPECT_RATIOS", rpn.ASPECT_RATIOS)
    _positive_ints("MODEL.RPN.ANCHOR_STRIDE", rpn.ANCHOR_STRIDE)
    fpn = body.endswith("-FPN")
    _require(
        rpn.USE_FPN == fpn, "MODEL.RPN.USE_FPN", rpn.USE_FPN, f"it must be {fpn} for MODEL.BACKBONE.CONV_BODY {body!r}"
    )
    if fpn:
        _require(
            len(rpn.ANCHOR_STRIDE) == FPN_RPN_LEVELS,
            "MODEL.RPN.ANCHOR_STRIDE",
            rpn.ANCHOR_STRIDE,
            f"{body} has {FPN_RPN_LEVELS} feature levels (P2-P6): give one stride per level, e.g. (4, 8, 16, 32, 64)",
        )
        _require(
            len(rpn.ANCHOR_SIZES) == FPN_RPN_LEVELS,
            "MODEL.RPN.ANCHOR_SIZES",
            rpn.ANCHOR_SIZES,
            f"{body} has {FPN_RPN_LEVELS} feature levels (P2-P6): give one size per level, "
            "e.g. (32, 64, 128, 256, 512)",
        )
    else:
        _require(
            len(rpn.ANCHOR_STRIDE) == 1,
            "MODEL.RPN.ANCHOR_STRIDE",
            rpn.ANCHOR_STRIDE,
            f"{body} has one feature map: give one stride, e.g. (16,)",
        )


def _check_heads(cfg: Any) -> None:
    m, fpn = cfg.MODEL, cfg.MODEL.BACKBONE.CONV_BODY.endswith("-FPN")
    if m.RETINANET_ON:
        _at_least("MODEL.RETINANET.NUM_CLASSES", m.RETINANET.NUM_CLASSES, 2, " (categories + background)")
        return
    for key in ("FG_IOU_THRESHOLD", "BG_IOU_THRESHOLD", "NMS_THRESH"):
        _in_range(f"MODEL.RPN.{key}", getattr(m.RPN, key), 0.0, 1.0)
    _require(
        m.RPN.BG_IOU_THRESHOLD <= m.RPN.FG_IOU_THRESHOLD,
        "MODEL.RPN.BG_IOU_THRESHOLD",
        m.RPN.BG_IOU_THRESHOLD,
        f"it must be <= MODEL.RPN.FG_IOU_THRESHOLD ({m.RPN.FG_IOU_THRESHOLD})",
    )
    _in_range("MODEL.RPN.POSITIVE_FRACTION", m.RPN.POSITIVE_FRACTION, 0.0, 1.0, low_open=True)
    for key in (
        "BATCH_SIZE_PER_IMAGE",
        "PRE_NMS_TOP_N_TRAIN",
        "PRE_NMS_TOP_N_TEST",
        "POST_NMS_TOP_N_TRAIN",
        "POST_NMS_TOP_N_TEST",
        "FPN_POST_NMS_TOP_N_TRAIN",
        "FPN_POST_NMS_TOP_N_TEST",
    ):
        _at_least(f"MODEL.RPN.{key}", getattr(m.RPN, key), 1)
    if m.RPN_ONLY:
        return
    _at_least(
        "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
        m.ROI_BOX_HEAD.NUM_CLASSES,
        2,
        " (categories + background: 2 for one category)",
    )
    h = m.ROI_HEADS
    for key in ("FG_IOU_THRESHOLD", "BG_IOU_THRESHOLD", "NMS", "SCORE_THRESH"):
        _in_range(f"MODEL.ROI_HEADS.{key}", getattr(h, key), 0.0, 1.0)
    _require(
        h.BG_IOU_THRESHOLD <= h.FG_IOU_THRESHOLD,
        "MODEL.ROI_HEADS.BG_IOU_THRESHOLD",
        h.BG_IOU_THRESHOLD,
        f"it must be <= MODEL.ROI_HEADS.FG_IOU_THRESHOLD ({h.FG_IOU_THRESHOLD})",
    )
    _in_range("MODEL.ROI_HEADS.POSITIVE_FRACTION", h.POSITIVE_FRACTION, 0.0, 1.0, low_open=True)
    _at_least("MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", h.BATCH_SIZE_PER_IMAGE, 1)
    _at_least("MODEL.ROI_HEADS.DETECTIONS_PER_IMG", h.DETECTIONS_PER_IMG, 1)
    _require(
        h.USE_FPN == fpn,
        "MODEL.ROI_HEADS.USE_FPN",
        h.USE_FPN,
        f"it must be {fpn} for MODEL.BACKBONE.CONV_BODY {cfg.MODEL.BACKBONE.CONV_BODY!r}",
    )
    heads = (
        ["ROI_BOX_HEAD"] + (["ROI_MASK_HEAD"] if m.MASK_ON else []) + (["ROI_KEYPOINT_HEAD"] if m.KEYPOINT_ON else [])
    )
    levels = FPN_POOLER_LEVELS if fpn else 1
    for head in heads:
        node = getattr(m, head)
        _positive_ints(f"MODEL.{head}.POOLER_SCALES", node.POOLER_SCALES)
        _require(
            len(node.POOLER_SCALES) == levels,
            f"MODEL.{head}.POOLER_SCALES",
            node.POOLER_SCALES,
            f"give one scale per pooled feature level ({levels}"
            + (": P2-P5, e.g. (0.25, 0.125, 0.0625, 0.03125))" if fpn else ", e.g. (0.0625,))"),
        )
        _at_least(f"MODEL.{head}.POOLER_RESOLUTION", node.POOLER_RESOLUTION, 1)
        _at_least(f"MODEL.{head}.POOLER_SAMPLING_RATIO", node.POOLER_SAMPLING_RATIO, 0, " (0 = adaptive)")
    if m.KEYPOINT_ON:
        _at_least(
            "MODEL.ROI_KEYPOINT_HEAD.NUM_CLASSES", m.ROI_KEYPOINT_HEAD.NUM_CLASSES, 1, " (keypoints per instance)"
        )


def check_runtime(cfg: Any) -> None:
    """MODEL.DEVICE and DTYPE."""
    device = cfg.MODEL.DEVICE
    allowed = "use cpu, cuda or cuda:N"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise _fail("MODEL.DEVICE", device, allowed) from None
    _require(parsed.type in DEVICE_TYPES, "MODEL.DEVICE", device, allowed)
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"MODEL.DEVICE is {device!r} but no GPU is available: add `MODEL.DEVICE cpu` to the command "
                f"line (and use a CPU-sized config, e.g. configs/cpu/)."
            )
        count = torch.cuda.device_count()
        _require(
            parsed.index is None or parsed.index < count,
            "MODEL.DEVICE",
            device,
            f"this machine has {count} GPU(s): use cuda:0 .. cuda:{count - 1}",
        )
    from ..engine.precision import AUTOCAST_DTYPES

    hint = ' ("half" is float16)' if cfg.DTYPE == "half" else ""
    _require(cfg.DTYPE in AUTOCAST_DTYPES, "DTYPE", cfg.DTYPE, f"use one of {sorted(AUTOCAST_DTYPES)}{hint}")


def check_model(cfg: Any) -> None:
    """MODEL.* (anchors, heads, classes) and DTYPE / MODEL.DEVICE: what build_detection_model reads."""
    _check_anchors(cfg)
    _check_heads(cfg)


def check_solver(cfg: Any) -> None:
    """SOLVER.* and TEST.*: schedule, batch sizes, periods."""
    s = cfg.SOLVER
    _at_least("SOLVER.MAX_ITER", s.MAX_ITER, 1)
    _require(isinstance(s.BASE_LR, Number) and s.BASE_LR > 0, "SOLVER.BASE_LR", s.BASE_LR, "it must be > 0")
    _at_least("SOLVER.BIAS_LR_FACTOR", s.BIAS_LR_FACTOR, 0)
    _in_range("SOLVER.MOMENTUM", s.MOMENTUM, 0.0, 1.0)
    _at_least("SOLVER.WEIGHT_DECAY", s.WEIGHT_DECAY, 0)
    _at_least("SOLVER.WEIGHT_DECAY_BIAS", s.WEIGHT_DECAY_BIAS, 0)
    _require(s.GAMMA > 0, "SOLVER.GAMMA", s.GAMMA, "it must be > 0 (the LR is multiplied by it at each step)")
    steps = list(s.STEPS)
    _require(
        all(isinstance(v, Number) and v > 0 for v in steps),
        "SOLVER.STEPS",
        s.STEPS,
        "every step must be a positive iteration",
    )
    _require(all(a < b for a, b in zip(steps, steps[1:])), "SOLVER.STEPS", s.STEPS, "the iterations must be increasing")
    if steps and steps[-1] > s.MAX_ITER:
        # Not an error: a short trial run (SOLVER.MAX_ITER 2 on a full config) is common and harmless.
        logger.warning(
            "SOLVER.STEPS %s go beyond SOLVER.MAX_ITER (%d): the learning rate decays at %s only",
            tuple(steps),
            s.MAX_ITER,
            tuple(v for v in steps if v <= s.MAX_ITER) or "no step",
        )
    _require(
        s.WARMUP_METHOD in WARMUP_METHODS, "SOLVER.WARMUP_METHOD", s.WARMUP_METHOD, f"use one of {list(WARMUP_METHODS)}"
    )
    _in_range("SOLVER.WARMUP_FACTOR", s.WARMUP_FACTOR, 0.0, 1.0, low_open=True)
    _at_least("SOLVER.WARMUP_ITERS", s.WARMUP_ITERS, 0, " (0 = no warm-up)")
    _at_least("SOLVER.CHECKPOINT_PERIOD", s.CHECKPOINT_PERIOD, 0, " (0 = only the final checkpoint)")
    _at_least("SOLVER.TEST_PERIOD", s.TEST_PERIOD, 0, " (0 = never)")
    _at_least("SOLVER.LOG_PERIOD", s.LOG_PERIOD, 0)
    _at_least("SOLVER.IMS_PER_BATCH", s.IMS_PER_BATCH, 1)
    _at_least("SOLVER.ACCUMULATE_GRAD_ITERS", s.ACCUMULATE_GRAD_ITERS, 1)
    _at_least("SOLVER.CLIP_GRAD_NORM", s.CLIP_GRAD_NORM, 0, " (0 = no clipping)")
    _at_least("SOLVER.DIVERGENCE_RATIO", s.DIVERGENCE_RATIO, 0, " (0 = stop on NaN/inf losses only)")
    _at_least("TEST.IMS_PER_BATCH", cfg.TEST.IMS_PER_BATCH, 1)
    _at_least("TEST.DETECTIONS_PER_IMG", cfg.TEST.DETECTIONS_PER_IMG, 1)
    backends = ("faster_coco_eval", "pycocotools")  # data/datasets/evaluation/coco/backends.py
    _require(
        cfg.TEST.COCO_EVAL_BACKEND in backends,
        "TEST.COCO_EVAL_BACKEND",
        cfg.TEST.COCO_EVAL_BACKEND,
        f"use one of {list(backends)}",
    )
    check_ddp(cfg)


def check_ddp(cfg: Any) -> None:
    """SOLVER.DDP.*: the DistributedDataParallel settings of multi-process training."""
    from ..engine.distributed_model import COMPRESSION_HOOKS

    d = cfg.SOLVER.DDP
    _require(
        d.GRADIENT_COMPRESSION in COMPRESSION_HOOKS,
        "SOLVER.DDP.GRADIENT_COMPRESSION",
        d.GRADIENT_COMPRESSION,
        f"use one of {list(COMPRESSION_HOOKS)}",
    )
    _require(
        isinstance(d.BUCKET_CAP_MB, Number) and d.BUCKET_CAP_MB > 0,
        "SOLVER.DDP.BUCKET_CAP_MB",
        d.BUCKET_CAP_MB,
        "it must be > 0 (MiB of gradients per all-reduce; torch's default is 25)",
    )
    # Both on contradict each other: a static graph says the set of parameters with gradients never
    # changes (DDP finds the unused ones once by itself), searching every iteration says it does.
    _require(
        not (d.STATIC_GRAPH and d.FIND_UNUSED_PARAMETERS),
        "SOLVER.DDP.FIND_UNUSED_PARAMETERS",
        d.FIND_UNUSED_PARAMETERS,
        "it needs SOLVER.DDP.STATIC_GRAPH False (a static graph finds unused "
        "parameters once by itself; set one of the two False)",
    )


def check_compile(cfg: Any) -> None:
    """MODEL.COMPILE.* (torch.compile of the dense parts, engine/compile.py)."""
    from ..engine.compile import DYNAMIC, MODES

    c = cfg.MODEL.COMPILE
    _require(c.MODE in MODES, "MODEL.COMPILE.MODE", c.MODE, f"use one of {list(MODES)}")
    _require(c.DYNAMIC in DYNAMIC, "MODEL.COMPILE.DYNAMIC", c.DYNAMIC, f"use one of {list(DYNAMIC)}")
    if not c.ENABLED:
        return
    import torch._dynamo  # only when compiling: importing it takes a while

    backends = torch._dynamo.list_backends(exclude_tags=())
    _require(c.BACKEND in backends, "MODEL.COMPILE.BACKEND", c.BACKEND, f"use one of {backends}")
    _require(
        c.MODE == "default" or c.BACKEND == "inductor",
        "MODEL.COMPILE.MODE",
        c.MODE,
        f'modes are the inductor backend\'s: use "default" with MODEL.COMPILE.BACKEND {c.BACKEND!r}',
    )
    if c.MODE == "reduce-overhead" and torch.device(cfg.MODEL.DEVICE).type != "cuda":
        # Not an error: inductor skips CUDA graphs off the GPU, so it runs like "default".
        logger.warning(
            "MODEL.COMPILE.MODE reduce-overhead records CUDA graphs, which MODEL.DEVICE %s does not "
            'use: it runs like "default"',
            cfg.MODEL.DEVICE,
        )


def check_output_dir(cfg: Any) -> None:
    """OUTPUT_DIR must be a folder (or creatable as one) this process can write to."""
    path = cfg.OUTPUT_DIR
    if not path:
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise _fail("OUTPUT_DIR", path, "it is an existing file: give a folder")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise _fail("OUTPUT_DIR", path, f"{existing} is a file, so the folder cannot be created: give another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _fail("OUTPUT_DIR", path, f"{existing} is not writable: give a folder you can write to")


CHECKS: Sequence[Callable[[Any], None]] = (
    check_runtime,
    check_input,
    check_model,
    check_solver,
    check_compile,
    check_output_dir,
)


def check_config(cfg: Any) -> None:
    """Every value check (see the module docstring); ConfigValueError on the first bad value."""
    for check in CHECKS:
        check(cfg)
