r"""The main job on the embedded synthetic dataset (`make demo`): generate the data, train a CPU-sized
Mask R-CNN from scratch, evaluate it with COCO metrics on the held-out split, and draw pictures of its
predictions.

    python tools/run_demo.py [--output output/demo] [KEY VALUE ...]

Training and evaluation are the ordinary tools/train_net.py command (printed before it runs), so
everything here can be repeated by hand. Running it again resumes from OUTPUT_DIR/last_checkpoint
(a finished run is only evaluated again). The AP table is printed at the end, with where the
pictures are.
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join("configs", "cpu", "e2e_mask_rcnn_R_18_FPN_cpu.yaml")
TEST_SET = "synthetic_shapes_val"
TARGET_AP = 50.0


def draw_pictures(output_dir: str, count: int) -> list:
    """PNG pictures of the predictions on the first `count` validation images."""
    import numpy as np
    import torch

    from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
    from maskrcnn_benchmark.data.datasets import COCODataset
    from maskrcnn_benchmark.utils.visualization import draw_predictions, save_image

    args = DatasetCatalog.get(TEST_SET)["args"]
    dataset = COCODataset(args["ann_file"], args["root"], remove_images_without_annotations=False)
    # predictions.pth is this run's own output (a list of BoxList), not a downloaded file.
    predictions = torch.load(os.path.join(output_dir, "inference", TEST_SET, "predictions.pth"), weights_only=False)
    folder = os.path.join(output_dir, "pictures")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for idx in range(min(count, len(dataset))):
        image, _, _ = dataset[idx]
        drawn = draw_predictions(np.asarray(image), predictions[idx], dataset.class_names, score_threshold=0.5)
        path = os.path.join(folder, f"val_{idx:03d}.png")
        save_image(path, np.concatenate([np.asarray(image), drawn], axis=1))  # input | predictions
        paths.append(path)
    return paths


def cpu_has_native_bfloat16() -> bool:
    """Whether this x86 CPU computes bfloat16 in hardware (AVX512-BF16 or AMX); without it torch
    emulates bfloat16 and the demo's bfloat16 training is about 10x slower than float32. True where
    this cannot be told (no /proc/cpuinfo): the config is then used as it is."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return True
    if "avx2" not in flags:  # not an x86 CPU whose flags we know
        return True
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=os.path.join("output", "demo"))
    parser.add_argument("--pictures", type=int, default=8)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="extra KEY VALUE config overrides")
    args = parser.parse_args()
    os.chdir(REPO)
    if "DTYPE" not in args.opts and not cpu_has_native_bfloat16():
        print(
            "This CPU has no bfloat16 hardware (AVX512-BF16 / AMX): training in float32 instead of the "
            "config's bfloat16, which would be emulated and about 10x slower.",
            flush=True,
        )
        args.opts += ["DTYPE", "float32"]
    start = time.time()
    command = [
        sys.executable,
        "tools/train_net.py",
        "--config-file",
        CONFIG,
        "OUTPUT_DIR",
        args.output,
        *args.opts,
    ]
    print("$ " + " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)
    minutes = (time.time() - start) / 60

    with open(os.path.join(args.output, "inference", TEST_SET, "coco_results.json")) as f:
        results = json.load(f)["results"]
    pictures = draw_pictures(args.output, args.pictures)
    print(
        f"\nMask R-CNN R-18-FPN trained from scratch on the synthetic shapes, evaluated on {TEST_SET} "
        f"(COCO metrics, %):"
    )
    metrics = list(results["bbox"])
    print(f"{'task':<6}" + "".join(f"{m:>8}" for m in metrics))
    for task, values in results.items():
        print(f"{task:<6}" + "".join(f"{100 * values[m]:8.1f}" for m in metrics))
    print(
        f"\nTraining + evaluation took {minutes:.1f} min. "
        f"Pictures (input | predictions): {os.path.dirname(pictures[0])}/"
    )
    for task in ("bbox", "segm"):
        ap = 100 * results[task]["AP"]
        print(f"{task} AP {ap:.1f}: {'reaches' if ap >= TARGET_AP else 'BELOW'} the demo target of {TARGET_AP:.0f}")


if __name__ == "__main__":
    main()
