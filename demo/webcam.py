r"""Live detections from a camera (the original demo/webcam.py command line).

    python demo/webcam.py --config-file CONFIG [--confidence-threshold 0.7] [--min-image-size 300]
                          [--show-mask-heatmaps] [--masks-per-dim 2] [KEY VALUE ...]
    python demo/webcam.py --min-image-size 300 MODEL.DEVICE cpu

Shows the annotated frames in a window ("COCO detections"; ESC quits) and prints the time per frame.
Added flags: --camera (index, default 0), --output (write an .mp4/.avi instead of showing, e.g. with
opencv-python-headless, which has no windows) and --max-frames. --min-image-size sets
INPUT.MIN_SIZE_TEST; the original accepted it (default 224) but ignored it.
"""

import argparse
import logging
import os
import time

import cv2

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.engine.predictor import COCODemo
from maskrcnn_benchmark.utils import demo_io

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, "..", "configs", "caffe2", "e2e_mask_rcnn_R_50_FPN_1x_caffe2.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description="PyTorch Object Detection Webcam Demo")
    parser.add_argument("--config-file", default=DEFAULT_CONFIG, metavar="FILE", help="path to config file")
    parser.add_argument(
        "--confidence-threshold", type=float, default=0.7, help="Minimum score for the prediction to be shown"
    )
    parser.add_argument(
        "--min-image-size",
        type=int,
        default=None,
        help="Smallest size of the image to feed to the model (INPUT.MIN_SIZE_TEST)",
    )
    parser.add_argument(
        "--show-mask-heatmaps",
        dest="show_mask_heatmaps",
        action="store_true",
        help="Show a heatmap probability for the top masks-per-dim masks",
    )
    parser.add_argument("--masks-per-dim", type=int, default=2, help="Number of heatmaps per dimension to show")
    parser.add_argument("--camera", type=int, default=0, help="camera index for cv2.VideoCapture")
    parser.add_argument("--output", default=None, help="write the frames to this video file instead of showing them")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: until ESC)")
    parser.add_argument(
        "opts", help="Modify model config options using the command-line", default=None, nargs=argparse.REMAINDER
    )
    args = parser.parse_args()

    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    if args.min_image_size is not None:
        cfg.merge_from_list(["INPUT.MIN_SIZE_TEST", str(args.min_image_size)])
    cfg.freeze()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")

    coco_demo = COCODemo(
        cfg,
        confidence_threshold=args.confidence_threshold,
        show_mask_heatmaps=args.show_mask_heatmaps,
        masks_per_dim=args.masks_per_dim,
        min_image_size=args.min_image_size or 224,
    )
    cam = cv2.VideoCapture(args.camera)
    if not cam.isOpened():
        raise SystemExit(f"cannot open camera {args.camera}")
    writer = None
    if args.output:
        size = (int(cam.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cam.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        writer = demo_io.open_video_writer(args.output, cam.get(cv2.CAP_PROP_FPS), size)

    def annotate(frames):
        start = time.time()
        drawn = [coco_demo.run_on_opencv_image(frame) for frame in frames]
        print("Time: {:.2f} s / img".format(time.time() - start))
        return drawn

    try:
        demo_io.annotate_stream(
            annotate,
            cam,
            writer,
            window=None if writer else "COCO detections",
            max_frames=args.max_frames,
            progress_bar=False,
        )
    finally:
        cam.release()
        if writer is not None:
            writer.release()
        demo_io.close_windows()


if __name__ == "__main__":
    main()
