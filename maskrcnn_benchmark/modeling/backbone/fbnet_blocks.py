"""FBNet building blocks: inverted-residual (IRF) blocks and the other searchable primitives.

Every block maps [N, C_in, H, W] to [N, C_out, H / stride, W / stride] (a negative stride -s
upsamples by s with nearest interpolation before the depthwise conv) and records `output_depth`.
Module and parameter names are the original library's, so its FBNet checkpoints load: an IRF block
is `pw` (1x1 expand), `dw` (k x k depthwise), `pwl` (1x1 project), optional `shuffle` and `se4`.
`PRIMITIVES` maps the architecture-definition names (e.g. "ir_k3", "ir_k5_e6_se") to block factories
called as `factory(C_in, C_out, expansion, stride, **options)`.
"""

import math
from collections import OrderedDict
from typing import Callable, Dict, Optional, Tuple, Union

import torch
from torch import nn

from ...layers import BatchNorm2d, Conv2d, FrozenBatchNorm2d, interpolate

BnType = Union[None, str, Tuple[str, int]]  # None, "bn", "af" (frozen), or ("gn", num_groups)


def _round_half_away_from_zero(x: float) -> int:
    # Python 2's round(), which the original's widths were computed with (Python 3 rounds half to even).
    return math.floor(x + 0.5) if x >= 0.0 else math.ceil(x - 0.5)


def _get_divisible_by(num: float, divisible_by: int, min_val: int) -> int:
    """`num` rounded to the nearest multiple of `divisible_by`; unchanged if it already is one or
    divisible_by <= 0. When it rounds to zero multiples, `min_val` multiples are used (as in the
    original: min_val * divisible_by, e.g. 3 -> 64 for 8, 8)."""
    if divisible_by > 0 and num % divisible_by != 0:
        return int((_round_half_away_from_zero(num / divisible_by) or min_val) * divisible_by)
    return int(num)


class ConvBNRelu(nn.Sequential):
    """conv (Kaiming-normal, fan_out) -> optional norm (`bn`) -> optional ReLU (`relu`)."""

    def __init__(
        self,
        input_depth: int,
        output_depth: int,
        kernel: int,
        stride: int,
        pad: int,
        no_bias: bool,
        use_relu: Optional[str],
        bn_type: BnType,
        group: int = 1,
    ):
        super().__init__()
        gn_groups = None
        if isinstance(bn_type, (list, tuple)):
            if len(bn_type) != 2 or bn_type[0] != "gn":
                raise ValueError(f"bn_type as a pair must be ('gn', num_groups), got {bn_type!r}")
            bn_type, gn_groups = bn_type
        if bn_type not in ("bn", "af", "gn", None):
            raise ValueError(f"bn_type must be 'bn', 'af', 'gn' or None, got {bn_type!r}")
        if use_relu not in ("relu", None):
            raise ValueError(f"use_relu must be 'relu' or None, got {use_relu!r}")
        if stride not in (1, 2, 4):
            raise ValueError(f"stride must be 1, 2 or 4, got {stride!r}")
        if bn_type == "gn" and gn_groups is None:
            raise ValueError("bn_type 'gn' needs a group count: pass ('gn', num_groups)")

        conv = Conv2d(input_depth, output_depth, kernel, stride=stride, padding=pad, bias=not no_bias, groups=group)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        if conv.bias is not None:
            nn.init.constant_(conv.bias, 0.0)
        self.add_module("conv", conv)
        if bn_type == "bn":
            self.add_module("bn", BatchNorm2d(output_depth))
        elif bn_type == "af":
            self.add_module("bn", FrozenBatchNorm2d(output_depth))
        elif bn_type == "gn":
            self.add_module("bn", nn.GroupNorm(num_groups=gn_groups, num_channels=output_depth))
        if use_relu == "relu":
            self.add_module("relu", nn.ReLU(inplace=True))


class Identity(nn.Module):
    """x itself, or a 1x1 ConvBNRelu (batch norm) when the channels or the stride change."""

    def __init__(self, C_in: int, C_out: int, stride: int):
        super().__init__()
        needs_projection = C_in != C_out or stride != 1
        self.conv = ConvBNRelu(C_in, C_out, 1, stride, 0, True, "relu", "bn") if needs_projection else None
        self.output_depth = C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.conv is None else self.conv(x)


class _ResidualSequential(nn.Sequential):
    """A sequence of layers with an identity shortcut when the shapes allow it (stride 1, C_in == C_out)."""

    def __init__(self, C_in: int, C_out: int, stride: int, layers):
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        super().__init__(*layers)
        self.res_connect = stride == 1 and C_in == C_out
        self.output_depth = C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y + x if self.res_connect else y


class CascadeConv3x3(_ResidualSequential):
    """Two 3x3 conv + BN (ReLU between them), residual when shapes allow ("basic_block")."""

    def __init__(self, C_in: int, C_out: int, stride: int):
        layers = [
            Conv2d(C_in, C_in, 3, stride, 1, bias=False),
            BatchNorm2d(C_in),
            nn.ReLU(inplace=True),
            Conv2d(C_in, C_out, 3, 1, 1, bias=False),
            BatchNorm2d(C_out),
        ]
        super().__init__(C_in, C_out, stride, layers)


class Shift(nn.Module):
    """A fixed depthwise conv that moves each channel group by one offset of a k x k window.

    The C channels are split over the k*k offsets in row-major order, C // k^2 each; the centre
    (no shift) also takes the remainder. The one-hot kernel is a frozen parameter named `kernel`.
    """

    def __init__(self, C: int, kernel_size: int, stride: int, padding: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        self.C, self.kernel_size, self.stride, self.padding, self.dilation = C, kernel_size, stride, padding, 1
        kernel = torch.zeros((C, 1, kernel_size, kernel_size), dtype=torch.float32)
        per_offset, remainder = divmod(C, kernel_size**2)
        centre = kernel_size // 2
        channel = 0
        for i in range(kernel_size):
            for j in range(kernel_size):
                count = per_offset + (remainder if i == centre and j == centre else 0)
                kernel[channel : channel + count, 0, i, j] = 1
                channel += count
        self.register_parameter("bias", None)
        self.kernel = nn.Parameter(kernel, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.kernel, None, self.stride, self.padding, self.dilation, self.C)


class ShiftBlock5x5(_ResidualSequential):
    """1x1 expand (to a multiple of 8) + BN + ReLU, a 5x5 Shift, 1x1 project + BN ("shift_5x5")."""

    def __init__(self, C_in: int, C_out: int, expansion: float, stride: int):
        C_mid = _get_divisible_by(C_in * expansion, 8, 8)
        layers = [
            Conv2d(C_in, C_mid, 1, 1, 0, bias=False),
            BatchNorm2d(C_mid),
            nn.ReLU(inplace=True),
            Shift(C_mid, 5, stride, 2),
            Conv2d(C_mid, C_out, 1, 1, 0, bias=False),
            BatchNorm2d(C_out),
        ]
        super().__init__(C_in, C_out, stride, layers)


class ChannelShuffle(nn.Module):
    """[N, C, H, W] viewed as [N, g, C/g, H, W], the two group axes swapped, viewed back."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if c % self.groups != 0:
            raise ValueError(f"ChannelShuffle: {c} channels are not divisible into {self.groups} groups")
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SEModule(nn.Module):
    """Squeeze-and-excitation: x * sigmoid(conv(relu(conv(avgpool(x))))), bottleneck max(C // 4, 8)."""

    reduction = 4

    def __init__(self, C: int):
        super().__init__()
        mid = max(C // self.reduction, 8)
        self.op = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            Conv2d(C, mid, 1, 1, 0),
            nn.ReLU(inplace=True),
            Conv2d(mid, C, 1, 1, 0),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.op(x)


class Upsample(nn.Module):
    """interpolate(x, scale_factor, mode) as a module (no parameters)."""

    def __init__(self, scale_factor, mode: str, align_corners: Optional[bool] = None):
        super().__init__()
        self.scale, self.mode, self.align_corners = scale_factor, mode, align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=self.align_corners)


def _get_upsample_op(stride) -> Tuple[Optional[Upsample], int]:
    """(upsampling module or None, conv stride): a negative stride -s (or a tuple of them) upsamples by s."""
    valid = (1, 2, 4, -1, -2, -4)
    if isinstance(stride, tuple):
        if not all(s in (-1, -2, -4) for s in stride):
            raise ValueError(f"a tuple stride must hold upsampling factors -1, -2 or -4, got {stride!r}")
        return Upsample([-s for s in stride], mode="nearest"), 1
    if stride not in valid:
        raise ValueError(f"stride must be one of {valid}, got {stride!r}")
    if stride < 0:
        return Upsample(-stride, mode="nearest"), 1
    return None, stride


class IRFBlock(nn.Module):
    """Inverted residual: 1x1 expand + BN + ReLU, [channel shuffle], [upsample], k x k depthwise
    (+ BN + ReLU unless dw_skip_bn / dw_skip_relu; two of them when `cdw`), 1x1 project + BN,
    identity shortcut when stride is 1 and C_in == C_out, then optional squeeze-excitation."""

    def __init__(
        self,
        input_depth: int,
        output_depth: int,
        expansion: float,
        stride,
        bn_type: BnType = "bn",
        kernel: int = 3,
        width_divisor: int = 1,
        shuffle_type: Optional[str] = None,
        pw_group: int = 1,
        se: bool = False,
        cdw: bool = False,
        dw_skip_bn: bool = False,
        dw_skip_relu: bool = False,
    ):
        super().__init__()
        if kernel not in (1, 3, 5, 7):
            raise ValueError(f"kernel must be 1, 3, 5 or 7, got {kernel!r}")
        self.use_res_connect = stride == 1 and input_depth == output_depth
        self.output_depth = output_depth
        mid = _get_divisible_by(int(input_depth * expansion), width_divisor, width_divisor)

        self.pw = ConvBNRelu(input_depth, mid, 1, 1, 0, True, "relu", bn_type, group=pw_group)
        self.upscale, stride = _get_upsample_op(stride)
        last_dw_relu = None if dw_skip_relu else "relu"
        last_dw_bn = None if dw_skip_bn else bn_type
        pad = kernel // 2
        if kernel == 1:
            if stride != 1:
                # The original silently ignored the stride here (no depthwise conv to carry it), which
                # leaves the features at the wrong scale for the anchors and poolers downstream.
                raise ValueError(f"an IRF block with kernel 1 has no depthwise conv to apply stride {stride}")
            self.dw = nn.Sequential()
        elif cdw:
            self.dw = nn.Sequential(
                OrderedDict(
                    [
                        ("dw1", ConvBNRelu(mid, mid, kernel, stride, pad, True, "relu", bn_type, group=mid)),
                        ("dw2", ConvBNRelu(mid, mid, kernel, 1, pad, True, last_dw_relu, last_dw_bn, group=mid)),
                    ]
                )
            )
        else:
            self.dw = ConvBNRelu(mid, mid, kernel, stride, pad, True, last_dw_relu, last_dw_bn, group=mid)
        self.pwl = ConvBNRelu(mid, output_depth, 1, 1, 0, True, None, bn_type, group=pw_group)
        self.shuffle_type = shuffle_type
        if shuffle_type is not None:
            self.shuffle = ChannelShuffle(pw_group)
        self.se4 = SEModule(output_depth) if se else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(x)
        if self.shuffle_type == "mid":
            y = self.shuffle(y)
        if self.upscale is not None:
            y = self.upscale(y)
        y = self.pwl(self.dw(y))
        if self.use_res_connect:
            y = y + x
        return self.se4(y)


def _irf(**fixed) -> Callable[..., IRFBlock]:
    """A PRIMITIVES factory for an IRF block with some options fixed; a fixed `expansion` overrides
    the architecture's."""

    def factory(C_in, C_out, expansion, stride, **options):
        expansion = fixed.get("expansion", expansion)
        return IRFBlock(
            C_in, C_out, expansion, stride, **{k: v for k, v in fixed.items() if k != "expansion"}, **options
        )

    return factory


def _build_primitives() -> Dict[str, Callable[..., nn.Module]]:
    prims = {
        "skip": lambda C_in, C_out, expansion, stride, **_: Identity(C_in, C_out, stride),
        "ir_k3": _irf(kernel=3),
        "ir_k5": _irf(kernel=5),
        "ir_k7": _irf(kernel=7),
        "ir_k1": _irf(kernel=1),
        "shuffle": _irf(shuffle_type="mid", pw_group=4),
        "basic_block": lambda C_in, C_out, expansion, stride, **_: CascadeConv3x3(C_in, C_out, stride),
        "shift_5x5": lambda C_in, C_out, expansion, stride, **_: ShiftBlock5x5(C_in, C_out, expansion, stride),
    }
    # The searched variants: fixed expansion (e1/e3/e6), channel shuffle with 4 or 2 groups (s4/s2),
    # squeeze-excitation (_se), two cascaded depthwise convs (k33 / sep).
    for k in (3, 5):
        for se in (False, True):
            suffix = "_se" if se else ""
            for e in (1, 3, 6):
                prims[f"ir_k{k}_e{e}{suffix}"] = _irf(expansion=e, kernel=k, se=se)
            prims[f"ir_k{k}_s4{suffix}"] = _irf(expansion=4, kernel=k, shuffle_type="mid", pw_group=4, se=se)
            prims[f"ir_k{k}_s2{suffix}"] = _irf(expansion=1, kernel=k, shuffle_type="mid", pw_group=2, se=se)
    prims["ir_k3_sep"] = _irf(kernel=3, cdw=True)
    for e in (1, 3, 6):
        prims[f"ir_k33_e{e}"] = _irf(expansion=e, kernel=3, cdw=True)
        prims[f"ir_k7_e{e}"] = _irf(expansion=e, kernel=7)
        prims[f"ir_k7_sep_e{e}"] = _irf(expansion=e, kernel=7, cdw=True)
    prims["ir_k7_sep"] = _irf(kernel=7, cdw=True)
    return prims


PRIMITIVES = _build_primitives()
