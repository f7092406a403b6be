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
``torch.ops.maskrcnn_benchmark.roi_align_forward`` / ``roi_align_backward`` (CPU and CUDA). This
module registers their autograd formula (including double backward: the backward is linear in the
gradient, so its own gradient is the forward) and defines their fake kernels (registered by
``maskrcnn_benchmark.layers``, see ``FAKE_KERNELS``), so they work under
``torch.compile(fullgraph=True)`` and ``torch.export``.
On CUDA, ``roi_align`` runs torchvision's kernel (faster there, same function; see
``_roi_common.TORCHVISION_KERNELS_ON_CUDA``); the op above stays available.
"""

from typing import List, Tuple, Union

import torch
import torchvision
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from maskrcnn_benchmark import _C  # noqa: F401  (registers torch.ops.maskrcnn_benchmark.*)
from maskrcnn_benchmark.layers._roi_common import (
    check_backward_args,
    check_forward_args,
    convert_boxes_to_roi_format,
    torchvision_kernel_for,
)

__all__ = ["roi_align", "ROIAlign"]

_ops = torch.ops.maskrcnn_benchmark


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
        rois = convert_boxes_to_roi_format(rois)
    output_h, output_w = _pair(output_size)
    if torchvision_kernel_for(input):
        # Computed in float32 as our kernels do for half types; the result in the input's dtype.
        return torchvision.ops.roi_align(
            input.float(), rois.float(), (output_h, output_w), float(spatial_scale), int(sampling_ratio), bool(aligned)
        ).to(input.dtype)
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
# Fake kernels (shape/dtype only; used by FakeTensor, meta tensors, torch.compile and torch.export).
# maskrcnn_benchmark/layers/__init__.py registers FAKE_KERNELS.


def _roi_align_forward_fake(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned):
    check_forward_args("roi_align_forward", input, rois, pooled_height, pooled_width)
    return input.new_empty((rois.shape[0], input.shape[1], pooled_height, pooled_width))


def _roi_align_backward_fake(
    grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width, sampling_ratio, aligned
):
    check_backward_args("roi_align_backward", grad, rois, pooled_height, pooled_width, channels)
    return grad.new_empty((batch_size, channels, height, width))


FAKE_KERNELS = {
    "maskrcnn_benchmark::roi_align_forward": _roi_align_forward_fake,
    "maskrcnn_benchmark::roi_align_backward": _roi_align_backward_fake,
}


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
        grad,
        rois,
        spatial_scale,
        pooled_height,
        pooled_width,
        batch_size,
        channels,
        height,
        width,
        sampling_ratio,
        aligned,
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
    "maskrcnn_benchmark::roi_align_forward", _forward_backward, setup_context=_forward_setup_context
)
torch.library.register_autograd(
    "maskrcnn_benchmark::roi_align_backward", _backward_backward, setup_context=_backward_setup_context
)
