"""ResNet / ResNeXt bodies and the res5 head used by C4 models.

Module and parameter names follow the original so that its checkpoints load: `stem.conv1`,
`stem.bn1`, `layer1..layer4`, and inside a block `downsample.{0,1}` (created first), then
`conv1, bn1, conv2, bn2, conv3, bn3`. Inputs are [N, 3, H, W]; each returned feature map has
stride 4, 8, 16, 32 for layer1..layer4. In the stages chosen by `stage_with_dcn`, a bottleneck's
`conv2` is a deformable convolution (`DFConv2d`: `conv2.offset`, `conv2.conv`).
"""

from collections import namedtuple
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as module_hooks

from ...config import CfgNode
from ...config.cfg_constructor import cfg_constructor
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


# index: stage number (1 = "res2"/layer1 ... 4 = "res5"/layer4); return_features: emit its output.
StageSpec = namedtuple("StageSpec", ["index", "block_count", "return_features"])


def _specs(block_counts: Sequence[int], returns: Sequence[bool]) -> Tuple[StageSpec, ...]:
    return tuple(StageSpec(i, n, r) for i, (n, r) in enumerate(zip(block_counts, returns), 1))


_C4, _C5, _ALL = (False, False, True), (False, False, False, True), (True, True, True, True)
STAGE_SPECS: Dict[str, Tuple[StageSpec, ...]] = {
    "R-50-C4": _specs((3, 4, 6), _C4),
    "R-50-C5": _specs((3, 4, 6, 3), _C5),
    "R-101-C4": _specs((3, 4, 23), _C4),
    "R-101-C5": _specs((3, 4, 23, 3), _C5),
    "R-50-FPN": _specs((3, 4, 6, 3), _ALL),
    "R-50-FPN-RETINANET": _specs((3, 4, 6, 3), _ALL),
    "R-101-FPN": _specs((3, 4, 23, 3), _ALL),
    "R-101-FPN-RETINANET": _specs((3, 4, 23, 3), _ALL),
    "R-152-FPN": _specs((3, 8, 36, 3), _ALL),
    # Small basic-block networks (added): for CPU-sized work.
    "R-18-C4": _specs((2, 2, 2), _C4),
    "R-18-FPN": _specs((2, 2, 2, 2), _ALL),
    "R-18-FPN-RETINANET": _specs((2, 2, 2, 2), _ALL),
    "R-34-C4": _specs((3, 4, 6), _C4),
    "R-34-FPN": _specs((3, 4, 6, 3), _ALL),
    "R-34-FPN-RETINANET": _specs((3, 4, 6, 3), _ALL),
}

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


def _dcn_spec(
    stage_with_dcn: Sequence[bool], index: int, with_modulated_dcn: bool, deformable_groups: int
) -> Optional[DCNSpec]:
    if len(stage_with_dcn) < index:
        raise ValueError(f"stage_with_dcn {tuple(stage_with_dcn)} has no entry for stage {index}")
    return DCNSpec(with_modulated_dcn, deformable_groups) if stage_with_dcn[index - 1] else None


def make_stage(
    block: type,
    in_channels: int,
    bottleneck_channels: int,
    out_channels: int,
    block_count: int,
    num_groups: int,
    stride_in_1x1: bool,
    first_stride: int,
    dilation: int = 1,
    norm: NormFactory = FrozenBatchNorm2d,
    dcn: Optional[DCNSpec] = None,
) -> nn.Sequential:
    """`block_count` blocks; only the first one changes stride and channel count. `dcn` makes every
    block's conv2 deformable."""
    blocks = []
    for i in range(block_count):
        blocks.append(
            block(
                in_channels,
                bottleneck_channels,
                out_channels,
                num_groups,
                stride_in_1x1,
                first_stride if i == 0 else 1,
                dilation,
                norm,
                dcn_config=dcn,
            )
        )
        in_channels = out_channels
    return nn.Sequential(*blocks)


def _resnet_arguments(cfg: CfgNode) -> Dict[str, Any]:
    from .backbone import resnet_arguments  # backbone.py imports this module

    return resnet_arguments(cfg)


@cfg_constructor(_resnet_arguments)
class ResNet(nn.Module):
    """A ResNet/ResNeXt body returning the feature maps of the stages marked return_features.
    `ResNet(cfg)` builds the body of cfg.MODEL.BACKBONE and cfg.MODEL.RESNETS (as the original).

    Stage k (1..4) has out_channels = res2_out_channels * 2**(k-1) and a bottleneck width of
    num_groups * width_per_group * 2**(k-1). freeze_at = k freezes the stem (k >= 1) and
    layer1..layer{k-1} (parameters stop requiring grad); < 0 freezes nothing. stem_norm defaults
    to `norm`. stage_with_dcn[k - 1] makes conv2 of every block of stage k deformable
    (modulated with with_modulated_dcn, deformable_groups offset groups).
    """

    def __init__(
        self,
        stage_specs: Sequence[StageSpec],
        block: type = Bottleneck,
        norm: NormFactory = FrozenBatchNorm2d,
        stem_norm: Optional[NormFactory] = None,
        stem_out_channels: int = 64,
        res2_out_channels: int = 256,
        num_groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = True,
        freeze_at: int = 2,
        stage_with_dcn: Sequence[bool] = (False, False, False, False),
        with_modulated_dcn: bool = False,
        deformable_groups: int = 1,
    ):
        super().__init__()
        self.stem = Stem(stem_out_channels, stem_norm or norm)
        self.stages: List[str] = []
        self.return_features: Dict[str, bool] = {}
        in_channels = stem_out_channels
        for spec in stage_specs:
            factor = 2 ** (spec.index - 1)
            out_channels = res2_out_channels * factor
            name = f"layer{spec.index}"
            self.add_module(
                name,
                make_stage(
                    block,
                    in_channels,
                    num_groups * width_per_group * factor,
                    out_channels,
                    spec.block_count,
                    num_groups,
                    stride_in_1x1,
                    first_stride=1 if spec.index == 1 else 2,
                    norm=norm,
                    dcn=_dcn_spec(stage_with_dcn, spec.index, with_modulated_dcn, deformable_groups),
                ),
            )
            self.stages.append(name)
            self.return_features[name] = spec.return_features
            in_channels = out_channels
        self.out_channels = [res2_out_channels * 2 ** (s.index - 1) for s in stage_specs if s.return_features]
        self.freeze(freeze_at)

    def freeze(self, freeze_at: int) -> None:
        if freeze_at < 0:
            return
        modules = [self.stem] + [getattr(self, name) for name in self.stages]
        for module in modules[:freeze_at]:
            for p in module.parameters():
                p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem(x)
        outputs = []
        for name in self.stages:
            x = getattr(self, name)(x)
            if self.return_features[name]:
                outputs.append(x)
        return outputs


def _block_and_norm(block_module: Union[str, type], norm: Optional[NormFactory]) -> Tuple[type, NormFactory]:
    if not isinstance(block_module, str):
        return block_module, norm or FrozenBatchNorm2d
    from .backbone import TRANS_FUNCS  # backbone.py imports this module

    if block_module not in TRANS_FUNCS:
        raise KeyError(f"block_module {block_module!r} is not known; choose one of {sorted(TRANS_FUNCS)}")
    block, norm_name = TRANS_FUNCS[block_module]
    return block, norm or NORMS[norm_name]


class ResNetHead(nn.Module):
    """Stages applied to pooled RoI features (the res5 head of C4 models): `layer4` for
    stages=(StageSpec(4, 3, False),), with out_channels = res2_out_channels * 8 (2048).

    block_module: the block class (Bottleneck, BasicBlock; norm layers from `norm`, default
    FrozenBatchNorm2d) or a MODEL.RESNETS.TRANS_FUNC name such as the original's
    "BottleneckWithFixedBatchNorm" (its norm, unless `norm` is given; GroupNorm with default
    settings). dcn_config (see DCNConfig) makes every block's conv2 deformable, as in the original;
    otherwise stage_with_dcn etc. choose stages as for ResNet (off by default; the C4 box head does
    not set them, as in the original)."""

    def __init__(
        self,
        block_module: Union[str, type],
        stages: Sequence[StageSpec],
        num_groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = True,
        stride_init: Optional[int] = None,
        res2_out_channels: int = 256,
        dilation: int = 1,
        dcn_config: DCNConfig = None,
        norm: Optional[NormFactory] = None,
        stage_with_dcn: Sequence[bool] = (False, False, False, False),
        with_modulated_dcn: bool = False,
        deformable_groups: int = 1,
    ):
        super().__init__()
        block, norm = _block_and_norm(block_module, norm)
        dcn = as_dcn_spec(dcn_config)
        factor = 2 ** (stages[0].index - 1)
        out_channels = res2_out_channels * factor
        in_channels = out_channels // 2
        bottleneck_channels = num_groups * width_per_group * factor
        self.stages: List[str] = []
        stride = stride_init
        for spec in stages:
            name = f"layer{spec.index}"
            first_stride = stride or (1 if spec.index == 1 else 2)
            self.add_module(
                name,
                make_stage(
                    block,
                    in_channels,
                    bottleneck_channels,
                    out_channels,
                    spec.block_count,
                    num_groups,
                    stride_in_1x1,
                    first_stride,
                    dilation,
                    norm,
                    dcn=dcn or _dcn_spec(stage_with_dcn, spec.index, with_modulated_dcn, deformable_groups),
                ),
            )
            self.stages.append(name)
            stride = 0
            in_channels = out_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stages:
            x = getattr(self, name)(x)
        return x


# The original's class names, at their original import path (defined over the classes above).
from .resnet_original_blocks import (  # noqa: E402, F401
    BaseStem,
    BottleneckWithFixedBatchNorm,
    BottleneckWithGN,
    ResNet50FPNStagesTo5,
    ResNet50StagesTo4,
    ResNet50StagesTo5,
    ResNet101FPNStagesTo5,
    ResNet101StagesTo4,
    ResNet101StagesTo5,
    ResNet152FPNStagesTo5,
    StemWithFixedBatchNorm,
    StemWithGN,
)
