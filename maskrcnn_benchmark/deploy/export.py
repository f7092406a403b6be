"""Export a detector's inference to ONNX or to an AOTInductor package (docs/DEPLOY.md).

    model = load_model(cfg, "model_final.pth")                 # eval mode, weights loaded
    export_onnx(model, cfg, "model.onnx")                      # dynamic batch and image size
    export_pt2(model, cfg, "model.pt2", image_size=(800, 1088))  # fixed image size, dynamic batch

Both trace deploy/graph.py's DetectorGraph with torch.export.export (non-strict) and store the
metadata that deploy/runtime.py needs (the config, the input sizes, the output names): ONNX metadata
properties, or the AOTInductor package's metadata (``aoti_load_package(path).get_metadata()``).

Input sizes: `image_size=None` exports a graph for any batch size and any padded image size of at
least `min_image_side(cfg)` pixels (a multiple of DATALOADER.SIZE_DIVISIBILITY when it is > 0);
`image_size=(H, W)` fixes the padded size (the batch size stays free). AOTInductor compiles a fixed
size much faster (minutes for a ResNet-50 on a few CPU cores instead of tens of minutes).
"""

import json
import logging
import math
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from ..config import CfgNode
from .graph import DetectorGraph
from .support import check_config_exportable, check_model_exportable

logger = logging.getLogger(__name__)

FORMAT_VERSION = "1"
MAX_BATCH = 256
MAX_IMAGE_SIDE = 8192
# Inductor options of every pt2 export. layout_optimization=False works around an Inductor bug in
# torch 2.14: with it, a convolution followed by GroupNorm on a batch of data-dependent size (the
# mask head's RoIs) computes wrong values in AOTInductor's C++ wrapper (not in torch.compile's
# Python one). Convolutions still run channels-last: the graph makes the images channels-last as the
# eager model does, and layouts propagate from there.
PT2_INDUCTOR_CONFIGS = {"layout_optimization": False}


def load_model(cfg: CfgNode, weights: Optional[str] = None) -> nn.Module:
    """build_detection_model(cfg) in eval mode on the CPU with `weights` (default cfg.MODEL.WEIGHT;
    "" keeps the random initialisation) loaded; they must cover the whole model."""
    from ..modeling.detector import build_detection_model
    from ..utils.checkpoint import DetectronCheckpointer

    model = build_detection_model(cfg).eval()
    weights = cfg.MODEL.WEIGHT if weights is None else weights
    if weights:
        DetectronCheckpointer(cfg, model, save_dir="").load(weights, use_latest=False, require="all")
    return model


def min_image_side(cfg: CfgNode) -> int:
    """The smallest padded height or width a dynamic-size export accepts: every feature map must be
    at least 2 x 2 (torch.export specialises size-1 dimensions), so one more pixel than the largest
    feature stride, rounded up to SIZE_DIVISIBILITY."""
    stride = max(cfg.MODEL.RPN.ANCHOR_STRIDE)
    if cfg.MODEL.RPN.USE_FPN and cfg.MODEL.BACKBONE.CONV_BODY.endswith("FPN"):
        stride = max(stride, 64)  # P6 (max-pooled P5) is built even where no anchor uses it
    side = stride + 1
    divisor = cfg.DATALOADER.SIZE_DIVISIBILITY
    return math.ceil(side / divisor) * divisor if divisor > 0 else side


def _example_inputs(cfg: CfgNode, image_size: Optional[Tuple[int, int]]) -> Tuple[torch.Tensor, torch.Tensor]:
    if image_size is None:
        # Distinct sizes, several cells on every feature level, nothing equal to another dimension:
        # torch.export would otherwise assume the equality (or size 1) holds for every input.
        unit = max(cfg.DATALOADER.SIZE_DIVISIBILITY, 32)
        height, width = 5 * unit, 7 * unit
        height, width = max(height, 2 * min_image_side(cfg)), max(width, 3 * min_image_side(cfg))
    else:
        height, width = image_size
    images = torch.zeros(2, 3, height, width)
    image_sizes = torch.tensor([[height, width], [max(height - 7, 1), max(width - 5, 1)]], dtype=torch.int64)
    return images, image_sizes


def _dynamic_shapes(cfg: CfgNode, image_size: Optional[Tuple[int, int]]):
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    if image_size is not None:
        return ({0: batch}, {0: batch})
    low, divisor = min_image_side(cfg), cfg.DATALOADER.SIZE_DIVISIBILITY
    if divisor > 0:
        # Multiples of the divisor: the feature-map sizes are then plain multiples of a symbol, which
        # keeps Inductor's index simplification (most of a dynamic pt2 compile) tractable.
        blocks_h = torch.export.Dim("height_blocks", min=low // divisor, max=MAX_IMAGE_SIDE // divisor)
        blocks_w = torch.export.Dim("width_blocks", min=low // divisor, max=MAX_IMAGE_SIDE // divisor)
        height, width = divisor * blocks_h, divisor * blocks_w
    else:
        height = torch.export.Dim("height", min=low, max=MAX_IMAGE_SIDE)
        width = torch.export.Dim("width", min=low, max=MAX_IMAGE_SIDE)
    return ({0: batch, 2: height, 3: width}, {0: batch})


def export_program(
    model: nn.Module, cfg: CfgNode, image_size: Optional[Sequence[int]] = None
) -> Tuple[torch.export.ExportedProgram, DetectorGraph]:
    """torch.export.export of DetectorGraph(model) (see the module docstring for image_size)."""
    check_config_exportable(cfg)
    check_model_exportable(model)
    size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
    if size is not None and (size[0] < 1 or size[1] < 1):
        raise ValueError(f"image_size must be two positive numbers (height, width), got {image_size}")
    graph = DetectorGraph(model)
    start = time.perf_counter()
    with torch.no_grad():
        program = torch.export.export(
            graph, _example_inputs(cfg, size), dynamic_shapes=_dynamic_shapes(cfg, size), strict=False
        )
    logger.info("torch.export: %.1f s", time.perf_counter() - start)
    return program, graph


def metadata(cfg: CfgNode, graph: DetectorGraph, fmt: str, image_size: Optional[Sequence[int]]) -> Dict[str, str]:
    """What runtime.py reads back: format, config (YAML), input sizes, output names."""
    return {
        "maskrcnn_benchmark.format_version": FORMAT_VERSION,
        "maskrcnn_benchmark.format": fmt,
        "maskrcnn_benchmark.config": cfg.dump(),
        "maskrcnn_benchmark.image_size": "dynamic" if image_size is None else f"{image_size[0]}x{image_size[1]}",
        "maskrcnn_benchmark.min_image_side": str(min_image_side(cfg)),
        "maskrcnn_benchmark.outputs": json.dumps(graph.output_names),
    }


def export_onnx(model: nn.Module, cfg: CfgNode, path: str, image_size: Optional[Sequence[int]] = None) -> str:
    """Write the ONNX file (opset 18, one file with the weights) of `model`; returns `path`."""
    from .onnx_lowering import translation_table

    check_config_exportable(cfg, "onnx")
    program, graph = export_program(model, cfg, image_size)
    start = time.perf_counter()
    onnx_program = torch.onnx.export(
        program,
        dynamo=True,
        custom_translation_table=translation_table(),
        input_names=["images", "image_sizes"],
        output_names=graph.output_names,
        opset_version=18,
        optimize=True,
        verbose=False,
    )
    onnx_program.model.metadata_props.update(metadata(cfg, graph, "onnx", image_size))
    onnx_program.save(path, external_data=False)
    logger.info("ONNX conversion: %.1f s -> %s", time.perf_counter() - start, path)
    return path


def export_pt2(
    model: nn.Module,
    cfg: CfgNode,
    path: str,
    image_size: Optional[Sequence[int]] = None,
    inductor_configs: Optional[Dict[str, Any]] = None,
) -> str:
    """Compile `model` with AOTInductor into the package `path` (.pt2); returns `path`.

    inductor_configs: extra Inductor options (e.g. {"aot_inductor.debug_compile": True} compiles the
    C++ at -O0: faster to build, slower to run)."""
    check_config_exportable(cfg, "pt2")
    program, graph = export_program(model, cfg, image_size)
    options = {**PT2_INDUCTOR_CONFIGS, **(inductor_configs or {})}
    options["aot_inductor.metadata"] = metadata(cfg, graph, "pt2", image_size)
    start = time.perf_counter()
    torch._inductor.aoti_compile_and_package(program, package_path=path, inductor_configs=options)
    logger.info("AOTInductor compilation: %.1f s -> %s", time.perf_counter() - start, path)
    return path


def export_model(
    model: nn.Module, cfg: CfgNode, fmt: str, path: str, image_size: Optional[Sequence[int]] = None, **kwargs: Any
) -> str:
    """export_onnx or export_pt2 by `fmt` ("onnx" or "pt2")."""
    check_config_exportable(cfg, fmt)
    if fmt == "onnx":
        return export_onnx(model, cfg, path, image_size, **kwargs)
    return export_pt2(model, cfg, path, image_size, **kwargs)
