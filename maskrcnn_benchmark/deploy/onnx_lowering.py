"""The library's compiled ops as standard ONNX ops, for torch.onnx.export(custom_translation_table=...).

With these, an exported detector runs in any ONNX runtime without a custom-op library:

- ``maskrcnn_benchmark::batched_nms`` -> ``NonMaxSuppression``. The legacy +1 IoU of
  docs/CONVENTIONS.md#nms is the standard IoU of the boxes grown by one pixel to the right and the
  bottom ((x1, y1, x2 + 1, y2 + 1): widths x2 + 1 - x1, intersections min(x2) + 1 - max(x1)), so the
  boxes are shifted before the op. Groups: each distinct value of ``idxs`` is one "class" of the op
  (boxes of other groups get the score -inf, which the op's score threshold drops), so coordinates are
  never offset and no IoU changes. The op keeps a box when IoU > threshold suppresses it (strict, as
  ours) and visits equal scores by lower index first (as ours); the threshold is rounded down to the
  float32 below it, which makes the float32 comparison equal to our float64 one (exact_threshold in
  csrc/nms_common.h). The selected indices are then sorted by (group, index), the op's output order.
  Differences from the op: the IoU is computed as (x2 + 1) - x1 instead of (x2 - x1) + 1, which can
  differ in the last float32 bit (a suppression decision can then differ only for an IoU within one
  rounding of the threshold); NaN and -inf scores are dropped instead of being visited last (the
  exported graph never passes them: its candidates have finite scores).
- ``maskrcnn_benchmark::roi_align_forward`` -> ``RoiAlign`` (opset 16) with
  coordinate_transformation_mode "output_half_pixel" (the original's non-aligned ROIAlign: no
  half-pixel shift, RoIs at least 1 x 1) or "half_pixel" (aligned=True), mode "avg", the same
  sampling_ratio (0: adaptive, ceil(roi_size / output_size), as ours for <= 0) and spatial_scale.
"""

from typing import Callable, Dict

import numpy as np
import torch
from onnxscript import FLOAT, INT64
from onnxscript import opset18 as op

_INT64_MAX = np.iinfo(np.int64).max
_FLOAT_LOWEST = float(np.finfo(np.float32).min)


def float32_threshold(threshold: float) -> float:
    """The largest float32 t with (v > t) == (float64(v) > threshold) for every float32 v."""
    t = np.float32(threshold)
    if float(t) > threshold:
        t = np.nextafter(t, np.float32(-np.inf))
    return float(t)


def batched_nms(dets: FLOAT, scores: FLOAT, idxs: INT64, iou_threshold: float) -> INT64:
    """maskrcnn_benchmark::batched_nms(dets [N, 4], scores [N], idxs [N], thr) -> kept indices [K]
    ordered by idxs, then index (see the module docstring)."""
    boxes = op.Add(dets, op.Constant(value_floats=[0.0, 0.0, 1.0, 1.0]))
    idxs = op.Cast(idxs, to=INT64.dtype)
    # N, at least 1: onnxruntime rejects an integer division by zero even of an empty tensor.
    num_boxes = op.Max(op.Shape(dets, start=0, end=1), op.Constant(value_ints=[1]))
    # Dense group ids 0 .. G-1 from idxs - min(idxs); the appended values keep both reductions
    # defined when there is no box at all.
    lowest = op.ReduceMin(op.Concat(idxs, op.Constant(value_ints=[_INT64_MAX]), axis=0), keepdims=1)
    dense = op.Sub(idxs, lowest)
    num_groups = op.Add(op.ReduceMax(op.Concat(dense, op.Constant(value_ints=[0]), axis=0), keepdims=0), 1)
    group_ids = op.Range(op.Constant(value_int=0), num_groups, op.Constant(value_int=1))
    member = op.Equal(op.Unsqueeze(group_ids, [1]), op.Unsqueeze(dense, [0]))  # [G, N]
    per_group = op.Where(member, op.Unsqueeze(scores, [0]), op.Constant(value_float=float("-inf")))
    selected = op.NonMaxSuppression(
        op.Unsqueeze(boxes, [0]),
        op.Unsqueeze(per_group, [0]),
        op.Constant(value_ints=[_INT64_MAX]),
        op.Constant(value_floats=[float32_threshold(iou_threshold)]),
        op.Constant(value_floats=[_FLOAT_LOWEST]),
    )  # [K, 3] rows (batch 0, group, index), by group then score
    group = op.Squeeze(op.Slice(selected, [1], [2], [1]), [1])
    index = op.Squeeze(op.Slice(selected, [2], [3], [1]), [1])
    key = op.Add(op.Mul(group, num_boxes), index)
    ordered, _ = op.TopK(key, op.Shape(key), axis=0, largest=0, sorted=1)
    return op.Sub(ordered, op.Mul(op.Div(ordered, num_boxes), num_boxes))  # key mod N


def roi_align_forward(
    input: FLOAT,
    rois: FLOAT,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> FLOAT:
    """maskrcnn_benchmark::roi_align_forward(input [N, C, H, W], rois [K, 5] (batch index, x1, y1, x2, y2))
    -> [K, C, pooled_height, pooled_width] (see the module docstring)."""
    batch_indices = op.Cast(op.Squeeze(op.Slice(rois, [0], [1], [1]), [1]), to=INT64.dtype)
    boxes = op.Slice(rois, [1], [5], [1])
    return op.RoiAlign(
        input,
        boxes,
        batch_indices,
        mode="avg",
        output_height=pooled_height,
        output_width=pooled_width,
        sampling_ratio=max(int(sampling_ratio), 0),
        spatial_scale=float(spatial_scale),
        coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel",
    )


def sort_stable(self, stable: bool = False, dim: int = -1, descending: bool = False):
    """aten::sort.stable (no translation in torch's ONNX library) -> TopK over the whole axis: TopK
    orders equal values by lower index first in both directions (ONNX spec), a stable sort."""
    size = op.Shape(self, start=dim, end=dim + 1 if dim != -1 else None)
    return op.TopK(self, size, axis=dim, largest=int(bool(descending)), sorted=1)


def translation_table() -> Dict[Callable, Callable]:
    """torch.onnx.export's custom_translation_table for the ops that the exported graph uses."""
    ops = torch.ops.maskrcnn_benchmark
    return {
        ops.batched_nms.default: batched_nms,
        ops.roi_align_forward.default: roi_align_forward,
        torch.ops.aten.sort.stable: sort_stable,
    }
