"""Times maskrcnn_benchmark's ROIAlign / ROIPool CPU kernels against torchvision.ops on identical inputs.

Workload (a Mask R-CNN box head on the stride-4 FPN level of two 800x1088 images): features
[2, 256, 200, 272] float32 (NCHW), 1000 RoIs of 16..500 px split over both images,
spatial_scale 0.25, 7x7 output, sampling_ratio 2.

Rows: forward op, backward op (the raw backward kernels of both libraries), and forward+backward
through autograd. Each time is the best of `repeats` runs (the machine may be shared).

    python benchmarks/ops_roi.py [--threads N] [--repeats R]
"""

import argparse
import time
from typing import Callable, Dict, List, Optional

import torch
import torchvision

import maskrcnn_benchmark.layers.roi_align  # noqa: F401  (registers the ops and their autograd)
import maskrcnn_benchmark.layers.roi_pool  # noqa: F401

OURS = torch.ops.maskrcnn_benchmark
TV = torch.ops.torchvision

N, C, H, W = 2, 256, 200, 272
IMG_H, IMG_W = 800, 1088
NUM_ROIS = 1000
SCALE = 0.25
POOLED = 7
SAMPLING = 2


def make_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C, H, W, generator=g)
    size = torch.empty(NUM_ROIS, 2).uniform_(16, 500, generator=g)
    x1 = torch.rand(NUM_ROIS, generator=g) * (IMG_W - size[:, 0])
    y1 = torch.rand(NUM_ROIS, generator=g) * (IMG_H - size[:, 1])
    batch = (torch.arange(NUM_ROIS) % N).float()
    rois = torch.stack([batch, x1, y1, x1 + size[:, 0], y1 + size[:, 1]], dim=1)
    grad = torch.randn(NUM_ROIS, C, POOLED, POOLED, generator=g)
    return x, rois, grad


def best_time(fn: Callable[[], object], repeats: int) -> float:
    start = time.perf_counter()
    fn()  # warm-up; a slow call (> 0.5 s) also counts as one of the measurements
    best = time.perf_counter() - start
    if best < 0.5:
        best, repeats = float("inf"), repeats + 1
    for _ in range(repeats - 1):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _fwd_bwd(op: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    xg = x.clone().requires_grad_()

    def step():
        xg.grad = None
        op(xg).backward(grad)

    return step


def run(threads: Optional[int] = None, repeats: int = 3) -> List[Dict[str, object]]:
    """Returns rows {name, ours_s, torchvision_s, ratio} (ratio = torchvision_s / ours_s)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        x, rois, grad = make_inputs()
        shape = (N, C, H, W)
        rows = []

        def add(name, ours, tv):
            t_ours, t_tv = best_time(ours, repeats), best_time(tv, repeats)
            rows.append({"name": name, "ours_s": t_ours, "torchvision_s": t_tv, "ratio": t_tv / t_ours})

        with torch.no_grad():
            add(
                "roi_align forward",
                lambda: OURS.roi_align_forward(x, rois, SCALE, POOLED, POOLED, SAMPLING, False),
                lambda: TV.roi_align(x, rois, SCALE, POOLED, POOLED, SAMPLING, False),
            )
            add(
                "roi_align backward",
                lambda: OURS.roi_align_backward(grad, rois, SCALE, POOLED, POOLED, *shape, SAMPLING, False),
                lambda: TV._roi_align_backward(grad, rois, SCALE, POOLED, POOLED, *shape, SAMPLING, False),
            )
        add(
            "roi_align forward+backward",
            _fwd_bwd(lambda t: OURS.roi_align_forward(t, rois, SCALE, POOLED, POOLED, SAMPLING, False), x, grad),
            _fwd_bwd(lambda t: torchvision.ops.roi_align(t, rois, POOLED, SCALE, SAMPLING, False), x, grad),
        )
        with torch.no_grad():
            _, argmax_ours = OURS.roi_pool_forward(x, rois, SCALE, POOLED, POOLED)
            _, argmax_tv = TV.roi_pool(x, rois, SCALE, POOLED, POOLED)
            add(
                "roi_pool forward",
                lambda: OURS.roi_pool_forward(x, rois, SCALE, POOLED, POOLED),
                lambda: TV.roi_pool(x, rois, SCALE, POOLED, POOLED),
            )
            add(
                "roi_pool backward",
                lambda: OURS.roi_pool_backward(grad, rois, argmax_ours, SCALE, POOLED, POOLED, *shape),
                lambda: TV._roi_pool_backward(grad, rois, argmax_tv, SCALE, POOLED, POOLED, *shape),
            )
        add(
            "roi_pool forward+backward",
            _fwd_bwd(lambda t: OURS.roi_pool_forward(t, rois, SCALE, POOLED, POOLED)[0], x, grad),
            _fwd_bwd(lambda t: torchvision.ops.roi_pool(t, rois, POOLED, SCALE), x, grad),
        )
        return rows
    finally:
        torch.set_num_threads(previous)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads for our kernels (default: torch's)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = run(args.threads, args.repeats)
    threads = args.threads or torch.get_num_threads()
    print(
        f"ROI ops on CPU ({threads} threads; torchvision's CPU kernels are single-threaded), "
        f"input [{N}, {C}, {H}, {W}] float32, {NUM_ROIS} RoIs, {POOLED}x{POOLED}, sampling_ratio {SAMPLING}"
    )
    print(f"{'op':<28}{'ours (s)':>12}{'torchvision (s)':>18}{'ratio':>9}")
    for r in rows:
        print(f"{r['name']:<28}{r['ours_s']:>12.4f}{r['torchvision_s']:>18.4f}{r['ratio']:>8.1f}x")


if __name__ == "__main__":
    main()
