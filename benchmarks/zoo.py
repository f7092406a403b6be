"""The original's model-zoo table, measured: the 9 seed configs and torchvision's 3 R-50-FPN models.

    python benchmarks/zoo.py                      # full size: every model, float32 (+ bfloat16 on a GPU)
    python benchmarks/zoo.py --compile --budget-s 420          # on a GPU: + the compiled column
    python benchmarks/zoo.py --tiny               # 128 px images, 1 repeat: a smoke run of every path
    python benchmarks/zoo.py --models e2e_mask_rcnn_R_50_FPN_1x torchvision_maskrcnn_resnet50_fpn

For each model, in the original MODEL_ZOO's columns:
* im/gpu: the original's SOLVER.IMS_PER_BATCH over its 8 GPUs (2, or 1 for R-50-C4 and X-101).
* train s/it: one iteration (forward, backward, SGD step) on that many synthetic images with boxes,
  labels and polygon masks (persons with 17 keypoints for Keypoint R-CNN); median after warm-up.
  The step runs with learning rate 0, so that random weights stay as they are (they diverge at any
  useful rate) and every iteration, and the inference after it, has the same workload.
* train mem GB: torch.cuda.max_memory_allocated on a GPU (as the original's trainer logged it);
  on a CPU the growth of the peak resident set over the model's construction and its training steps.
* inference s/im: one image per forward, as the original tested (1 image per GPU), without the
  mask / keypoint branch, whose time is "+ mask/kp s/im": the branch inside the forward (RoI
  features to masks / keypoints), plus pasting the masks into the image. The two add up to the whole
  per-image time, like the original's "0.12966 + 0.034".
Beside them, the numbers the original published for the same config on a V100 (PUBLISHED below).

Images: synthetic "shapes" (or "persons") drawn at 480x640 and resized to 800x1067 (COCO's usual
size after the 800 / 1333 resize); --tiny draws 96x128 and resizes to 128x171. Both libraries see the
same pixels and targets (polygons for ours, the same masks rasterised for torchvision) and run with
random weights (seed 0), score threshold 0 so that every image yields 100 detections (as a trained
model does on COCO), 1000 proposals per image at test time. torchvision's models are built as their
*_resnet50_fpn builders make them around pretrained weights (benchmarks/train.py: torchvision_r50).

Columns: float32, bfloat16 (autocast around the forward, as cfg.DTYPE does) and, with --compile,
float32 with maskrcnn_benchmark.engine.compile.compile_detector applied to our models (torchvision's
are not compiled). A column that cannot run reads "n/a (reason)". --budget-s bounds the whole run:
every measurement gets its warm-up and one timed repeat, further repeats only while its share of the
remaining time lasts, and a measurement that would not fit in what is left (judged by the same
model's earlier columns and the column's previous model) reads "skipped (budget)".
"""

import argparse
import ctypes
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train as bench  # noqa: E402  (benchmarks/train.py: synthetic batch, builders, training step)

from maskrcnn_benchmark.engine.precision import autocast, resolve_autocast_dtype  # noqa: E402
from maskrcnn_benchmark.modeling.detector import build_detection_model  # noqa: E402
from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker  # noqa: E402


@dataclass(frozen=True)
class Published:
    """One row of the original's table: 8 x V100, PyTorch 1.0.0a0, CUDA 9.2, cuDNN 7.1."""

    ims_per_gpu: int
    train_mem_gb: float
    train_s_per_iter: float
    inference_s_per_image: float
    mask_s_per_image: Optional[float] = None  # the "+ 0.034" part; None where none was published


# From the original maskrcnn-benchmark's MODEL_ZOO.md ("End-to-end Faster and Mask R-CNN baselines"
# and the person keypoint table; github.com/facebookresearch/maskrcnn-benchmark). Not measured here.
PUBLISHED: Dict[str, Published] = {
    "e2e_faster_rcnn_R_50_C4_1x": Published(1, 5.8, 0.4036, 0.17130),
    "e2e_faster_rcnn_R_50_FPN_1x": Published(2, 4.4, 0.3530, 0.12580),
    "e2e_faster_rcnn_R_101_FPN_1x": Published(2, 7.1, 0.4591, 0.143149),
    "e2e_faster_rcnn_X_101_32x8d_FPN_1x": Published(1, 7.6, 0.7007, 0.209965),
    "e2e_mask_rcnn_R_50_C4_1x": Published(1, 5.8, 0.4520, 0.17796, 0.028),
    "e2e_mask_rcnn_R_50_FPN_1x": Published(2, 5.2, 0.4536, 0.12966, 0.034),
    "e2e_mask_rcnn_R_101_FPN_1x": Published(2, 7.9, 0.5665, 0.15384, 0.034),
    "e2e_mask_rcnn_X_101_32x8d_FPN_1x": Published(1, 7.8, 0.7562, 0.21739, 0.034),
    "e2e_keypoint_rcnn_R_50_FPN_1x": Published(2, 5.7, 0.3771, 0.10941),
}


@dataclass(frozen=True)
class Model:
    """One row: ours (a config) or torchvision's (a builder kind)."""

    name: str
    label: str
    kind: str  # "faster", "mask" or "keypoint"
    config: Optional[str] = None  # ours: the config file, relative to the repository

    @property
    def is_ours(self) -> bool:
        return self.config is not None


def _ours(stem: str, label: str) -> Model:
    kind = "keypoint" if "keypoint" in stem else "mask" if "mask" in stem else "faster"
    return Model(stem, label, kind, f"configs/{stem}.yaml")


MODELS: List[Model] = [
    _ours("e2e_faster_rcnn_R_50_C4_1x", "Faster R-CNN R-50-C4"),
    _ours("e2e_faster_rcnn_R_50_FPN_1x", "Faster R-CNN R-50-FPN"),
    _ours("e2e_faster_rcnn_R_101_FPN_1x", "Faster R-CNN R-101-FPN"),
    _ours("e2e_faster_rcnn_X_101_32x8d_FPN_1x", "Faster R-CNN X-101-32x8d-FPN"),
    _ours("e2e_mask_rcnn_R_50_C4_1x", "Mask R-CNN R-50-C4"),
    _ours("e2e_mask_rcnn_R_50_FPN_1x", "Mask R-CNN R-50-FPN"),
    _ours("e2e_mask_rcnn_R_101_FPN_1x", "Mask R-CNN R-101-FPN"),
    _ours("e2e_mask_rcnn_X_101_32x8d_FPN_1x", "Mask R-CNN X-101-32x8d-FPN"),
    _ours("e2e_keypoint_rcnn_R_50_FPN_1x", "Keypoint R-CNN R-50-FPN"),
    Model("torchvision_fasterrcnn_resnet50_fpn", "torchvision Faster R-CNN R-50-FPN", "faster"),
    Model("torchvision_maskrcnn_resnet50_fpn", "torchvision Mask R-CNN R-50-FPN", "mask"),
    Model("torchvision_keypointrcnn_resnet50_fpn", "torchvision Keypoint R-CNN R-50-FPN", "keypoint"),
]
TORCHVISION_IMS_PER_GPU = 2  # as the R-50-FPN configs they stand beside
# --tiny's default rows: every code path (C4, FPN, no branch, mask, keypoint, torchvision's three)
# in about 40 s of one CPU core (all 12 rows: about 70 s); --models may still ask for any row.
TINY_MODELS = [
    "e2e_faster_rcnn_R_50_C4_1x",
    "e2e_mask_rcnn_R_50_FPN_1x",
    "e2e_keypoint_rcnn_R_50_FPN_1x",
    "torchvision_fasterrcnn_resnet50_fpn",
    "torchvision_maskrcnn_resnet50_fpn",
    "torchvision_keypointrcnn_resnet50_fpn",
]

# Image sizes: (drawn height, width), short side fed to the models.
FULL_SIZE = ((480, 640), 800)
TINY_SIZE = ((96, 128), 128)
MAX_SIZE = 1333

# --tiny keeps every architecture at its real width but samples far fewer RoIs, so that each
# model's heads (the C4 res5 head, the 512-channel keypoint convolutions) run on a handful of
# boxes: a row takes seconds on one CPU core.
TINY_COUNTS = dict(
    pre_nms_train=200, post_nms_train=64, pre_nms_test=100, post_nms_test=16, rois_per_image=16, detections=4
)
# Full size: ours keep their configs' counts (these are what the R-50-FPN configs say), torchvision's get these.
FULL_COUNTS = dict(
    pre_nms_train=2000, post_nms_train=2000, pre_nms_test=1000, post_nms_test=1000, rois_per_image=512, detections=100
)


def our_overrides(counts: Dict[str, int], tiny: bool) -> List[str]:
    """Config overrides of every run: score threshold 0 (random weights: see the module docstring),
    and in --tiny mode the smaller proposal / RoI counts."""
    overrides = ["MODEL.ROI_HEADS.SCORE_THRESH", "0.0", "MODEL.ROI_HEADS.DETECTIONS_PER_IMG", str(counts["detections"])]
    if tiny:
        overrides += [
            "MODEL.RPN.PRE_NMS_TOP_N_TRAIN",
            str(counts["pre_nms_train"]),
            "MODEL.RPN.POST_NMS_TOP_N_TRAIN",
            str(counts["post_nms_train"]),
            "MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN",
            str(counts["post_nms_train"]),
            "MODEL.RPN.PRE_NMS_TOP_N_TEST",
            str(counts["pre_nms_test"]),
            "MODEL.RPN.POST_NMS_TOP_N_TEST",
            str(counts["post_nms_test"]),
            "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST",
            str(counts["post_nms_test"]),
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
            str(counts["rois_per_image"]),
        ]
    return overrides


def torchvision_kwargs(counts: Dict[str, int], num_images: int, min_size: int) -> Dict[str, object]:
    """torchvision's settings matching our R-50-FPN configs (per image where ours count per batch)."""
    return dict(
        min_size=min_size,
        max_size=MAX_SIZE,
        rpn_pre_nms_top_n_train=counts["pre_nms_train"],
        rpn_post_nms_top_n_train=max(counts["post_nms_train"] // num_images, 1),
        rpn_pre_nms_top_n_test=counts["pre_nms_test"],
        rpn_post_nms_top_n_test=counts["post_nms_test"],
        box_batch_size_per_image=counts["rois_per_image"],
        box_score_thresh=0.0,
        box_detections_per_img=counts["detections"],
    )


# ----------------------------------------------------------------------------------------------
# Clocks and memory


class Clock:
    """Wall-clock seconds that include the device's queued work (synchronises on CUDA)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def now(self) -> float:
        self.sync()
        return time.perf_counter()


def _proc_status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M).group(1))


def _release_host_memory() -> None:
    gc.collect()
    try:  # hand freed heap pages back, so that the next model's growth is its own
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of a region: torch.cuda.max_memory_allocated on CUDA; on CPU the growth of the
    resident set's high-water mark (VmHWM, reset through /proc/self/clear_refs) over its start."""

    def __init__(self, device: torch.device):
        self.device = device
        self.base_kb = 0

    def start(self) -> None:
        _release_host_memory()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            self.base_kb = _proc_status_kb("VmRSS")
        except OSError:
            self.base_kb = -1

    def peak_gb(self) -> Optional[float]:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated() / 1e9
        if self.base_kb < 0:
            return None
        return (_proc_status_kb("VmHWM") - self.base_kb) * 1024 / 1e9


# ----------------------------------------------------------------------------------------------
# Timing the mask / keypoint branch inside a forward


class BranchTimer:
    """Seconds between a pre-hook on `start` and a forward hook on `end` (modules of one model),
    summed until reset(). The hooks run eagerly even inside a compiled model, so the split stays the
    same in the compiled column (at the price of a graph break at the branch's edges)."""

    def __init__(self, clock: Clock, start: torch.nn.Module, end: torch.nn.Module):
        self.clock = clock
        self.seconds = 0.0
        self.calls = 0
        self._t0: Optional[float] = None
        disable = getattr(torch.compiler, "disable", lambda fn: fn)
        self.handles = [
            start.register_forward_pre_hook(disable(self._enter)),
            end.register_forward_hook(disable(self._exit)),
        ]

    def _enter(self, module, inputs) -> None:
        self._t0 = self.clock.now()

    def _exit(self, module, inputs, output) -> None:
        if self._t0 is not None:
            self.seconds += self.clock.now() - self._t0
            self.calls += 1
            self._t0 = None

    def reset(self) -> None:
        self.seconds, self.calls, self._t0 = 0.0, 0, None

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class TimedCall:
    """Wraps a callable to add its seconds to `seconds` (torchvision's transform.postprocess, where
    its masks are pasted)."""

    def __init__(self, clock: Clock, fn: Callable):
        self.clock, self.fn, self.seconds = clock, fn, 0.0

    def __call__(self, *args, **kwargs):
        t0 = self.clock.now()
        out = self.fn(*args, **kwargs)
        self.seconds += self.clock.now() - t0
        return out


# ----------------------------------------------------------------------------------------------
# One measurement


@dataclass
class Cell:
    """One model in one column. Times in seconds, memory in GB; `note` says why something is missing."""

    train_s: Optional[float] = None
    train_mem_gb: Optional[float] = None
    inference_s: Optional[float] = None
    branch_s: Optional[float] = None  # mask / keypoint branch + paste, per image
    detections: Optional[int] = None  # per test image (the mask / keypoint branch's workload)
    train_repeats: int = 0
    inference_repeats: int = 0
    note: str = ""


@dataclass
class Budget:
    """The run's deadline, shared fairly among the measurements still to come."""

    seconds: float
    cells_left: int
    start: float = field(default_factory=time.perf_counter)

    def remaining(self) -> float:
        return self.seconds - (time.perf_counter() - self.start) if self.seconds > 0 else float("inf")

    def share(self) -> float:
        """Seconds the current measurement may spend on repeats beyond its first."""
        return self.remaining() / max(self.cells_left, 1)


def repeat_timed(run: Callable[[], float], warmup: int, repeats: int, share: float) -> List[float]:
    """Times of `run` (which returns its own seconds) after `warmup` untimed calls: at least one,
    at most `repeats`, and no more once another would overrun `share` seconds."""
    for _ in range(warmup):
        run()
    times: List[float] = []
    spent = 0.0
    while len(times) < max(repeats, 1):
        seconds = run()
        times.append(seconds)
        spent += seconds
        if spent + statistics.median(times) > share:
            break
    return times


def _compile(model: torch.nn.Module) -> torch.nn.Module:
    from maskrcnn_benchmark.engine.compile import compile_detector

    compiled = compile_detector(model)
    return compiled if isinstance(compiled, torch.nn.Module) else model  # in place or a wrapper


def measure(
    model_spec: Model,
    column: str,
    data: Dict[str, list],
    device: torch.device,
    counts: Dict[str, int],
    min_size: int,
    tiny: bool,
    warmup: int,
    repeats: int,
    budget: Budget,
) -> Cell:
    """Train and inference numbers of one model in one column ("float32", "bfloat16", "compiled")."""
    cell = Cell()
    clock = Clock(device)
    memory = PeakMemory(device)
    batch_all = data["persons" if model_spec.kind == "keypoint" else "shapes"]
    dtype = "float32" if column == "compiled" else column
    autocast_dtype = resolve_autocast_dtype(dtype)

    # Build and train.
    memory.start()
    torch.manual_seed(0)
    if model_spec.is_ours:
        c = bench.load_config(model_spec.config, our_overrides(counts, tiny), str(device))
        ims = c.SOLVER.IMS_PER_BATCH // 8  # the original's 8 GPUs
        batch = batch_all[:ims]
        model = build_detection_model(c).to(device).train()
        if column == "compiled":
            model = _compile(model)
        train_images, train_targets = bench.our_inputs(c, batch, str(device))
        test_images, _ = bench.our_inputs(c, batch[:1], str(device))
    else:
        batch = batch_all[:TORCHVISION_IMS_PER_GPU]
        model = bench.torchvision_r50(model_spec.kind, len(batch), **torchvision_kwargs(counts, len(batch), min_size))
        model = model.to(device).train()
        train_images = [s.image.to(device) for s in batch]
        train_targets = bench.torchvision_targets(batch, model_spec.kind, str(device))
        test_images = train_images[:1]
    # lr 0: random weights at lr > 0 diverge within a few steps (R-101's first gradients have norm
    # ~4000), and diverged weights would change the workload (no detections, no masks to paste).
    step = bench.training_step(model, train_images, train_targets, dtype, device.type, lr=0.0)

    def train_once() -> float:
        t0 = clock.now()
        step()
        return clock.now() - t0

    share = budget.share()
    times = repeat_timed(train_once, warmup, repeats, share / 2)
    cell.train_s, cell.train_repeats = statistics.median(times), len(times)
    cell.train_mem_gb = memory.peak_gb()

    # Inference, one image per forward; the branch (mask / keypoint) timed apart.
    model.eval()
    branch: Optional[BranchTimer] = None
    paste: Optional[TimedCall] = None
    masker = Masker(threshold=0.5, padding=1)
    if model_spec.is_ours and model_spec.kind != "faster":
        head = model.roi_heads.mask if model_spec.kind == "mask" else model.roi_heads.keypoint
        branch = BranchTimer(clock, head, head)
    elif not model_spec.is_ours and model_spec.kind != "faster":
        heads = model.roi_heads
        first = heads.mask_roi_pool if model_spec.kind == "mask" else heads.keypoint_roi_pool
        branch = BranchTimer(clock, first, heads)  # the branch is the last thing RoIHeads does
        paste = TimedCall(clock, model.transform.postprocess)
        model.transform.postprocess = paste

    def infer_once() -> Tuple[float, float, int]:
        if branch is not None:
            branch.reset()
        if paste is not None:
            paste.seconds = 0.0
        with torch.no_grad(), autocast(device.type, autocast_dtype):
            t0 = clock.now()
            (prediction,) = model(test_images)
            detections = len(prediction) if model_spec.is_ours else len(prediction["boxes"])
            pasted = 0.0
            if model_spec.is_ours and model_spec.kind == "mask":
                # Pasting into the image, which the original's evaluation did after the forward.
                p0 = clock.now()
                masker([prediction.get_field("mask")], [prediction])
                pasted = clock.now() - p0
            total = clock.now() - t0
        in_branch = pasted + (branch.seconds if branch is not None else 0.0)
        in_branch += paste.seconds if paste is not None else 0.0
        if branch is not None and branch.calls == 0:
            raise RuntimeError("the mask / keypoint branch did not run")
        return total, in_branch, detections

    results: List[Tuple[float, float, int]] = []

    def infer_timed() -> float:
        results.append(infer_once())
        return results[-1][0]

    times = repeat_timed(infer_timed, warmup, repeats, share / 2)
    timed = results[warmup:]
    cell.inference_repeats = len(timed)
    cell.detections = timed[-1][2]
    if model_spec.kind == "faster":
        cell.inference_s = statistics.median(times)
    else:
        cell.inference_s = statistics.median(t - b for t, b, _ in timed)
        cell.branch_s = statistics.median(b for _, b, _ in timed)
    if branch is not None:
        branch.remove()
    return cell


# ----------------------------------------------------------------------------------------------
# The run


def environment(device: torch.device, threads: int) -> str:
    """One line on the machine and versions."""
    parts = [f"torch {torch.__version__}", f"torchvision {torchvision.__version__}"]
    if device.type == "cuda":
        driver = "?"
        try:
            driver = (
                subprocess.run(
                    ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader", "-i", str(device.index or 0)],
                    capture_output=True,
                    text=True,
                    timeout=20,
                ).stdout.strip()
                or "?"
            )
        except (OSError, subprocess.SubprocessError):
            pass
        parts = [
            torch.cuda.get_device_name(device),
            f"driver {driver}",
            f"CUDA {torch.version.cuda}",
            f"cuDNN {torch.backends.cudnn.version()}",
        ] + parts
    else:
        parts = [_cpu_name(), f"{threads} threads"] + parts
    return ", ".join(parts)


def _cpu_name() -> str:
    """The CPU's model name, family / model (a VM's name may be just "AMD EPYC") and vector units."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()

        def first(key: str) -> str:
            return re.search(rf"^{key}\s*:\s*(.*)$", info, re.M).group(1)

        flags = set(first("flags").split())
        units = ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)
        return f"{first('model name')} (family {first('cpu family')} model {first('model')}; {units})"
    except (OSError, AttributeError):
        return platform.processor() or platform.machine()


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(column: str, rows: Sequence[Model], cells: Dict[Tuple[str, str], Cell], ims: Dict[str, int]) -> str:
    """A markdown table of one column, beside the original's V100 numbers."""
    head = (
        "| model | im/gpu | train s/it | train mem GB | inference s/im | + mask/kp s/im "
        "| V100 train s/it | V100 mem GB | V100 inference s/im |"
    )
    lines = [f"### {column}", "", head, "|" + "---|" * (head.count("|") - 1)]
    for spec in rows:
        cell = cells.get((spec.name, column))
        published = PUBLISHED.get(spec.name)
        if cell is None or cell.note:
            ours = [cell.note if cell is not None else "-"] + [""] * 3
        else:
            ours = [_fmt(cell.train_s), _fmt(cell.train_mem_gb, 2), _fmt(cell.inference_s), _fmt(cell.branch_s)]
        if published is None:
            theirs = ["-"] * 3
        else:
            infer = f"{published.inference_s_per_image}" + (
                f" + {published.mask_s_per_image}" if published.mask_s_per_image is not None else ""
            )
            theirs = [f"{published.train_s_per_iter}", f"{published.train_mem_gb}", infer]
        lines.append("| " + " | ".join([spec.label, str(ims[spec.name])] + ours + theirs) + " |")
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="128 px images, few RoIs, 1 repeat: a smoke run")
    parser.add_argument(
        "--models", nargs="+", choices=[m.name for m in MODELS], help="default: all 12 (with --tiny: TINY_MODELS)"
    )
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=["float32", "bfloat16"],
        help="default: float32 and bfloat16 on a GPU, float32 on a CPU",
    )
    parser.add_argument("--compile", action="store_true", help="add the column of our models under compile_detector")
    parser.add_argument("--repeats", type=int, help="timed repeats (default 5 on a GPU, 3 on a CPU, 1 with --tiny)")
    parser.add_argument(
        "--warmup", type=int, help="untimed calls first (default 2 on a GPU, 1 on a CPU, 0 with --tiny)"
    )
    parser.add_argument("--budget-s", type=float, default=420.0, help="time for all measurements (0: no limit)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.dtypes = args.dtypes or (["float32", "bfloat16"] if cuda else ["float32"])
    args.repeats = args.repeats or (1 if args.tiny else 5 if cuda else 3)
    args.warmup = args.warmup if args.warmup is not None else (0 if args.tiny else 2 if cuda else 1)
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False  # the same (default) convolution algorithms for both libraries
    chosen = args.models or (TINY_MODELS if args.tiny else [m.name for m in MODELS])
    rows = [m for m in MODELS if m.name in chosen]
    columns = list(args.dtypes) + (["compiled"] if args.compile else [])
    (drawn, min_size), counts = (TINY_SIZE, TINY_COUNTS) if args.tiny else (FULL_SIZE, FULL_COUNTS)

    print(environment(device, args.threads), flush=True)
    kinds = sorted({"persons" if m.kind == "keypoint" else "shapes" for m in rows})
    data = {kind: bench.synthetic_batch(2, min_size, kind, drawn) for kind in kinds}
    size = next(iter(data.values()))[0].image.shape[1:]
    print(
        f"images {drawn[0]}x{drawn[1]} resized to {size[0]}x{size[1]}; {counts['post_nms_test']} proposals and "
        f"{counts['detections']} detections per test image, {counts['rois_per_image']} RoIs per training image; "
        f"columns {columns}; warm-up {args.warmup}, up to {args.repeats} repeats, "
        + (f"budget {args.budget_s:.0f} s" if args.budget_s > 0 else "no budget"),
        flush=True,
    )

    ims = {
        m.name: (bench.load_config(m.config).SOLVER.IMS_PER_BATCH // 8 if m.is_ours else TORCHVISION_IMS_PER_GPU)
        for m in rows
    }
    todo = [(column, m) for column in columns for m in rows]  # a column at a time: float32 first
    budget = Budget(args.budget_s, len(todo))
    cells: Dict[Tuple[str, str], Cell] = {}
    durations: Dict[Tuple[str, str], float] = {}
    for column, spec in todo:
        # What this cell will likely take: as long as this model took in an earlier column, or as
        # the last model in this column (compilation makes a column's cells alike).
        expected = max(
            [d for (name, _), d in durations.items() if name == spec.name]
            + [d for (_, col), d in list(durations.items())[-1:] if col == column]
            + [0.0]
        )
        if column == "compiled" and not spec.is_ours:
            cell = Cell(note="- (not compiled)")
        elif budget.remaining() <= expected:
            cell = Cell(note="skipped (budget)")
        else:
            t0 = time.perf_counter()
            try:
                cell = measure(
                    spec, column, data, device, counts, min_size, args.tiny, args.warmup, args.repeats, budget
                )
            except Exception as e:  # report the column as missing and keep going
                reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:80]
                cell = Cell(note=f"n/a ({reason})")
                if column != "compiled":
                    traceback.print_exc()
            _release_host_memory()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            durations[(spec.name, column)] = time.perf_counter() - t0
            print(
                f"{column:<9} {spec.name:<38} {time.perf_counter() - t0:6.1f} s  "
                + (
                    cell.note
                    or f"train {_fmt(cell.train_s)} s/it ({cell.train_repeats}x), "
                    f"{_fmt(cell.train_mem_gb, 2)} GB, inference {_fmt(cell.inference_s)} + "
                    f"{_fmt(cell.branch_s)} s/im "
                    f"({cell.inference_repeats}x, {cell.detections} detections)"
                ),
                flush=True,
            )
        cells[(spec.name, column)] = cell
        budget.cells_left -= 1

    print()
    for column in columns:
        print(table(column, rows, cells, ims))
        print()
    result = {
        "environment": environment(device, args.threads),
        "image_size": list(size),
        "columns": columns,
        "tiny": args.tiny,
        "rows": [
            {
                "model": m.name,
                "label": m.label,
                "im_per_gpu": ims[m.name],
                **{column: asdict(cells[(m.name, column)]) for column in columns},
                "published_v100": asdict(PUBLISHED[m.name]) if m.name in PUBLISHED else None,
            }
            for m in rows
        ],
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
