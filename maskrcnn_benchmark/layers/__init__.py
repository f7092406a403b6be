"""Layers and compiled ops (the original's `maskrcnn_benchmark.layers`).

Importing this package loads `maskrcnn_benchmark._C`, which registers the ops under
`torch.ops.maskrcnn_benchmark`, and registers their fake (meta) kernels. csrc/vision.cpp names this
module in `set_python_module`, so torch imports it by itself when it needs those kernels and
requires them to be registered from here.
"""
from . import nms as _nms_module
from . import sigmoid_focal_loss as _focal_module
from .batch_norm import FrozenBatchNorm2d
from .misc import BatchNorm2d, Conv2d, ConvTranspose2d, interpolate
from .nms import batched_nms, nms
from .roi_align import ROIAlign, roi_align
from .roi_pool import ROIPool, roi_pool
from .sigmoid_focal_loss import SigmoidFocalLoss, sigmoid_focal_loss
from .smooth_l1_loss import smooth_l1_loss

_nms_module.register_fake_kernels()
_focal_module.register_fake_kernels()

__all__ = [
    "nms", "batched_nms", "roi_align", "ROIAlign", "roi_pool", "ROIPool", "smooth_l1_loss", "Conv2d", "ConvTranspose2d", "interpolate", "BatchNorm2d",
    "FrozenBatchNorm2d", "SigmoidFocalLoss", "sigmoid_focal_loss",
]
