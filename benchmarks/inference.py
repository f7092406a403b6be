"""Mask R-CNN R-50-FPN inference on CPU: ours against torchvision's maskrcnn_resnet50_fpn, in one run.

    python benchmarks/inference.py [--threads N] [--repeats 5] [--dtypes float32 bfloat16] [--model small] [--compile]

Both models get random weights (fixed seed), the same 480x640 image (resized to 800 on the short
side inside the timed region), 1000 RPN proposals, score threshold 0 (so both return 100 detections)
and masks pasted at full image size. Each model runs in its own subprocess so that its peak memory
(max RSS) is its own. Prints seconds per image (median of --repeats after one warm-up) and the ratio
ours / torchvision (< 1: we are faster), in float32 and under bfloat16 autocast.

--model retinanet: RetinaNet R-50-FPN (configs/retinanet/retinanet_R-50-FPN_1x.yaml) against
torchvision's RetinaNet R-50-FPN (benchmarks/train.py's torchvision_retinanet: P6 from C5 as ours,
frozen batch norm), both with score threshold 0, the best 1000 candidates per level,
NMS at 0.4 (the original's RETINANET.NMS_TH) and 100 detections per image (no masks).
--model small: the make-demo model (configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml, 256 short side, its
proposal counts) against the same architecture built from torchvision's parts (benchmarks/train.py).
--compile also times our model compiled (MODEL.COMPILE, engine/compile.py): its first call
(compiling), the first call on an image of another shape (compiling again, with dynamic shapes), then
the median on the first image (running the dynamic-shape code), and eager / compiled (> 1: faster).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_H, IMAGE_W = 480, 640
CONFIGS = {
    "r50": "configs/e2e_mask_rcnn_R_50_FPN_1x.yaml",
    "small": "configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml",
    "retinanet": "configs/retinanet/retinanet_R-50-FPN_1x.yaml",
}


def _image(height: int = IMAGE_H, width: int = IMAGE_W):
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.rand(3, height, width, generator=g)  # RGB in [0, 1]


def _build_ours(device: str = "cpu", model_name: str = "r50", compile: bool = False):
    import torch

    from maskrcnn_benchmark.config import cfg
    from maskrcnn_benchmark.data.transforms import build_transforms
    from maskrcnn_benchmark.engine.compile import maybe_compile
    from maskrcnn_benchmark.modeling.detector import build_detection_model
    from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker
    from maskrcnn_benchmark.structures.image_list import to_image_list

    c = cfg.clone()
    c.merge_from_file(os.path.join(REPO, CONFIGS[model_name]))
    c.merge_from_list(
        [
            "MODEL.DEVICE",
            device,
            "MODEL.WEIGHT",
            "",
            "MODEL.ROI_HEADS.SCORE_THRESH",
            "0.0",
            "MODEL.COMPILE.ENABLED",
            str(compile),
        ]
    )
    if model_name == "r50":
        c.merge_from_list(["MODEL.RPN.POST_NMS_TOP_N_TEST", "1000", "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST", "1000"])
    if model_name == "retinanet":
        c.merge_from_list(["MODEL.RETINANET.INFERENCE_TH", "0.0", "TEST.DETECTIONS_PER_IMG", "100"])
    torch.manual_seed(0)
    model = build_detection_model(c).to(device).eval()
    maybe_compile(model, c)
    transforms = build_transforms(c, is_train=False)
    masker = Masker(threshold=0.5, padding=1)
    size_divisible = c.DATALOADER.SIZE_DIVISIBILITY

    def run(image):
        from torchvision.transforms import functional as TF

        # The same steps as the test pipeline, on a tensor image: resize, BGR255, normalize.
        image_h, image_w = image.shape[1:]
        height, width = transforms.transforms[1].get_size((image_w, image_h))
        resized = TF.resize(image, [height, width], antialias=False)
        normalized, _ = transforms.transforms[-1](resized, None)
        (prediction,) = model(to_image_list([normalized], size_divisible))
        prediction = prediction.resize((image_w, image_h))
        if not prediction.has_field("mask"):
            return len(prediction), None
        masks = masker([prediction.get_field("mask")], [prediction])[0]
        return len(prediction), tuple(masks.shape)

    return model, run


def _torchvision_small():
    """benchmarks/train.py's torchvision twin of the small model, with the config's test settings."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import train

    c = train.load_config(CONFIGS["small"])
    torch.manual_seed(0)
    model = train._torchvision_small(c, 1)
    model.rpn._pre_nms_top_n["testing"] = c.MODEL.RPN.PRE_NMS_TOP_N_TEST
    model.rpn._post_nms_top_n["testing"] = c.MODEL.RPN.FPN_POST_NMS_TOP_N_TEST
    model.roi_heads.score_thresh = 0.0
    model.roi_heads.detections_per_img = c.MODEL.ROI_HEADS.DETECTIONS_PER_IMG
    return model


def _build_torchvision(device: str = "cpu", model_name: str = "r50"):
    import torch
    import torchvision

    torch.manual_seed(0)
    if model_name == "small":
        model = _torchvision_small().to(device).eval()
    elif model_name == "retinanet":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import train

        model = (
            train.torchvision_retinanet(
                1, num_classes=81, score_thresh=0.0, nms_thresh=0.4, detections_per_img=100, topk_candidates=1000
            )
            .to(device)
            .eval()
        )
    else:
        model = (
            torchvision.models.detection.maskrcnn_resnet50_fpn(
                weights=None,
                weights_backbone=None,
                rpn_post_nms_top_n_test=1000,
                rpn_pre_nms_top_n_test=1000,
                box_score_thresh=0.0,
                box_detections_per_img=100,
            )
            .to(device)
            .eval()
        )

    def run(image):
        (prediction,) = model([image])
        masks = prediction.get("masks")
        return len(prediction["boxes"]), None if masks is None else tuple(masks.shape)

    return model, run


def _child(which: str, dtype: str, threads: int, repeats: int, model_name: str = "r50") -> None:
    import resource

    import torch

    torch.set_num_threads(threads)
    if which == "torchvision":
        model, run = _build_torchvision(model_name=model_name)
    else:
        model, run = _build_ours(model_name=model_name, compile=which == "compiled")
    image = _image()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    times, first = [], {}
    with torch.inference_mode(), autocast:
        t0 = time.perf_counter()
        shape = run(image)  # warm-up
        first["first_s"] = time.perf_counter() - t0
        if which == "compiled":  # another shape: the regions are compiled again, with dynamic shapes
            t0 = time.perf_counter()
            run(_image(IMAGE_H, IMAGE_W * 5 // 4))
            first["new_shape_s"] = time.perf_counter() - t0
        for _ in range(repeats):
            t0 = time.perf_counter()
            shape = run(image)
            times.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "median_s": statistics.median(times),
                "min_s": min(times),
                "times": times,
                "peak_mb": peak_mb,
                "detections": shape[0],
                "masks": shape[1],
                **first,
            }
        )
    )


def _measure(which: str, dtype: str, threads: int, repeats: int, model_name: str = "r50") -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            which,
            "--dtypes",
            dtype,
            "--threads",
            str(threads),
            "--repeats",
            str(repeats),
            "--model",
            model_name,
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _alternate(dtype: str, args) -> tuple:
    """(ours, torchvision) results over args.rounds alternating rounds; median_s over every timed run."""
    runs = {"ours": [], "torchvision": []}
    for _ in range(args.rounds):
        for which in runs:
            runs[which].append(_measure(which, dtype, args.threads, args.repeats, args.model))
    merged = []
    for results in runs.values():
        times = [t for r in results for t in r["times"]]
        merged.append(
            {
                **results[0],
                "median_s": statistics.median(times),
                "min_s": min(times),
                "peak_mb": max(r["peak_mb"] for r in results),
            }
        )
    return tuple(merged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--model", choices=list(CONFIGS), default="r50")
    parser.add_argument("--compile", action="store_true", help="also time our model compiled (see above)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate ours and torchvision this many times (--repeats each), medians over all rounds: "
        "fairer when the machine's speed drifts",
    )
    parser.add_argument("--child", choices=["ours", "compiled", "torchvision"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.dtypes[0], args.threads, args.repeats, args.model)
        return

    import torch

    what = {
        "r50": "Mask R-CNN R-50-FPN, one {}x{} image -> 800 short side, 1000 proposals, masks pasted at full size",
        "small": "Mask R-CNN small R-18-FPN (make demo), one {}x{} image -> 256 short side, 300 proposals, "
        "masks pasted at full size",
        "retinanet": "RetinaNet R-50-FPN, one {}x{} image -> 800 short side, 1000 candidates per level, NMS 0.4",
    }[args.model].format(IMAGE_H, IMAGE_W)
    print(f"{what}, score threshold 0; torch {torch.__version__}, {args.threads} threads, {platform.machine()}")
    print(
        f"{'dtype':<9} {'ours s/img':>11} {'tv s/img':>9} {'ratio':>6} "
        f"{'ours peak MB':>13} {'tv peak MB':>11} {'detections':>11}"
    )
    results = {}
    for dtype in args.dtypes:
        ours, tv = _alternate(dtype, args)
        results[dtype] = (ours, tv)
        print(
            f"{dtype:<9} {ours['median_s']:>11.3f} {tv['median_s']:>9.3f} {ours['median_s'] / tv['median_s']:>6.2f} "
            f"{ours['peak_mb']:>13.0f} {tv['peak_mb']:>11.0f} {ours['detections']:>5}/{tv['detections']:<5}"
        )
        if args.compile:
            comp = _measure("compiled", dtype, args.threads, args.repeats, args.model)
            print(
                f"{dtype:<9} ours compiled {comp['median_s']:.3f} s/img, eager/compiled "
                f"{ours['median_s'] / comp['median_s']:.2f}, compiled/tv {comp['median_s'] / tv['median_s']:.2f}, "
                f"first call {comp['first_s']:.1f} s (eager {ours['first_s']:.1f} s), at a new shape "
                f"{comp['new_shape_s']:.1f} s, peak {comp['peak_mb']:.0f} MB, {comp['detections']} detections"
            )
    if "float32" in results and "bfloat16" in results:
        ratio = results["bfloat16"][0]["median_s"] / results["float32"][1]["median_s"]
        print(f"ours in bfloat16 / torchvision in float32: {ratio:.2f}")


if __name__ == "__main__":
    main()
