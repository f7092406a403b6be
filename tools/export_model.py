r"""Export a trained detector's inference to ONNX or to a self-contained AOTInductor package.

    python tools/export_model.py --config-file CONFIG [--weights PATH] --format onnx|pt2 \
        [--image-size H W | --image-size dynamic] --output FILE [KEY VALUE ...]

--format onnx: an ONNX file (opset 18) that onnxruntime runs with no custom-op library.
--format pt2: an AOTInductor package (torch._inductor.aoti_load_package); it calls this library's
  NMS and ROIAlign ops, registered with torch.ops.load_library(<maskrcnn_benchmark/_C*.so>).
--image-size H W: the padded network-input size, fixed (the batch size stays free); dynamic (the
  default): any batch size and image size (pt2: much longer to compile).
--weights: the checkpoint (default: MODEL.WEIGHT; "" exports random weights, with a warning).

Exported: Faster / Mask / Keypoint R-CNN (C4 and FPN) in eval mode, float32; not exported: training
mode, test-time augmentation, RetinaNet, RPN-only, FBNet and deformable-convolution models (the tool
says why and exits with status 2).
Run the file with maskrcnn_benchmark.deploy.load_onnx / load_pt2; inputs, outputs and the
pre-processing are described in docs/DEPLOY.md. Example, after `make demo`:

    python tools/export_model.py --config-file configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml \
        --weights output/demo/model_final.pth --format onnx --output output/demo/model.onnx
"""

import argparse
import logging
import sys
import time
import warnings

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.config.checks import check_config
from maskrcnn_benchmark.deploy import FORMATS, NotExportableError, check_config_exportable, export_model, load_model


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument("--weights", default=None, help="checkpoint (.pth/.pkl), catalog:// name or URL")
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx or pt2")
    parser.add_argument(
        "--image-size", nargs="+", default=["dynamic"], metavar="H W", help="fixed padded input size, or dynamic"
    )
    parser.add_argument("--output", required=True, help="the file to write (.onnx or .pt2)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE pairs")
    args = parser.parse_args(argv)
    if args.image_size == ["dynamic"]:
        args.image_size = None
    elif len(args.image_size) == 2 and all(v.isdigit() and int(v) > 0 for v in args.image_size):
        args.image_size = (int(args.image_size[0]), int(args.image_size[1]))
    else:
        parser.error(f"--image-size takes two positive integers H W or 'dynamic', got {' '.join(args.image_size)}")
    return args


def load_config(args: argparse.Namespace):
    """A copy of the default config with the file and the overrides merged, checked and frozen (the
    global one is left as it is, so that main() can be called more than once in a process)."""
    cfg = global_cfg.clone()
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    check_config(cfg)
    cfg.freeze()
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    cfg = load_config(args)
    try:
        check_config_exportable(cfg, args.format)  # before building anything
        weights = cfg.MODEL.WEIGHT if args.weights is None else args.weights
        if not weights:
            warnings.warn(
                "no weights (--weights or MODEL.WEIGHT): exporting RANDOM weights", RuntimeWarning, stacklevel=1
            )
        model = load_model(cfg, weights)
        start = time.perf_counter()
        export_model(model, cfg, args.format, args.output, args.image_size)
    except NotExportableError as e:
        print(f"export_model.py: cannot export: {e}", file=sys.stderr)
        return 2
    logging.getLogger("export_model").info("wrote %s in %.1f s", args.output, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
