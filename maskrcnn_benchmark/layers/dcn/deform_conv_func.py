"""The deformable convolution functions, at the original's import path."""

from ..deform_conv import deform_conv, modulated_deform_conv

__all__ = ["DeformConvFunction", "ModulatedDeformConvFunction", "deform_conv", "modulated_deform_conv"]


class DeformConvFunction:
    """The original's autograd Function: `DeformConvFunction.apply(...)` is `deform_conv(...)` (autograd
    comes from torchvision's op)."""

    apply = staticmethod(deform_conv)


class ModulatedDeformConvFunction:
    """The original's autograd Function: `ModulatedDeformConvFunction.apply(...)` is `modulated_deform_conv(...)`."""

    apply = staticmethod(modulated_deform_conv)
