"""The original's empty-tensor-safe wrappers.

The original subclassed these to survive inputs with zero elements (zero RoIs), which old PyTorch
could not convolve. Today's torch handles empty batches itself, so these are the torch modules
under the original names; they stay so that code importing them keeps working.
"""

from typing import Optional, Sequence, Union

import torch
from torch import nn
from torch.nn import functional as F


class Conv2d(nn.Conv2d):
    """torch.nn.Conv2d (empty batches give empty outputs of the right shape)."""


class ConvTranspose2d(nn.ConvTranspose2d):
    """torch.nn.ConvTranspose2d (empty batches give empty outputs of the right shape)."""


class BatchNorm2d(nn.BatchNorm2d):
    """torch.nn.BatchNorm2d; an empty batch is returned unchanged instead of raising in training."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == 0:
            return x
        return super().forward(x)


def interpolate(
    input: torch.Tensor,
    size: Optional[Union[int, Sequence[int]]] = None,
    scale_factor: Optional[Union[float, Sequence[float]]] = None,
    mode: str = "nearest",
    align_corners: Optional[bool] = None,
) -> torch.Tensor:
    """torch.nn.functional.interpolate with the original's signature (works on empty tensors)."""
    return F.interpolate(input, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners)


def __getattr__(name: str):
    # The original defined DFConv2d here; it lives in deform_conv.py, which imports Conv2d from this
    # module, so it is looked up on first use instead of imported at the top (a circular import).
    if name == "DFConv2d":
        from .deform_conv import DFConv2d

        return DFConv2d
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
