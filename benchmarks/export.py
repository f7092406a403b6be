"""Mask R-CNN R-50-FPN CPU inference: eager against the exported ONNX file (onnxruntime) and the
AOTInductor package, in one run.

    python benchmarks/export.py [--threads N] [--repeats 5] [--workdir output/bench_export] [--reuse]

The settings of benchmarks/inference.py: random weights (seed 0), the same 480x640 image resized to
800 on the short side inside the timed region (800 x 1066, padded to 800 x 1088), 1000 RPN
proposals, score threshold 0 (100 detections), masks pasted at full image size, float32. The three
runs share the pre-processing (tensor resize, normalisation) and the post-processing (boxes back to
the image size, mask pasting); only the network differs: the eager GeneralizedRCNN, or the exported
graph (deploy/graph.py) in onnxruntime or AOTInductor. Both files are exported for the fixed
800 x 1088 input (--image-size 800 1088); the export and compile times are printed too.
Prints seconds per image (median of --repeats rounds, each calling the three in turn, after one
warm-up call each), the ratios exported / eager (< 1:
the exported file is faster), and how many of the eager model's detections each exported file
reproduces (same label, box within 0.5 px) with the largest differences over those.
"""

import argparse
import os
import statistics
import sys
import time

import torch

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCHMARKS)
import inference  # noqa: E402  (benchmarks/inference.py: the image and the eager model)

INPUT_SIZE = (800, 1088)


def _cfg():
    from maskrcnn_benchmark.config import cfg

    c = cfg.clone()
    c.merge_from_file(os.path.join(inference.REPO, inference.CONFIGS["r50"]))
    c.merge_from_list(
        ["MODEL.DEVICE", "cpu", "MODEL.WEIGHT", "", "MODEL.ROI_HEADS.SCORE_THRESH", "0.0"]
        + ["MODEL.RPN.POST_NMS_TOP_N_TEST", "1000", "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST", "1000"]
    )
    return c


def _exported_run(cfg, runner):
    """inference.py's run() with the network replaced by an exported graph runner
    ((images, image_sizes) -> outputs dict)."""
    from torchvision.transforms import functional as TF

    from maskrcnn_benchmark.data.transforms import build_transforms
    from maskrcnn_benchmark.deploy import inputs, outputs
    from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker

    transforms = build_transforms(cfg, is_train=False)
    masker = Masker(threshold=0.5, padding=1)

    def run(image):
        image_h, image_w = image.shape[1:]
        height, width = transforms.transforms[1].get_size((image_w, image_h))
        resized = TF.resize(image, [height, width], antialias=False)
        normalized, _ = transforms.transforms[-1](resized, None)
        images, image_sizes = inputs.batch([normalized], cfg.DATALOADER.SIZE_DIVISIBILITY, INPUT_SIZE)
        (prediction,) = outputs.to_boxlists(runner(images, image_sizes), [(height, width)])
        prediction = prediction.resize((image_w, image_h))
        masks = masker([prediction.get_field("mask")], [prediction])[0]
        return prediction, masks

    return run


def _time(runs, image, repeats: int):
    """{name: (median s, first-call s)}: a warm-up call of each run, then `repeats` rounds that call
    each once in turn (alternating, so that a change of the machine's speed affects every run)."""
    first, times = {}, {name: [] for name in runs}
    with torch.inference_mode():
        for name, run in runs.items():
            t0 = time.perf_counter()
            run(image)
            first[name] = time.perf_counter() - t0
        for _ in range(repeats):
            for name, run in runs.items():
                t0 = time.perf_counter()
                run(image)
                times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(times[name]), first[name]) for name in runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", default=os.path.join(inference.REPO, "output", "bench_export"))
    parser.add_argument("--reuse", action="store_true", help="reuse the exported files of an earlier run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.workdir, exist_ok=True)

    from maskrcnn_benchmark.deploy import export_onnx, export_pt2, load_onnx, load_pt2

    cfg = _cfg()
    model, eager_run = inference._build_ours(model_name="r50")
    image = inference._image()
    paths = {fmt: os.path.join(args.workdir, f"mask_rcnn_R_50_FPN.{fmt}") for fmt in ("onnx", "pt2")}
    export_s = {}
    for fmt, export in (("onnx", export_onnx), ("pt2", export_pt2)):
        if not (args.reuse and os.path.exists(paths[fmt])):
            t0 = time.perf_counter()
            export(model, cfg, paths[fmt], INPUT_SIZE)
            export_s[fmt] = time.perf_counter() - t0
    print(
        f"Mask R-CNN R-50-FPN, one {inference.IMAGE_H}x{inference.IMAGE_W} image -> 800 short side, "
        f"{INPUT_SIZE[0]}x{INPUT_SIZE[1]} input, 1000 proposals, score threshold 0, masks pasted; torch "
        f"{torch.__version__}, {args.threads} threads, float32"
    )
    for fmt, seconds in export_s.items():
        print(f"export {fmt}: {seconds:.0f} s (torch.export + {'ONNX conversion' if fmt == 'onnx' else 'AOTInductor'})")

    detectors = {"onnxruntime": load_onnx(paths["onnx"], threads=args.threads), "pt2": load_pt2(paths["pt2"])}
    runs = {"eager": eager_run, **{name: _exported_run(cfg, d.run) for name, d in detectors.items()}}
    results = _time(runs, image, args.repeats)

    eager_s = results["eager"][0]
    print(f"{'runtime':<12} {'s/img':>7} {'/ eager':>8} {'first call s':>13}")
    for name, (median, first) in results.items():
        print(f"{name:<12} {median:>7.3f} {median / eager_s:>8.2f} {first:>13.2f}")
    _compare(model, cfg, image, detectors)


def _compare(model, cfg, image, detectors) -> None:
    """Largest differences of the exported graphs' outputs against the eager model's, same input."""
    from torchvision.transforms import functional as TF

    from maskrcnn_benchmark.data.transforms import build_transforms
    from maskrcnn_benchmark.deploy import inputs
    from maskrcnn_benchmark.structures.image_list import ImageList

    transforms = build_transforms(cfg, is_train=False)
    height, width = transforms.transforms[1].get_size((image.shape[2], image.shape[1]))
    normalized, _ = transforms.transforms[-1](TF.resize(image, [height, width], antialias=False), None)
    images, image_sizes = inputs.batch([normalized], cfg.DATALOADER.SIZE_DIVISIBILITY, INPUT_SIZE)
    with torch.inference_mode():
        (expected,) = model(ImageList(images, [(height, width)]))
        for name, detector in detectors.items():
            got = detector.run(images, image_sizes)
            # Pair each eager detection with an exported one of the same label whose box is within
            # 0.5 px: with random weights and score threshold 0 the 81 class scores are nearly equal,
            # so float rounding can reorder the detections or swap the 100th.
            distance = (expected.bbox[:, None, :] - got["boxes"][None, :, :]).abs().amax(dim=2)
            same = (distance < 0.5) & (expected.get_field("labels")[:, None] == got["labels"][None, :])
            pair = torch.where(same.any(dim=1), distance.masked_fill(~same, float("inf")).argmin(dim=1), -1)
            matched = pair >= 0
            rows, cols = torch.nonzero(matched).squeeze(1), pair[matched]
            line = f"{name}: {len(got['boxes'])} detections (eager {len(expected)}), {int(matched.sum())} matched"
            if len(rows):
                line += (
                    f"; over those, max |diff| boxes {distance[rows, cols].max():.1e} px, scores "
                    f"{(got['scores'][cols] - expected.get_field('scores')[rows]).abs().max():.1e}, mask "
                    f"probabilities {(got['masks'][cols] - expected.get_field('mask')[rows]).abs().max():.1e}"
                )
            print(line)


if __name__ == "__main__":
    main()
