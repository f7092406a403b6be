"""ROIPool: max pooling over RoI bins (the original's ``maskrcnn_benchmark.layers.roi_pool``).

Box convention: ``rois`` is a float tensor ``[K, 5]`` of ``(batch_index, x1, y1, x2, y2)`` in
input-image pixels; ``spatial_scale`` maps them onto ``input [N, C, H, W]``. The result is
``[K, C, pooled_h, pooled_w]`` in the dtype of ``input``.

Caffe-style quantisation, as in the original CUDA kernel and ``torchvision.ops.roi_pool``: the box
corners are rounded (``round(x * spatial_scale)``), sizes count both ends (``end - start + 1``, at
least 1), bin ``i`` covers ``[floor(i * bin), ceil((i + 1) * bin))`` + start, clipped to the map.
Each output is the bin's maximum; an empty bin gives 0. The compiled op
``torch.ops.maskrcnn_benchmark.roi_pool_forward`` also returns the argmax (int32 flat index
``h * W + w`` in the input plane, -1 for empty bins) that the backward uses. The original only had a
CUDA implementation; this one also runs on the CPU.
On CUDA, ``roi_pool`` runs torchvision's kernel (faster there, same function; see
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

__all__ = ["roi_pool", "ROIPool"]

_ops = torch.ops.maskrcnn_benchmark


def roi_pool(
    input: Tensor,
    rois: Union[Tensor, List[Tensor]],
    output_size: Union[int, Tuple[int, int]],
    spatial_scale: float,
) -> Tensor:
    """Max-pools ``input [N, C, H, W]`` over ``rois [K, 5]`` into ``[K, C, output_h, output_w]``.

    Args:
        input: feature map ``[N, C, H, W]`` (float32/float64/float16/bfloat16, NCHW or channels-last).
        rois: ``[K, 5]`` rows ``(batch_index, x1, y1, x2, y2)`` in image pixels, or a list of
            per-image ``[L, 4]`` box tensors.
        output_size: ``int`` or ``(output_h, output_w)``.
        spatial_scale: factor mapping image coordinates to ``input`` coordinates.
    """
    if isinstance(rois, (list, tuple)):
        rois = convert_boxes_to_roi_format(rois)
    output_h, output_w = _pair(output_size)
    if torchvision_kernel_for(input):
        return torchvision.ops.roi_pool(input.float(), rois.float(), (output_h, output_w), float(spatial_scale)).to(
            input.dtype
        )
    output, _ = _ops.roi_pool_forward(input, rois, float(spatial_scale), int(output_h), int(output_w))
    return output


class ROIPool(nn.Module):
    """Module form of :func:`roi_pool` (``forward(input [N, C, H, W], rois [K, 5]) -> [K, C, h, w]``)."""

    def __init__(self, output_size, spatial_scale):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def __repr__(self):
        tmpstr = self.__class__.__name__ + "("
        tmpstr += "output_size=" + str(self.output_size)
        tmpstr += ", spatial_scale=" + str(self.spatial_scale)
        tmpstr += ")"
        return tmpstr


# ------------------------------------------------------------------------------------------------
# Fake kernels (see roi_align.py); maskrcnn_benchmark/layers/__init__.py registers FAKE_KERNELS.


def _roi_pool_forward_fake(input, rois, spatial_scale, pooled_height, pooled_width):
    check_forward_args("roi_pool_forward", input, rois, pooled_height, pooled_width)
    shape = (rois.shape[0], input.shape[1], pooled_height, pooled_width)
    return input.new_empty(shape), input.new_empty(shape, dtype=torch.int32)


def _roi_pool_backward_fake(
    grad, rois, argmax, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width
):
    fn = "roi_pool_backward"
    check_backward_args(fn, grad, rois, pooled_height, pooled_width, channels)
    torch._check(
        argmax.shape == grad.shape, lambda: f"{fn}: argmax must have the shape of grad, got {tuple(argmax.shape)}"
    )
    return grad.new_empty((batch_size, channels, height, width))


FAKE_KERNELS = {
    "maskrcnn_benchmark::roi_pool_forward": _roi_pool_forward_fake,
    "maskrcnn_benchmark::roi_pool_backward": _roi_pool_backward_fake,
}


# ------------------------------------------------------------------------------------------------
# Autograd: the backward scatters each output gradient to its argmax; that map is linear in the
# gradient and its adjoint (used for double backward) gathers at the argmax positions.


def _forward_setup_context(ctx, inputs, output):
    input, rois, spatial_scale, pooled_height, pooled_width = inputs
    argmax = output[1]
    ctx.mark_non_differentiable(argmax)
    ctx.save_for_backward(rois, argmax)
    ctx.input_shape = tuple(input.shape)
    ctx.params = (spatial_scale, pooled_height, pooled_width)


def _forward_backward(ctx, grad, grad_argmax):
    if not ctx.needs_input_grad[0]:
        return None, None, None, None, None
    rois, argmax = ctx.saved_tensors
    spatial_scale, pooled_height, pooled_width = ctx.params
    batch_size, channels, height, width = ctx.input_shape
    grad_input = _ops.roi_pool_backward(
        grad, rois, argmax, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width
    )
    return grad_input, None, None, None, None


def _gather_at_argmax(values: Tensor, rois: Tensor, argmax: Tensor) -> Tensor:
    """out[k, c, i, j] = values[rois[k, 0], c].flatten()[argmax[k, c, i, j]] (0 where argmax < 0)."""
    num_rois, channels, pooled_height, pooled_width = argmax.shape
    batch = rois[:, 0].to(torch.int64)
    planes = values.reshape(values.shape[0], values.shape[1], -1)[batch]  # [K, C, H * W]
    index = argmax.to(torch.int64).clamp(min=0).reshape(num_rois, channels, -1)
    out = planes.gather(2, index).reshape(argmax.shape)
    return torch.where(argmax >= 0, out, torch.zeros_like(out))


def _backward_setup_context(ctx, inputs, output):
    grad, rois, argmax = inputs[:3]
    ctx.save_for_backward(rois, argmax)


def _backward_backward(ctx, grad_grad_input):
    nones = (None,) * 9
    if not ctx.needs_input_grad[0]:
        return (None,) + nones
    rois, argmax = ctx.saved_tensors
    return (_gather_at_argmax(grad_grad_input, rois, argmax),) + nones


torch.library.register_autograd(
    "maskrcnn_benchmark::roi_pool_forward", _forward_backward, setup_context=_forward_setup_context
)
torch.library.register_autograd(
    "maskrcnn_benchmark::roi_pool_backward", _backward_backward, setup_context=_backward_setup_context
)
