"""COCO evaluation at COCO scale: this library's path against the original maskrcnn-benchmark's, in one run.

    python benchmarks/eval.py                      # 5,000 images (masks) + 5,000 (keypoints); ~30 min on 2 cores
    python benchmarks/eval.py --images 200         # a quick run
    python benchmarks/eval.py --hold-outputs       # ours also keeps every raw output, as for predictions.pth

The data (benchmarks/synthetic_coco.py) is a COCO-like set made in memory: 80 categories, ~7 instances
per image with polygon masks, crowd regions, images without objects, and a detector's raw outputs of
100 detections per image (BoxList in the network's input size with scores, labels and 28 x 28 mask
probabilities); the keypoint variant has persons with 17 keypoints (bbox + keypoints evaluation).

Each path runs in its own subprocess (so that peak RSS, ru_maxrss, is its own), from the raw outputs
to the COCO stats:
- original (benchmarks/eval_baseline.py, re-stated from the original's algorithm): all outputs held (as
  it gathered them), per image resize, paste one mask at a time into an image-sized canvas, one
  pycocotools encode per mask, result dicts, json file written and loaded back, pycocotools COCOeval.
- ours: each output encoded as it comes (compute_on_dataset's CocoResultEncoder: resize, masks pasted
  and run-length encoded per image without canvases), result dicts, COCOeval with --backend
  (faster-coco-eval by default, with pycocotools' precision values, precision_fix.py).
The phases are timed separately (data generation excluded); both use --threads torch threads. The run
checks that all stats (12 per bbox / segm, 10 for keypoints) and all result dicts (hashes of the
bbox, segm RLE and keypoint results) are identical between the two paths.
"""

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

VARIANTS = {"masks": ("bbox", "segm"), "keypoints": ("bbox", "keypoints")}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _digest(results: List[Dict[str, Any]]) -> str:
    """A hash of the result dicts (floats as repr: equal only if bit-identical)."""
    h = hashlib.sha256()
    for r in results:
        h.update(json.dumps(r, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _data(args: argparse.Namespace, variant: str):
    import synthetic_coco as sc

    keypoints = variant == "keypoints"
    n = args.keypoint_images if keypoints else args.images
    gt = sc.make_ground_truth(n, args.seed, keypoints=keypoints)
    sc.index_by_image(gt)
    outputs = sc.iter_predictions(gt, range(n), args.seed, args.dets, masks=not keypoints)
    return sc.COCODataset(gt), outputs


def run_original(args: argparse.Namespace, variant: str) -> Dict[str, Any]:
    import contextlib
    import io

    import eval_baseline as eb

    iou_types = VARIANTS[variant]
    dataset, outputs = _data(args, variant)
    rss_ground_truth = _rss_mb()
    predictions = list(outputs)  # the original gathered every output before evaluating
    rss_inputs = _rss_mb()
    times = {"paste": 0.0, "encode": 0.0, "dicts": 0.0}
    start = time.perf_counter()
    results = eb.prepare(predictions, dataset, iou_types, times)
    stats = {}
    with tempfile.TemporaryDirectory() as folder:
        for iou_type in iou_types:
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                stats[iou_type] = eb.evaluate(dataset.coco, results[iou_type], iou_type, folder).tolist()
            times["cocoeval_" + iou_type] = time.perf_counter() - t0
    total = time.perf_counter() - start
    return {
        "times": times,
        "total": total,
        "stats": stats,
        "digests": {t: _digest(results[t]) for t in iou_types},
        "detections": {t: len(results[t]) for t in iou_types},
        "rss_ground_truth_mb": rss_ground_truth,
        "rss_inputs_mb": rss_inputs,
        "peak_rss_mb": _peak_mb(),
    }


def run_ours(args: argparse.Namespace, variant: str) -> Dict[str, Any]:
    import torch

    from maskrcnn_benchmark.data.datasets.evaluation.coco import CocoResultEncoder
    from maskrcnn_benchmark.data.datasets.evaluation.coco.backends import run_cocoeval
    from maskrcnn_benchmark.data.datasets.evaluation.coco.compact import result_dicts

    iou_types = VARIANTS[variant]
    dataset, outputs = _data(args, variant)
    rss_ground_truth = _rss_mb()
    encoder = CocoResultEncoder(dataset, iou_types)
    held = []
    for index, output in enumerate(outputs):  # as compute_on_dataset calls it, batch after batch
        encoder(index, output)
        if args.hold_outputs:  # what inference keeps for predictions.pth
            held.append(output)
    rss_inputs = _rss_mb()
    start = time.perf_counter()
    encoded = encoder.merged([encoder.results])  # one process: nothing to gather
    times = {"encode": encoder.seconds}
    results = {t: result_dicts(encoded.images, t) for t in iou_types}
    times["dicts"] = time.perf_counter() - start
    stats = {}
    for iou_type in iou_types:
        t0 = time.perf_counter()
        coco_eval = run_cocoeval(
            dataset.coco, results[iou_type], iou_type, args.backend, images=encoded.images, log=lambda s: None
        )
        stats[iou_type] = [float(v) for v in coco_eval.stats]
        times["cocoeval_" + iou_type] = time.perf_counter() - t0
    del held
    return {
        "times": times,
        "total": encoder.seconds + time.perf_counter() - start,
        "stats": stats,
        "digests": {t: _digest(results[t]) for t in iou_types},
        "detections": {t: len(results[t]) for t in iou_types},
        "rss_ground_truth_mb": rss_ground_truth,
        "rss_inputs_mb": rss_inputs,
        "peak_rss_mb": _peak_mb(),
        "torch_threads": torch.get_num_threads(),
    }


def _child(args: argparse.Namespace) -> None:
    # Both paths import the same modules first, so that RSS compares their data, not their imports.
    import eval_baseline  # noqa: F401
    import faster_coco_eval  # noqa: F401
    import synthetic_coco  # noqa: F401
    import torch

    import maskrcnn_benchmark.data.datasets.evaluation.coco  # noqa: F401

    torch.set_num_threads(args.threads)
    run = run_original if args.run == "original" else run_ours
    with open(args.out, "w") as f:
        json.dump(run(args, args.variant), f)


def _spawn(args: argparse.Namespace, path: str, variant: str) -> Dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, os.path.abspath(__file__), "--run", path, "--variant", variant, "--out", out]
    cmd += ["--images", str(args.images), "--keypoint-images", str(args.keypoint_images), "--dets", str(args.dets)]
    cmd += ["--seed", str(args.seed), "--threads", str(args.threads), "--backend", args.backend]
    cmd += ["--hold-outputs"] if args.hold_outputs else []
    print(f"[{time.strftime('%H:%M:%S')}] {variant}: {path} path ...", flush=True)
    subprocess.run(cmd, check=True)
    with open(out) as f:
        result = json.load(f)
    os.unlink(out)
    return result


def _phase_rows(variant: str, orig: Dict[str, Any], ours: Dict[str, Any]) -> List[tuple]:
    o, u = orig["times"], ours["times"]
    rows = []
    if variant == "masks":
        rows.append(("masks: paste + RLE (+ resize, boxes)", o["paste"] + o["encode"], u["encode"]))
        rows.append(("result dicts", o["dicts"], u["dicts"]))
    else:
        rows.append(("resize, boxes, keypoints + result dicts", o["dicts"], u["encode"] + u["dicts"]))
    for iou_type in VARIANTS[variant]:
        rows.append((f"COCOeval {iou_type}", o["cocoeval_" + iou_type], u["cocoeval_" + iou_type]))
    rows.append(("end to end", orig["total"], ours["total"]))
    return rows


def _report(variant: str, n: int, orig: Dict[str, Any], ours: Dict[str, Any], backend: str) -> bool:
    print(f"\n== {variant}: {n} images, {orig['detections']} detections ==")
    print(f"{'phase':<42} {'original s':>11} {'ours s':>9} {'ratio':>7}")
    for name, a, b in _phase_rows(variant, orig, ours):
        print(f"{name:<42} {a:>11.1f} {b:>9.1f} {a / max(b, 1e-9):>6.1f}x")
    print(f"{'peak RSS (MiB)':<42} {orig['peak_rss_mb']:>11.0f} {ours['peak_rss_mb']:>9.0f}")
    print(
        f"  RSS after ground truth {orig['rss_ground_truth_mb']:.0f} / {ours['rss_ground_truth_mb']:.0f} MiB; with "
        f"the raw outputs (original: all held; ours: encoded as they come) {orig['rss_inputs_mb']:.0f} / "
        f"{ours['rss_inputs_mb']:.0f} MiB"
    )
    ok = True
    for iou_type in VARIANTS[variant]:
        same_stats = orig["stats"][iou_type] == ours["stats"][iou_type]
        same_dicts = orig["digests"][iou_type] == ours["digests"][iou_type]
        ok &= same_stats and same_dicts
        ap_ours, ap_orig = ours["stats"][iou_type][0], orig["stats"][iou_type][0]
        print(
            f"{iou_type}: {len(ours['stats'][iou_type])} stats identical: {same_stats}; result dicts identical: "
            f"{same_dicts}; AP {ap_ours:.4f} (ours, {backend}) {ap_orig:.4f} (original)"
        )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000, help="images of the masks variant")
    parser.add_argument("--keypoint-images", type=int, default=None, help="images of the keypoint variant (--images)")
    parser.add_argument("--dets", type=int, default=100, help="detections per image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of both paths")
    parser.add_argument("--backend", default="faster_coco_eval", choices=("faster_coco_eval", "pycocotools"))
    parser.add_argument("--variants", default="masks,keypoints", help="comma-separated: masks, keypoints")
    parser.add_argument("--hold-outputs", action="store_true", help="ours keeps every raw output too")
    parser.add_argument("--run", choices=("original", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=tuple(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.keypoint_images is None:
        args.keypoint_images = args.images
    for name in ("images", "keypoint_images", "dets", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.run:
        _child(args)
        return
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; allowed: {list(VARIANTS)}")
    ok = True
    for variant in variants:
        orig, ours = _spawn(args, "original", variant), _spawn(args, "ours", variant)
        n = args.keypoint_images if variant == "keypoints" else args.images
        ok &= _report(variant, n, orig, ours, args.backend)
    print("\nall stats and results identical" if ok else "\nDIFFERENCES between the two paths (see above)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
