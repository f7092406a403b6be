"""Non-maximum suppression with the original library's conventions.

``nms(boxes, scores, nms_thresh)`` is the original ``maskrcnn_benchmark.layers.nms`` (there:
``amp.float_function(_C.nms)``); ``batched_nms`` is new. Both are compiled ops,
``torch.ops.maskrcnn_benchmark.nms`` / ``.batched_nms``, with CPU and CUDA kernels, and work under
``torch.compile`` (fake kernels with a data-dependent output size are defined here and registered by
``maskrcnn_benchmark.layers``, see ``FAKE_KERNELS``).

NMS semantics: docs/CONVENTIONS.md#nms
"""

from __future__ import annotations

import torch
from torch import Tensor

import maskrcnn_benchmark._C  # noqa: F401  (registers torch.ops.maskrcnn_benchmark.*)

__all__ = ["nms", "batched_nms"]


def nms(boxes: Tensor, scores: Tensor, nms_thresh: float) -> Tensor:
    """Greedy NMS; returns the int64 indices of the kept boxes (docs/CONVENTIONS.md#nms).

    Args:
        boxes: ``[N, 4]`` floating tensor of ``(x1, y1, x2, y2)``.
        scores: ``[N]`` floating tensor.
        nms_thresh: IoU threshold.
    """
    return torch.ops.maskrcnn_benchmark.nms(boxes, scores, float(nms_thresh))


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, nms_thresh: float) -> Tensor:
    """NMS within each distinct value of ``idxs`` (class id, FPN level, image), as the original box
    head ran it class by class; returns int64 indices (docs/CONVENTIONS.md#nms).

    Args:
        boxes: ``[N, 4]`` floating tensor.
        scores: ``[N]`` floating tensor.
        idxs: ``[N]`` integer tensor of group ids (any values, negative included).
        nms_thresh: IoU threshold.
    """
    return torch.ops.maskrcnn_benchmark.batched_nms(boxes, scores, idxs, float(nms_thresh))


def _check_boxes_scores(op: str, dets: Tensor, scores: Tensor) -> None:
    # Mirrors the C++ checks so that fake tensors fail the same way.
    torch._check(
        dets.dim() == 2 and dets.shape[1] == 4,
        lambda: f"{op}: dets (boxes) must have shape [N, 4], got {list(dets.shape)}",
    )
    torch._check(scores.dim() == 1, lambda: f"{op}: scores must have shape [N], got {list(scores.shape)}")
    torch._check(
        dets.shape[0] == scores.shape[0],
        lambda: (
            f"{op}: dets and scores must have the same length, got {dets.shape[0]} boxes and {scores.shape[0]} scores"
        ),
    )
    torch._check(
        dets.device == scores.device,
        lambda: (
            f"{op}: dets and scores must be on the same device, got dets on {dets.device} and scores on {scores.device}"
        ),
    )
    torch._check(
        dets.dtype.is_floating_point,
        lambda: f"{op}: dets (boxes) must be a floating-point tensor, got {dets.dtype}",
    )
    torch._check(
        scores.dtype.is_floating_point,
        lambda: f"{op}: scores must be a floating-point tensor, got {scores.dtype}",
    )


def _kept_indices_like(dets: Tensor) -> Tensor:
    # 0 <= number kept <= N; the upper bound can only be given when N is a plain int (static shape).
    n_boxes = dets.shape[0]
    ctx = torch.library.get_ctx()
    n = ctx.new_dynamic_size(max=n_boxes) if isinstance(n_boxes, int) else ctx.new_dynamic_size()
    return dets.new_empty((n,), dtype=torch.long)


def _nms_fake(dets: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    _check_boxes_scores("nms", dets, scores)
    return _kept_indices_like(dets)


def _batched_nms_fake(dets: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    _check_boxes_scores("batched_nms", dets, scores)
    torch._check(idxs.dim() == 1, lambda: f"batched_nms: idxs must have shape [N], got {list(idxs.shape)}")
    torch._check(
        idxs.shape[0] == dets.shape[0],
        lambda: (
            f"batched_nms: idxs and dets must have the same length, got {idxs.shape[0]} idxs and {dets.shape[0]} boxes"
        ),
    )
    torch._check(
        idxs.device == dets.device,
        lambda: (
            f"batched_nms: idxs and dets must be on the same device, got idxs on {idxs.device} "
            f"and dets on {dets.device}"
        ),
    )
    torch._check(
        not idxs.dtype.is_floating_point and not idxs.dtype.is_complex,
        lambda: f"batched_nms: idxs must be an integer tensor, got {idxs.dtype}",
    )
    return _kept_indices_like(dets)


FAKE_KERNELS = {
    "maskrcnn_benchmark::nms": _nms_fake,
    "maskrcnn_benchmark::batched_nms": _batched_nms_fake,
}
