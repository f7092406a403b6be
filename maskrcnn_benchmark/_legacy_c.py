"""The original library's plain functions of ``maskrcnn_benchmark._C``: ``_C.nms``, ``_C.roi_align_forward``, ...

The compiled extension registers the ops as ``torch.ops.maskrcnn_benchmark.*``; its module
initialisation copies the names in ``__all__`` from here onto ``_C``, so ``from maskrcnn_benchmark
import _C; _C.nms(...)`` works as it did in the original. Each function keeps the original's name
and signature and forwards to the op, so device selection, autocast and tracing behave exactly as
for ``torch.ops.maskrcnn_benchmark.*``.

It is imported while ``_C`` is being initialised, so it must not import ``maskrcnn_benchmark._C``
or ``maskrcnn_benchmark.layers`` (which imports ``_C``); the ops are looked up when called.
"""

import torch

__all__ = [
    "nms",
    "roi_align_forward",
    "roi_align_backward",
    "roi_pool_forward",
    "roi_pool_backward",
    "sigmoid_focalloss_forward",
    "sigmoid_focalloss_backward",
]


def nms(dets, scores, threshold):
    """Non-maximum suppression (legacy +1 convention); kept indices in ascending order."""
    return torch.ops.maskrcnn_benchmark.nms(dets, scores, threshold)


def roi_align_forward(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio):
    """ROIAlign forward (aligned=False)."""
    return torch.ops.maskrcnn_benchmark.roi_align_forward(
        input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, False
    )


def roi_align_backward(
    grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width, sampling_ratio
):
    """ROIAlign backward (aligned=False)."""
    return torch.ops.maskrcnn_benchmark.roi_align_backward(
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
        False,
    )


def roi_pool_forward(input, rois, spatial_scale, pooled_height, pooled_width):
    """ROIPool forward: (output, argmax)."""
    return torch.ops.maskrcnn_benchmark.roi_pool_forward(input, rois, spatial_scale, pooled_height, pooled_width)


def roi_pool_backward(
    grad, input, rois, argmax, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width
):
    """ROIPool backward. ``input`` is unused: the original's signature carries it, only its shape was needed."""
    return torch.ops.maskrcnn_benchmark.roi_pool_backward(
        grad, rois, argmax, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width
    )


def sigmoid_focalloss_forward(logits, targets, num_classes, gamma, alpha):
    """SigmoidFocalLoss forward: the per-element losses."""
    return torch.ops.maskrcnn_benchmark.sigmoid_focal_loss_forward(logits, targets, num_classes, gamma, alpha)


def sigmoid_focalloss_backward(logits, targets, d_losses, num_classes, gamma, alpha):
    """SigmoidFocalLoss backward: the gradient with respect to the logits."""
    return torch.ops.maskrcnn_benchmark.sigmoid_focal_loss_backward(
        logits, targets, d_losses, num_classes, gamma, alpha
    )
