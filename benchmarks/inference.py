"""Mask R-CNN R-50-FPN inference on CPU: ours against torchvision's maskrcnn_resnet50_fpn, in one run.

    python benchmarks/inference.py [--threads N] [--repeats 5] [--dtypes float32 bfloat16]

Both models get random weights (fixed seed), the same 480x640 image (resized to 800 on the short
side inside the timed region), 1000 RPN proposals, score threshold 0 (so both return 100 detections)
and masks pasted at full image size. Each model runs in its own subprocess so that its peak memory
(max RSS) is its own. Prints seconds per image (median of --repeats after one warm-up) and the ratio
ours / torchvision (< 1: we are faster), in float32 and under bfloat16 autocast.
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


def _image():
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.rand(3, IMAGE_H, IMAGE_W, generator=g)  # RGB in [0, 1]


def _build_ours(device: str = "cpu"):
    import torch

    from maskrcnn_benchmark.config import cfg
    from maskrcnn_benchmark.data.transforms import build_transforms
    from maskrcnn_benchmark.modeling.detector import build_detection_model
    from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker
    from maskrcnn_benchmark.structures.image_list import to_image_list

    c = cfg.clone()
    c.merge_from_file(os.path.join(REPO, "configs", "e2e_mask_rcnn_R_50_FPN_1x.yaml"))
    c.merge_from_list([
        "MODEL.DEVICE", device, "MODEL.WEIGHT", "", "MODEL.ROI_HEADS.SCORE_THRESH", "0.0",
        "MODEL.RPN.POST_NMS_TOP_N_TEST", "1000", "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST", "1000",
    ])
    torch.manual_seed(0)
    model = build_detection_model(c).to(device).eval()
    transforms = build_transforms(c, is_train=False)
    masker = Masker(threshold=0.5, padding=1)
    size_divisible = c.DATALOADER.SIZE_DIVISIBILITY

    def run(image):
        from torchvision.transforms import functional as TF

        # The same steps as the test pipeline, on a tensor image: resize, BGR255, normalize.
        height, width = transforms.transforms[1].get_size((IMAGE_W, IMAGE_H))
        resized = TF.resize(image, [height, width], antialias=False)
        normalized, _ = transforms.transforms[-1](resized, None)
        (prediction,) = model(to_image_list([normalized], size_divisible))
        prediction = prediction.resize((IMAGE_W, IMAGE_H))
        masks = masker([prediction.get_field("mask")], [prediction])[0]
        return len(prediction), tuple(masks.shape)

    return model, run


def _build_torchvision(device: str = "cpu"):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, rpn_post_nms_top_n_test=1000, rpn_pre_nms_top_n_test=1000,
        box_score_thresh=0.0, box_detections_per_img=100,
    ).to(device).eval()

    def run(image):
        (prediction,) = model([image])
        return len(prediction["boxes"]), tuple(prediction["masks"].shape)

    return model, run


def _child(which: str, dtype: str, threads: int, repeats: int) -> None:
    import resource

    import torch

    torch.set_num_threads(threads)
    model, run = _build_ours() if which == "ours" else _build_torchvision()
    image = _image()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    times = []
    with torch.inference_mode(), autocast:
        shape = run(image)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            shape = run(image)
            times.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_s": statistics.median(times), "min_s": min(times), "peak_mb": peak_mb,
                      "detections": shape[0], "masks": shape[1]}))


def _measure(which: str, dtype: str, threads: int, repeats: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--dtypes", dtype, "--threads", str(threads), "--repeats", str(repeats)],
        check=True, capture_output=True, text=True, cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--child", choices=["ours", "torchvision"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.dtypes[0], args.threads, args.repeats)
        return

    import torch

    print(f"Mask R-CNN R-50-FPN inference, one {IMAGE_H}x{IMAGE_W} image -> 800 short side, 1000 proposals, "
          f"score threshold 0, masks pasted at full size; torch {torch.__version__}, {args.threads} threads, "
          f"{platform.machine()}")
    print(f"{'dtype':<9} {'ours s/img':>11} {'tv s/img':>9} {'ratio':>6} {'ours peak MB':>13} {'tv peak MB':>11} {'detections':>11}")
    results = {}
    for dtype in args.dtypes:
        ours = _measure("ours", dtype, args.threads, args.repeats)
        tv = _measure("torchvision", dtype, args.threads, args.repeats)
        results[dtype] = (ours, tv)
        print(f"{dtype:<9} {ours['median_s']:>11.3f} {tv['median_s']:>9.3f} {ours['median_s'] / tv['median_s']:>6.2f} "
              f"{ours['peak_mb']:>13.0f} {tv['peak_mb']:>11.0f} {ours['detections']:>5}/{tv['detections']:<5}")
    if "float32" in results and "bfloat16" in results:
        ratio = results["bfloat16"][0]["median_s"] / results["float32"][1]["median_s"]
        print(f"ours in bfloat16 / torchvision in float32: {ratio:.2f}")


if __name__ == "__main__":
    main()
