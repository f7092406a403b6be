"""Time our NMS, batched NMS and sigmoid focal loss against torchvision.ops on identical inputs.

    python benchmarks/ops_nms.py [--threads N]

Each row: median seconds per call of ours and of the torchvision equivalent, and the ratio
torchvision / ours (> 1 means ours is faster). Inputs are built once and shared:

* NMS: torchvision's IoU has no "+1", so it receives the boxes shifted by [0, 0, 1, 1] (built
  outside the timed region), which gives it exactly our legacy IoUs; both must keep the same boxes
  (checked, column `match`). RPN-like boxes: random centres in an 800 x 1088 image, sizes 16-400 px,
  random scores; "dense": 20,000 boxes packed in a 200 x 200 px area.
* batched NMS: box-head-like (80 class ids) and RPN-like (5 FPN levels), against
  torchvision.ops.batched_nms.
* focal loss: forward + backward of the summed loss, ours against torchvision.ops.sigmoid_focal_loss
  on one-hot targets times the "not ignored" mask (the same quantity in plain PyTorch).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torchvision

from maskrcnn_benchmark.layers.nms import batched_nms, nms
from maskrcnn_benchmark.layers.sigmoid_focal_loss import sigmoid_focal_loss


def _time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rpn_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ctr = torch.rand(n, 2, generator=g) * torch.tensor([1088.0, 800.0])
    wh = torch.rand(n, 2, generator=g) * 384 + 16
    return torch.cat([ctr - wh / 2, ctr + wh / 2], 1), torch.rand(n, generator=g)


def _dense_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ctr = torch.rand(n, 2, generator=g) * 100 + 300
    wh = torch.rand(n, 2, generator=g) * 100 + 100
    return torch.cat([ctr - wh / 2, ctr + wh / 2], 1), torch.rand(n, generator=g)


_SHIFT = torch.tensor([0.0, 0.0, 1.0, 1.0])


def _row(name: str, ours_s: float, tv_s: float, match: bool | None = None) -> dict:
    row = {"name": name, "ours_s": ours_s, "torchvision_s": tv_s, "ratio": tv_s / ours_s}
    if match is not None:
        row["match"] = match
    return row


def _nms_rows(repeats: int) -> list[dict]:
    rows = []
    cases = [
        ("nms 20k RPN-like thr 0.7", _rpn_boxes(20000, 0), 0.7),
        ("nms 20k RPN-like thr 0.5", _rpn_boxes(20000, 0), 0.5),
        ("nms 20k dense thr 0.7", _dense_boxes(20000, 1), 0.7),
        ("nms 20k dense thr 0.5", _dense_boxes(20000, 1), 0.5),
        ("nms 2k RPN-like thr 0.7", _rpn_boxes(2000, 2), 0.7),
    ]
    for name, (boxes, scores), thr in cases:
        shifted = boxes + _SHIFT
        ours_s = _time(lambda: nms(boxes, scores, thr), repeats)
        tv_s = _time(lambda: torchvision.ops.nms(shifted, scores, thr), max(1, repeats // 3))
        match = torch.equal(nms(boxes, scores, thr), torchvision.ops.nms(shifted, scores, thr).sort().values)
        rows.append(_row(name, ours_s, tv_s, match))
    return rows


def _batched_rows(repeats: int) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(3)
    boxes, scores = _rpn_boxes(20000, 3)
    cases = [
        ("batched_nms 20k, 80 classes thr 0.5", torch.randint(0, 80, (20000,), generator=g), 0.5),
        ("batched_nms 20k, 5 levels thr 0.7", torch.randint(0, 5, (20000,), generator=g), 0.7),
    ]
    for name, idxs, thr in cases:
        shifted = boxes + _SHIFT
        ours_s = _time(lambda: batched_nms(boxes, scores, idxs, thr), repeats)
        tv_s = _time(lambda: torchvision.ops.batched_nms(shifted, scores, idxs, thr), max(1, repeats // 3))
        tv = torchvision.ops.batched_nms(shifted, scores, idxs, thr)
        ours = batched_nms(boxes, scores, idxs, thr)
        match = torch.equal(ours.sort().values, tv.sort().values)
        rows.append(_row(name, ours_s, tv_s, match))
    return rows


def _focal_rows(repeats: int) -> list[dict]:
    n, c = 60000, 80
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(n, c, generator=g)
    targets = torch.randint(-1, c + 1, (n,), generator=g)
    one_hot = torch.nn.functional.one_hot(targets.clamp(min=0), c + 1)[:, 1:].float()
    valid = (targets >= 0).float().unsqueeze(1)

    def ours():
        x = logits.detach().requires_grad_()
        sigmoid_focal_loss(x, targets, 2.0, 0.25).sum().backward()
        return x.grad

    def plain():
        x = logits.detach().requires_grad_()
        loss = torchvision.ops.sigmoid_focal_loss(x, one_hot, alpha=0.25, gamma=2.0, reduction="none")
        (loss * valid).sum().backward()
        return x.grad

    match = torch.allclose(ours(), plain(), rtol=1e-4, atol=1e-6)
    return [_row(f"focal loss fwd+bwd {n}x{c}", _time(ours, repeats), _time(plain, repeats), match)]


def run(threads: int | None = None) -> list[dict]:
    """Runs every case; returns rows {name, ours_s, torchvision_s, ratio, match}."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with torch.inference_mode(False):
            return _nms_rows(repeats=7) + _batched_rows(repeats=7) + _focal_rows(repeats=5)
    finally:
        torch.set_num_threads(previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args()
    rows = run(args.threads)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.get_num_threads()} threads")
    width = max(len(r["name"]) for r in rows)
    print(f"{'op':<{width}}  {'ours (s)':>10}  {'torchvision (s)':>15}  {'speed-up':>8}  same result")
    for r in rows:
        print(
            f"{r['name']:<{width}}  {r['ours_s']:>10.5f}  {r['torchvision_s']:>15.5f}  {r['ratio']:>7.2f}x"
            f"  {r.get('match', '')}"
        )


if __name__ == "__main__":
    main()
