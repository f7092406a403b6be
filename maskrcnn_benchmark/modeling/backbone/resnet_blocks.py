"""The ResNet building blocks: the stem, the bottleneck and basic blocks, and the conv + norm step
they share (which folds a frozen batch norm into the convolution when nothing observes the two).

Parameter names follow the original so that its checkpoints load: the stem's `conv1`, `bn1`; inside a
block `downsample.{0,1}` (created first), then `conv1, bn1, conv2, bn2, conv3, bn3`. A bottleneck's
`conv2` is a deformable convolution (`DFConv2d`: `conv2.offset`, `conv2.conv`) when its `dcn_config`
says so. Tensors are [N, C, H, W].
"""

from collections import namedtuple
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as module_hooks

from ...layers.batch_norm import FrozenBatchNorm2d
from ...layers.deform_conv import DFConv2d
from ...layers.misc import Conv2d
from ..make_layers import gn_factory

# Deformable conv2 of the bottleneck blocks (MODEL.RESNETS.WITH_MODULATED_DCN, DEFORMABLE_GROUPS).
DCNSpec = namedtuple("DCNSpec", ["with_modulated_dcn", "deformable_groups"])
# A block's `dcn_config`: a DCNSpec, or the original's {"stage_with_dcn", "with_modulated_dcn",
# "deformable_groups"} dict; None (or a dict without stage_with_dcn) for a plain conv2.
DCNConfig = Union[None, DCNSpec, Mapping[str, Any]]


def as_dcn_spec(dcn_config: DCNConfig) -> Optional[DCNSpec]:
    """The DCNSpec of a block's dcn_config, None for a plain conv2."""
    if dcn_config is None or isinstance(dcn_config, DCNSpec):
        return dcn_config
    if not dcn_config.get("stage_with_dcn", False):
        return None
    return DCNSpec(bool(dcn_config.get("with_modulated_dcn", False)), int(dcn_config.get("deformable_groups", 1)))


NormFactory = Callable[[int], nn.Module]
NORMS: Dict[str, NormFactory] = {
    "FrozenBatchNorm": FrozenBatchNorm2d,
    "GroupNorm": gn_factory(),  # default settings; the builders pass one with the config's GROUP_NORM
    "BatchNorm": nn.BatchNorm2d,
}


def _conv(in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> Conv2d:
    conv = Conv2d(in_channels, out_channels, kernel_size, bias=False, **kwargs)
    nn.init.kaiming_uniform_(conv.weight, a=1)  # Caffe2 MSRAFill-like init, as the original
    return conv


def _fold(conv: nn.Module, norm: FrozenBatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    scale, shift = norm.scale_and_shift()
    weight = conv.weight * scale.to(conv.weight.dtype).view(-1, 1, 1, 1)
    bias = shift if conv.bias is None else conv.bias * scale + shift
    return weight, bias.to(conv.weight.dtype)


def _cached_fold(conv: nn.Conv2d, norm: FrozenBatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    # Without autograd the folded weights are reused until a tensor they come from changes (in place:
    # its _version moves; replaced, e.g. by .to(): its data_ptr moves). Saves ~4 kernels per layer and
    # forward (on a GPU, launches are what inference spends its time on).
    sources = [
        t
        for t in (conv.weight, conv.bias, norm.weight, norm.bias, norm.running_mean, norm.running_var)
        if t is not None
    ]
    key = tuple((t.data_ptr(), t._version) for t in sources)
    cached = getattr(conv, "_folded_frozen_bn", None)
    if cached is None or cached[0] != key:
        cached = (key, _fold(conv, norm))
        conv._folded_frozen_bn = cached
    return cached[1]


def _observed(*modules: nn.Module) -> bool:
    """Whether a hook would see these modules called: a forward or backward hook of their own, or a
    global module hook (torch.nn.modules.module.register_module_forward_hook and friends)."""
    if (
        module_hooks._global_forward_hooks
        or module_hooks._global_forward_pre_hooks
        or module_hooks._global_backward_hooks
        or module_hooks._global_backward_pre_hooks
    ):
        return True
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks for m in modules)


def conv_norm(conv: nn.Module, norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """norm(conv(x)). A FrozenBatchNorm2d is folded into the convolution (weight * scale, bias =
    shift; for a DFConv2d, into its deformable `conv`): mathematically the same, one pass over the
    activations instead of two, and gradients still reach the weight. Without autograd (inference)
    the folded weights are cached, except under torch.compile: the cache compares data pointers,
    which dynamo cannot trace, and a compiled graph computes the fold in one small fused kernel
    anyway.

    The fold is used only where it is invisible: when a hook watches the convolution or the norm
    (feature extraction, visualisation, FLOP counters), both modules are called as such, so the hooks
    see the inputs and outputs that the original's modules produced."""
    if not isinstance(norm, FrozenBatchNorm2d) or _observed(conv, norm):
        return norm(conv(x))
    cached = not torch.is_grad_enabled() and not torch.compiler.is_compiling()
    if isinstance(conv, DFConv2d):
        # The deformable convolution is linear in its weight: fold into conv.conv; the offset
        # predictor sees the block's input and is not affected by the norm.
        weight, bias = _cached_fold(conv.conv, norm) if cached else _fold(conv.conv, norm)
        return conv(x, weight, bias)
    weight, bias = _cached_fold(conv, norm) if cached else _fold(conv, norm)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _downsample(in_channels: int, out_channels: int, stride: int, norm: NormFactory) -> nn.Module:
    return nn.Sequential(_conv(in_channels, out_channels, 1, stride=stride), norm(out_channels))


def _shortcut(downsample: Optional[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The identity, or the downsample Sequential(conv, norm) (called as a module when hooked)."""
    if downsample is None:
        return x
    if _observed(downsample):
        return downsample(x)
    return conv_norm(downsample[0], downsample[1], x)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (grouped, dilated) -> 1x1 residual block; the stride sits on the first 1x1
    conv when stride_in_1x1 (MSRA weights), else on the 3x3 (FAIR / torchvision weights). With a
    `dcn_config`, the 3x3 is a DFConv2d (deformable, modulated or not) with the same stride, dilation and
    groups, initialised as the original's (not Kaiming-reinitialised like the plain 3x3). `norm_func`:
    channels -> norm layer; `dcn_config`: see DCNConfig."""

    def __init__(
        self,
        in_channels: int,
        bottleneck_channels: int,
        out_channels: int,
        num_groups: int = 1,
        stride_in_1x1: bool = True,
        stride: int = 1,
        dilation: int = 1,
        norm_func: NormFactory = FrozenBatchNorm2d,
        dcn_config: DCNConfig = None,
    ):
        super().__init__()
        norm, dcn = norm_func, as_dcn_spec(dcn_config)
        self.downsample = None
        if in_channels != out_channels:
            self.downsample = _downsample(in_channels, out_channels, stride if dilation == 1 else 1, norm)
        if dilation > 1:
            stride = 1  # a dilated stage keeps the resolution
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = _conv(in_channels, bottleneck_channels, 1, stride=stride_1x1)
        self.bn1 = norm(bottleneck_channels)
        if dcn is not None:
            self.conv2 = DFConv2d(
                bottleneck_channels,
                bottleneck_channels,
                with_modulated_dcn=dcn.with_modulated_dcn,
                kernel_size=3,
                stride=stride_3x3,
                groups=num_groups,
                dilation=dilation,
                deformable_groups=dcn.deformable_groups,
                bias=False,
            )
        else:
            self.conv2 = _conv(
                bottleneck_channels,
                bottleneck_channels,
                3,
                stride=stride_3x3,
                padding=dilation,
                dilation=dilation,
                groups=num_groups,
            )
        self.bn2 = norm(bottleneck_channels)
        self.conv3 = _conv(bottleneck_channels, out_channels, 1)
        self.bn3 = norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = _shortcut(self.downsample, x)
        out = F.relu_(conv_norm(self.conv1, self.bn1, x))
        out = F.relu_(conv_norm(self.conv2, self.bn2, out))
        out = conv_norm(self.conv3, self.bn3, out)
        return F.relu_(out.add_(identity))  # in place: no new activation-sized tensor


class BasicBlock(nn.Module):
    """3x3 -> 3x3 residual block (ResNet-18/34). bottleneck_channels, num_groups and
    stride_in_1x1 are accepted for a uniform signature; groups must be 1."""

    def __init__(
        self,
        in_channels: int,
        bottleneck_channels: int,
        out_channels: int,
        num_groups: int = 1,
        stride_in_1x1: bool = True,
        stride: int = 1,
        dilation: int = 1,
        norm_func: NormFactory = FrozenBatchNorm2d,
        dcn_config: DCNConfig = None,
    ):
        super().__init__()
        norm, dcn = norm_func, as_dcn_spec(dcn_config)
        if num_groups != 1:
            raise ValueError(f"BasicBlock supports NUM_GROUPS 1 only, got {num_groups}")
        if dcn is not None:
            raise ValueError("deformable convolutions (STAGE_WITH_DCN) need bottleneck blocks, not BasicBlock")
        self.downsample = None
        if in_channels != out_channels or stride != 1:
            self.downsample = _downsample(in_channels, out_channels, stride if dilation == 1 else 1, norm)
        if dilation > 1:
            stride = 1
        self.conv1 = _conv(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation)
        self.bn1 = norm(out_channels)
        self.conv2 = _conv(out_channels, out_channels, 3, padding=dilation, dilation=dilation)
        self.bn2 = norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = _shortcut(self.downsample, x)
        out = F.relu_(conv_norm(self.conv1, self.bn1, x))
        out = conv_norm(self.conv2, self.bn2, out)
        return F.relu_(out.add_(identity))


class Stem(nn.Module):
    """conv 7x7/2 -> norm -> ReLU -> max-pool 3x3/2: stride 4 in total."""

    def __init__(self, out_channels: int = 64, norm: NormFactory = FrozenBatchNorm2d):
        super().__init__()
        self.conv1 = _conv(3, out_channels, 7, stride=2, padding=3)
        self.bn1 = norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(conv_norm(self.conv1, self.bn1, x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
