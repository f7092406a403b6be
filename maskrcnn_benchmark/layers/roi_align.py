"""ROIAlign: bilinear RoI feature pooling (the original's ``maskrcnn_benchmark.layers.roi_align``).

Box convention: ``rois`` is a float tensor ``[K, 5]`` of ``(batch_index, x1, y1, x2, y2)`` in
input-image pixels; ``spatial_scale`` (e.g. 1/4 for a stride-4 feature map) maps them onto the
feature map ``input [N, C, H, W]``. The result is ``[K, C, pooled_h, pooled_w]`` in the dtype of
``input`` (half and bfloat16 are computed in float32 inside; ``rois`` may have another float dtype).

``aligned=False`` (default) is the original's (Detectron) ROIAlign, identical to
``torchvision.ops.roi_align(..., aligned=False)``: the box is scaled without a half-pixel shift and
its size is forced to be at least 1. ``aligned=True`` shifts the scaled box by -0.5 pixel and does
not force its size (detectron2 / torchvision ``aligned=True``). ``sampling_ratio`` is the number of
bilinear samples per bin along each axis; ``<= 0`` uses ``ceil(roi_size / output_size)`` per RoI.

The gradient with respect to ``input`` is returned as a contiguous (NCHW) tensor whatever the
input layout; no gradient flows to ``rois``. The compiled kernels are
``torch.ops.maskrcnn_benchmark.roi_align_forward`` / ``roi_align_backward`` (CPU and CUDA). This module registers their autograd formula (including double backward: the
backward is linear in the gradient, so its own gradient is the forward) and their meta kernels,
so they work under ``torch.compile(fullgraph=True)`` and ``torch.export``.
"""
from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from maskrcnn_benchmark import _C  # noqa: F401  (registers torch.ops.maskrcnn_benchmark.*)

__all__ = ["roi_align", "ROIAlign"]

_ops = torch.ops.maskrcnn_benchmark
_lib = torch.library.Library("maskrcnn_benchmark", "IMPL")  # noqa: TOR901 (kept alive by the module)


def _convert_boxes_to_roi_format(boxes: Sequence[Tensor]) -> Tensor:
    """List of per-image ``[L_i, 4]`` boxes -> ``[sum L_i, 5]`` rois with the image index first."""
    rois = [
        torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)
    ]
    return torch.cat(rois, dim=0)


def roi_align(
    input: Tensor,
    rois: Union[Tensor, List[Tensor]],
    output_size: Union[int, Tuple[int, int]],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool = False,
) -> Tensor:
    """Pools ``input [N, C, H, W]`` over ``rois [K, 5]`` into ``[K, C, output_h, output_w]``.

    Args:
        input: feature map ``[N, C, H, W]`` (float32/float64/float16/bfloat16, NCHW or channels-last).
        rois: ``[K, 5]`` rows ``(batch_index, x1, y1, x2, y2)`` in image pixels, or a list of
            per-image ``[L, 4]`` box tensors.
        output_size: ``int`` or ``(output_h, output_w)``.
        spatial_scale: factor mapping image coordinates to ``input`` coordinates.
        sampling_ratio: samples per bin and axis; ``<= 0`` means adaptive (``ceil(roi_size / output_size)``).
        aligned: shift the box by -0.5 pixel (pixel-center alignment) instead of the original behaviour.
    """
    if isinstance(rois, (list, tuple)):
        rois = _convert_boxes_to_roi_format(rois)
    output_h, output_w = _pair(output_size)
    return _ops.roi_align_forward(
        input, rois, float(spatial_scale), int(output_h), int(output_w), int(sampling_ratio), bool(aligned)
    )


class ROIAlign(nn.Module):
    """Module form of :func:`roi_align` (``forward(input [N, C, H, W], rois [K, 5]) -> [K, C, h, w]``)."""

    def __init__(self, output_size, spatial_scale, sampling_ratio, aligned=False):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def __repr__(self):
        tmpstr = self.__class__.__name__ + "("
        tmpstr += "output_size=" + str(self.output_size)
        tmpstr += ", spatial_scale=" + str(self.spatial_scale)
        tmpstr += ", sampling_ratio=" + str(self.sampling_ratio)
        if self.aligned:
            tmpstr += ", aligned=True"
        tmpstr += ")"
        return tmpstr


# ------------------------------------------------------------------------------------------------
# Meta kernels (shape/dtype only; used by FakeTensor, torch.compile and torch.export). They are
# registered as Meta kernels rather than with torch.library.register_fake because the library sets
# m.set_python_module("maskrcnn_benchmark.layers"), which makes register_fake accept only calls made
# from that exact module.


def _check_rois(rois: Tensor, device: torch.device, fn: str) -> None:
    torch._check(
        rois.dim() == 2 and rois.shape[1] == 5,
        lambda: f"{fn}: rois must be a 2-D tensor [K, 5] of (batch_index, x1, y1, x2, y2), got shape {tuple(rois.shape)}",
    )
    torch._check(rois.dtype.is_floating_point, lambda: f"{fn}: rois must have a floating-point dtype, got {rois.dtype}")
    torch._check(
        rois.device == device, lambda: f"{fn}: rois must be on the same device as input ({device}), got {rois.device}"
    )


def _roi_align_forward_meta(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned):
    fn = "roi_align_forward"
    torch._check(input.dim() == 4, lambda: f"{fn}: input must be a 4-D tensor [N, C, H, W], got {input.dim()}-D")
    torch._check(
        input.dtype.is_floating_point, lambda: f"{fn}: input must have a floating-point dtype, got {input.dtype}"
    )
    _check_rois(rois, input.device, fn)
    torch._check(
        pooled_height > 0 and pooled_width > 0, lambda: f"{fn}: pooled_height and pooled_width must be positive"
    )
    return input.new_empty((rois.shape[0], input.shape[1], pooled_height, pooled_width))


def _roi_align_backward_meta(
    grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width, sampling_ratio, aligned
):
    fn = "roi_align_backward"
    torch._check(grad.dtype.is_floating_point, lambda: f"{fn}: grad must have a floating-point dtype, got {grad.dtype}")
    _check_rois(rois, grad.device, fn)
    torch._check(
        grad.dim() == 4
        and grad.shape[0] == rois.shape[0]
        and grad.shape[1] == channels
        and grad.shape[2] == pooled_height
        and grad.shape[3] == pooled_width,
        lambda: f"{fn}: grad must have shape [K, channels, pooled_height, pooled_width], got {tuple(grad.shape)}",
    )
    return grad.new_empty((batch_size, channels, height, width))


_lib.impl("roi_align_forward", _roi_align_forward_meta, "Meta")
_lib.impl("roi_align_backward", _roi_align_backward_meta, "Meta")


# ------------------------------------------------------------------------------------------------
# Autograd. ROIAlign is linear in `input`; its backward is the adjoint map, linear in `grad`, whose
# own adjoint is the forward again. Gradients with respect to the boxes are not computed (None),
# as in the original.


def _forward_setup_context(ctx, inputs, output):
    input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned = inputs
    ctx.save_for_backward(rois)
    ctx.input_shape = tuple(input.shape)
    ctx.params = (spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)


def _forward_backward(ctx, grad):
    if not ctx.needs_input_grad[0]:
        return None, None, None, None, None, None, None
    (rois,) = ctx.saved_tensors
    spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned = ctx.params
    batch_size, channels, height, width = ctx.input_shape
    grad_input = _ops.roi_align_backward(
        grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width, sampling_ratio, aligned
    )
    return grad_input, None, None, None, None, None, None


def _backward_setup_context(ctx, inputs, output):
    grad, rois, spatial_scale, pooled_height, pooled_width, _, _, _, _, sampling_ratio, aligned = inputs
    ctx.save_for_backward(rois)
    ctx.params = (spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)


def _backward_backward(ctx, grad_grad_input):
    nones = (None,) * 10
    if not ctx.needs_input_grad[0]:
        return (None,) + nones
    (rois,) = ctx.saved_tensors
    spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned = ctx.params
    grad_grad = _ops.roi_align_forward(
        grad_grad_input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned
    )
    return (grad_grad,) + nones


torch.library.register_autograd(
    "maskrcnn_benchmark::roi_align_forward", _forward_backward, setup_context=_forward_setup_context, lib=_lib
)
torch.library.register_autograd(
    "maskrcnn_benchmark::roi_align_backward", _backward_backward, setup_context=_backward_setup_context, lib=_lib
)
