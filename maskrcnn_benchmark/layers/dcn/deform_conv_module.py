"""The deformable convolution modules, at the original's import path."""

from ..deform_conv import DeformConv, ModulatedDeformConv, ModulatedDeformConvPack

__all__ = ["DeformConv", "ModulatedDeformConv", "ModulatedDeformConvPack"]
