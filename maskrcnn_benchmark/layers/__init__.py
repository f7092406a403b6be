"""Layers and compiled ops (the original's `maskrcnn_benchmark.layers`).

Importing this package loads `maskrcnn_benchmark._C`, which registers the ops under
`torch.ops.maskrcnn_benchmark`, and registers their fake (meta) kernels (below).
"""

import torch

from . import nms as _nms_module
from . import roi_align as _roi_align_module
from . import roi_pool as _roi_pool_module
from . import sigmoid_focal_loss as _focal_module
from .batch_norm import FrozenBatchNorm2d
from .dcn.deform_pool_func import deform_roi_pooling
from .dcn.deform_pool_module import DeformRoIPooling, DeformRoIPoolingPack, ModulatedDeformRoIPoolingPack
from .deform_conv import (
    DeformConv,
    DFConv2d,
    ModulatedDeformConv,
    ModulatedDeformConvPack,
    deform_conv,
    modulated_deform_conv,
)
from .misc import BatchNorm2d, Conv2d, ConvTranspose2d, interpolate
from .nms import batched_nms, nms
from .roi_align import ROIAlign, roi_align
from .roi_pool import ROIPool, roi_pool
from .sigmoid_focal_loss import SigmoidFocalLoss, sigmoid_focal_loss
from .smooth_l1_loss import smooth_l1_loss

# Fake kernels of every compiled op: defined next to each wrapper (FAKE_KERNELS of each module),
# registered here, all with torch.library.register_fake. That one mechanism serves all four ops:
# nms/batched_nms return a data-dependent number of indices, which only a register_fake kernel can
# express (torch.library.get_ctx().new_dynamic_size()); a Library.impl(..., "Meta") kernel cannot.
# register_fake also installs the Meta-key kernel, so meta tensors keep working. It must be called
# from this very module: csrc/vision.cpp names it in m.set_python_module("maskrcnn_benchmark.layers"),
# so torch checks that the fake kernels come from here and imports it by itself when it needs them.
for _module in (_nms_module, _roi_align_module, _roi_pool_module, _focal_module):
    for _qualname, _fake in _module.FAKE_KERNELS.items():
        torch.library.register_fake(_qualname, _fake)
del _module, _qualname, _fake

__all__ = [
    "nms",
    "batched_nms",
    "roi_align",
    "ROIAlign",
    "roi_pool",
    "ROIPool",
    "smooth_l1_loss",
    "Conv2d",
    "ConvTranspose2d",
    "interpolate",
    "BatchNorm2d",
    "FrozenBatchNorm2d",
    "SigmoidFocalLoss",
    "sigmoid_focal_loss",
    "deform_conv",
    "modulated_deform_conv",
    "DeformConv",
    "ModulatedDeformConv",
    "ModulatedDeformConvPack",
    "DFConv2d",
    "deform_roi_pooling",
    "DeformRoIPooling",
    "DeformRoIPoolingPack",
    "ModulatedDeformRoIPoolingPack",
]
