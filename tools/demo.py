r"""Draw a detector's predictions on images, a folder, a video or a camera (the original demo's look:
boxes, mask outlines, keypoints, "name: score").

    python tools/demo.py --config-file CONFIG --input INPUT [--output OUTPUT] [--weights PATH]
                         [--confidence-threshold 0.5] [--show-mask-heatmaps] [KEY VALUE ...]

INPUT is an image, a folder (all its images), a glob pattern in quotes ("photos/*.jpg"), a video
(.mp4, .avi, ...) or a camera index (0). OUTPUT is a folder (annotated files keep their names; a
video becomes OUTPUT/<name>.mp4), or, for a single input, a file name (.png/.jpg, or .mp4/.avi for
videos and cameras). Without OUTPUT a camera is shown in a window (ESC quits).

Weights: --weights, else the last checkpoint of OUTPUT_DIR, else MODEL.WEIGHT. Class names: labels.json
next to the weights or in OUTPUT_DIR (tools/train_net.py writes it), else COCO's for 81 classes.
On a machine without a GPU add `MODEL.DEVICE cpu`, e.g. after `make demo`:

    python tools/demo.py --config-file configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml \
        --weights output/demo/model_final.pth --input datasets/synthetic_shapes/val --output output/demo/drawn
"""

import argparse
import logging
import os
import sys
import time

import cv2
from tqdm import tqdm

from maskrcnn_benchmark.engine.cli import load_config
from maskrcnn_benchmark.engine.predictor import COCODemo
from maskrcnn_benchmark.utils import demo_io


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument("--weights", default=None, help="checkpoint (.pth/.pkl), catalog:// name or URL")
    parser.add_argument("--input", required=True, help="image, folder, glob pattern, video or camera index")
    parser.add_argument("--output", default=None, help="folder, or a file name for a single input")
    parser.add_argument("--confidence-threshold", type=float, default=0.5, help="minimum score to draw")
    parser.add_argument("--show-mask-heatmaps", action="store_true", help="draw a montage of mask heat maps instead")
    parser.add_argument("--masks-per-dim", type=int, default=2, help="montage grid size (heat maps)")
    parser.add_argument("--max-frames", type=int, default=0, help="stop a video or camera after N frames (0: all)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE pairs")
    return parser.parse_args(argv)


def run_on_files(demo: COCODemo, files, output: str, batch_size: int, max_frames: int) -> None:
    """Annotate images (batched, progress bar) and videos (one by one) into `output`."""
    single = len(files) == 1
    root = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])
    images = [f for f in files if demo_io.is_image(f)]
    progress = tqdm(total=len(images), desc="images", unit="image", disable=len(images) < 2)
    for chunk in demo_io.batches(iter(images), batch_size):
        frames = []
        for path in chunk:
            frame = cv2.imread(path, cv2.IMREAD_COLOR)
            if frame is None:
                raise OSError(f"OpenCV cannot read image {path}")
            frames.append(frame)
        for path, drawn in zip(chunk, demo.run_on_opencv_images(frames)):
            extension = None if path.lower().endswith((".png", ".jpg", ".jpeg")) else ".png"
            demo_io.write_image(demo_io.output_path_for(os.path.abspath(path), root, output, single, extension), drawn)
        progress.update(len(chunk))
    progress.close()
    for path in (f for f in files if demo_io.is_video(f)):
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise OSError(f"OpenCV cannot open video {path}")
        target = demo_io.output_path_for(os.path.abspath(path), root, output, single, ".mp4")
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        writer = demo_io.open_video_writer(target, capture.get(cv2.CAP_PROP_FPS), size)
        try:
            count = demo_io.annotate_stream(
                demo.run_on_opencv_images,
                capture,
                writer,
                max_frames=max_frames,
                batch_size=batch_size,
                description=os.path.basename(path),
            )
        finally:
            writer.release()
            capture.release()
        print(f"{path}: {count} frames -> {target}")


def run_on_camera(demo: COCODemo, index: int, output: str, max_frames: int) -> None:
    """Frames of camera `index`, written to a video (output) or shown in a window."""
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise OSError(f"cannot open camera {index}")
    writer = None
    if output:
        target = output if demo_io.is_video(output) else os.path.join(output, f"camera{index}.mp4")
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        writer = demo_io.open_video_writer(target, capture.get(cv2.CAP_PROP_FPS), size)
    start = time.time()
    try:
        count = demo_io.annotate_stream(
            demo.run_on_opencv_images,
            capture,
            writer,
            window=None if output else "COCO detections",
            max_frames=max_frames,
            description=f"camera {index}",
        )
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        else:
            demo_io.close_windows()
    print(f"camera {index}: {count} frames, {(time.time() - start) / max(count, 1):.3f} s / frame")


def main(argv=None) -> None:
    args = parse_args(argv)
    kind, source = demo_io.resolve_input(args.input)
    if kind == "files" and not args.output:
        sys.exit("--output is needed for images and videos (a folder, or a file name for a single input)")
    cfg = load_config(args)
    # INFO on the console (which weights and class names are used), without the per-tensor DEBUG lines.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    demo = COCODemo(
        cfg,
        confidence_threshold=args.confidence_threshold,
        show_mask_heatmaps=args.show_mask_heatmaps,
        masks_per_dim=args.masks_per_dim,
        weight_loading=args.weights,
    )
    if kind == "camera":
        run_on_camera(demo, source, args.output, args.max_frames)
    else:
        run_on_files(demo, source, args.output, max(cfg.TEST.IMS_PER_BATCH, 1), args.max_frames)
        print(f"annotated {len(source)} file(s) into {args.output}")


if __name__ == "__main__":
    main()
