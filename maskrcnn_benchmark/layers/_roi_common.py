"""Helpers shared by :mod:`.roi_align` and :mod:`.roi_pool`: the list-of-boxes -> rois conversion and
the argument checks of their fake kernels (the C++ counterparts are in csrc/roi_common.h)."""

from typing import Sequence

import torch
from torch import Tensor

# On CUDA, torchvision's ROIAlign / ROIPool kernels were faster than this library's (an H200, Mask
# R-CNN box-head workload of benchmarks/ops_roi.py: ours ran at 0.93x / 0.84x of their speed,
# forward + backward), and they compute the same function (aligned=False is the original's
# ROIAlign; ROIPool is the same Caffe rule; tests/layers check both against torchvision on the
# CPU). So `roi_align` / `roi_pool` call torchvision's kernels on CUDA; set this to False to use
# the library's own CUDA kernels (the ops torch.ops.maskrcnn_benchmark.* always do).
TORCHVISION_KERNELS_ON_CUDA = True


def torchvision_kernel_for(input: Tensor) -> bool:
    """Whether `roi_align` / `roi_pool` hand `input` to torchvision's kernel (see above)."""
    return TORCHVISION_KERNELS_ON_CUDA and input.is_cuda


def convert_boxes_to_roi_format(boxes: Sequence[Tensor]) -> Tensor:
    """List of per-image ``[L_i, 4]`` boxes -> ``[sum L_i, 5]`` rois with the image index first."""
    rois = [torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)]
    return torch.cat(rois, dim=0)


def check_rois(rois: Tensor, device: torch.device, fn: str) -> None:
    torch._check(
        rois.dim() == 2 and rois.shape[1] == 5,
        lambda: (
            f"{fn}: rois must be a 2-D tensor [K, 5] of (batch_index, x1, y1, x2, y2), got shape {tuple(rois.shape)}"
        ),
    )
    torch._check(rois.dtype.is_floating_point, lambda: f"{fn}: rois must have a floating-point dtype, got {rois.dtype}")
    torch._check(
        rois.device == device, lambda: f"{fn}: rois must be on the same device as input ({device}), got {rois.device}"
    )


def check_forward_args(fn: str, input: Tensor, rois: Tensor, pooled_height: int, pooled_width: int) -> None:
    """Checks of ``roi_align_forward`` / ``roi_pool_forward``: input ``[N, C, H, W]``, rois, output size."""
    torch._check(input.dim() == 4, lambda: f"{fn}: input must be a 4-D tensor [N, C, H, W], got {input.dim()}-D")
    torch._check(
        input.dtype.is_floating_point, lambda: f"{fn}: input must have a floating-point dtype, got {input.dtype}"
    )
    check_rois(rois, input.device, fn)
    torch._check(
        pooled_height > 0 and pooled_width > 0, lambda: f"{fn}: pooled_height and pooled_width must be positive"
    )


def check_backward_args(
    fn: str, grad: Tensor, rois: Tensor, pooled_height: int, pooled_width: int, channels: int
) -> None:
    """Checks of ``roi_align_backward`` / ``roi_pool_backward``: grad ``[K, channels, pooled_h, pooled_w]``, rois."""
    torch._check(grad.dtype.is_floating_point, lambda: f"{fn}: grad must have a floating-point dtype, got {grad.dtype}")
    check_rois(rois, grad.device, fn)
    torch._check(
        grad.dim() == 4
        and grad.shape[0] == rois.shape[0]
        and grad.shape[1] == channels
        and grad.shape[2] == pooled_height
        and grad.shape[3] == pooled_width,
        lambda: f"{fn}: grad must have shape [K, channels, pooled_height, pooled_width], got {tuple(grad.shape)}",
    )
