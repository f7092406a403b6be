"""Deformable convolutions: v1 (`DeformConv`, learned sampling offsets) and v2
(`ModulatedDeformConv`, offsets plus a per-sample modulation mask), and `DFConv2d`, the block that
predicts the offsets (and mask) with an ordinary convolution and applies one of them.

The arithmetic is torchvision's `deform_conv2d` (CPU and CUDA kernels, forward and backward, for
input, offset, mask, weight and bias). Its conventions are the ones the original's kernels used,
so the original's checkpoints give the same outputs:

- output position `p`, kernel point `k = i * kw + j` (row-major over the kernel), deformable group
  `g` (the input channels split into `deformable_groups` consecutive chunks):
  `y[p] = sum_k w[k] * m[g, k, p] * x_bilinear(p * stride - padding + k_pos * dilation + delta[g, k, p])`
- offset channels: `offset[:, g * 2K + 2k]` is the row (y) shift and `offset[:, g * 2K + 2k + 1]`
  the column (x) shift of kernel point `k` in group `g` (`K = kh * kw`); mask channels:
  `mask[:, g * K + k]`;
- bilinear sampling: a sample whose position is not inside `(-1, H) x (-1, W)` is 0; inside, the
  corner pixels that fall outside the map count as 0.

Weights are `[out_channels, in_channels / groups, kh, kw]`, as in `nn.Conv2d`.
"""

import math
from typing import Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d

from .misc import Conv2d

IntPair = Union[int, Tuple[int, int]]


def _check(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, groups: int, deformable_groups: int):
    if input.dim() != 4:
        raise ValueError(f"deformable convolution expects a 4-d input [N, C, H, W], got shape {tuple(input.shape)}")
    kh, kw = weight.shape[-2:]
    if input.shape[1] != weight.shape[1] * groups:
        raise ValueError(
            f"input has {input.shape[1]} channels; the weight {tuple(weight.shape)} with groups={groups} "
            f"expects {weight.shape[1] * groups}"
        )
    if input.shape[1] % deformable_groups:
        raise ValueError(f"{input.shape[1]} input channels cannot be split into {deformable_groups} deformable groups")
    expected = 2 * deformable_groups * kh * kw
    if offset.shape[1] != expected:
        raise ValueError(
            f"offset has {offset.shape[1]} channels; a {kh}x{kw} kernel with {deformable_groups} deformable "
            f"group(s) needs {expected}"
        )


def deform_conv(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    deformable_groups: int = 1,
    im2col_step: int = 64,
) -> torch.Tensor:
    """Deformable convolution v1 (no bias): input [N, C, H, W], offset [N, 2 * dg * kh * kw, Ho, Wo].

    `im2col_step` is the original's batch chunk size for its CUDA kernel; torchvision's kernel
    chooses its own chunks, and the result does not depend on them, so it is not used."""
    _check(input, offset, weight, groups, deformable_groups)
    return deform_conv2d(input, offset, weight, None, _pair(stride), _pair(padding), _pair(dilation))


def modulated_deform_conv(
    input: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    deformable_groups: int = 1,
) -> torch.Tensor:
    """Modulated deformable convolution (v2): as `deform_conv`, each sample also multiplied by
    mask [N, dg * kh * kw, Ho, Wo] (already squashed, e.g. by a sigmoid)."""
    _check(input, offset, weight, groups, deformable_groups)
    kh, kw = weight.shape[-2:]
    if mask.shape[1] != deformable_groups * kh * kw:
        raise ValueError(
            f"mask has {mask.shape[1]} channels; a {kh}x{kw} kernel with {deformable_groups} deformable "
            f"group(s) needs {deformable_groups * kh * kw}"
        )
    return deform_conv2d(input, offset, weight, bias, _pair(stride), _pair(padding), _pair(dilation), mask)


class _DeformConvBase(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair,
        padding: IntPair,
        dilation: IntPair,
        groups: int,
        deformable_groups: int,
        bias: bool,
    ):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels {in_channels} and out_channels {out_channels} must divide by groups {groups}"
            )
        if in_channels % deformable_groups:
            raise ValueError(f"in_channels {in_channels} must divide by deformable_groups {deformable_groups}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deformable_groups = deformable_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The original's init: U(-1/sqrt(n), 1/sqrt(n)) with n = in_channels * kh * kw (not divided
        # by groups); bias 0.
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
            f"deformable_groups={self.deformable_groups}, bias={self.bias is not None}"
        )


class DeformConv(_DeformConvBase):
    """Deformable convolution v1; `forward(input, offset)`. No bias (as the original)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        deformable_groups: int = 1,
        bias: bool = False,
    ):
        if bias:
            raise ValueError("DeformConv has no bias")
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, deformable_groups, False
        )

    def forward(
        self, input: torch.Tensor, offset: torch.Tensor, weight: Optional[torch.Tensor] = None, bias=None
    ) -> torch.Tensor:
        """`weight`/`bias` replace the module's own (used to fold a frozen batch norm into it)."""
        weight = self.weight if weight is None else weight
        _check(input, offset, weight, self.groups, self.deformable_groups)
        return deform_conv2d(input, offset, weight, bias, self.stride, self.padding, self.dilation)


class ModulatedDeformConv(_DeformConvBase):
    """Modulated deformable convolution (v2); `forward(input, offset, mask)`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        deformable_groups: int = 1,
        bias: bool = True,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, deformable_groups, bias
        )

    def forward(
        self,
        input: torch.Tensor,
        offset: torch.Tensor,
        mask: torch.Tensor,
        weight: Optional[torch.Tensor] = None,
        bias: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """`weight`/`bias` replace the module's own (used to fold a frozen batch norm into it)."""
        if weight is None:
            weight, bias = self.weight, self.bias
        return modulated_deform_conv(
            input,
            offset,
            mask,
            weight,
            bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.deformable_groups,
        )


def split_offset_mask(out: torch.Tensor, deformable_groups: int, kernel_points: int):
    """(offset, sigmoid(mask)) from the 3 * dg * K channels predicted for a modulated convolution:
    the first 2 * dg * K channels are the offsets, the last dg * K the mask logits (the original's
    split: chunks o1, o2, m of the prediction, offset = cat(o1, o2))."""
    n = 2 * deformable_groups * kernel_points
    return out[:, :n], out[:, n:].sigmoid()


class ModulatedDeformConvPack(ModulatedDeformConv):
    """ModulatedDeformConv that predicts its own offsets and mask with `conv_offset_mask` (zero
    initialised: it starts as an ordinary convolution with every mask value 0.5)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kh, kw = self.kernel_size
        self.conv_offset_mask = nn.Conv2d(
            self.in_channels,  # the original had in_channels // groups, which fails for groups > 1
            3 * self.deformable_groups * kh * kw,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=True,
        )
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        kh, kw = self.kernel_size
        offset, mask = split_offset_mask(self.conv_offset_mask(input), self.deformable_groups, kh * kw)
        return super().forward(input, offset, mask)


class DFConv2d(nn.Module):
    """A deformable 3x3-style convolution with its offset predictor, the drop-in replacement of
    `conv2` in ResNet blocks. Submodules (checkpoint names): `offset`, an ordinary convolution
    predicting `dg * 2 * kh * kw` channels (v1) or `dg * 3 * kh * kw` (v2: offsets then mask logits),
    with the same stride, padding (`dilation * (k - 1) // 2`) and dilation; and `conv`, the
    `DeformConv` / `ModulatedDeformConv` (bias as `bias`).

    Initialisation as the original: `offset.weight` Kaiming-uniform (a=1), `offset.bias` 0, `conv`
    its own (see `_DeformConvBase.reset_parameters`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        with_modulated_dcn: bool = True,
        kernel_size: IntPair = 3,
        stride: IntPair = 1,
        groups: int = 1,
        dilation: IntPair = 1,
        deformable_groups: int = 1,
        bias: bool = False,
    ):
        super().__init__()
        kernel_size, stride, dilation = _pair(kernel_size), _pair(stride), _pair(dilation)
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel_size))
        kernel_points = kernel_size[0] * kernel_size[1]
        per_point = 3 if with_modulated_dcn else 2
        self.offset = Conv2d(
            in_channels,
            deformable_groups * per_point * kernel_points,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
        )
        nn.init.kaiming_uniform_(self.offset.weight, a=1)
        nn.init.zeros_(self.offset.bias)
        conv_type = ModulatedDeformConv if with_modulated_dcn else DeformConv
        self.conv = conv_type(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            deformable_groups=deformable_groups,
            bias=bias,
        )
        self.with_modulated_dcn = with_modulated_dcn
        self.deformable_groups = deformable_groups
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation

    def forward(
        self, x: torch.Tensor, weight: Optional[torch.Tensor] = None, bias: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """`weight`/`bias`, when given, replace `conv.weight`/`conv.bias` (a folded frozen batch norm)."""
        out = self.offset(x)
        if self.with_modulated_dcn:
            kernel_points = self.kernel_size[0] * self.kernel_size[1]
            offset, mask = split_offset_mask(out, self.deformable_groups, kernel_points)
            return self.conv(x, offset, mask, weight, bias)
        return self.conv(x, out, weight, bias)
