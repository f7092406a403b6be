"""ResNet / ResNeXt bodies and the res5 head used by C4 models.

Module and parameter names follow the original so that its checkpoints load: `stem.conv1`,
`stem.bn1`, `layer1..layer4`, and inside a block `downsample.{0,1}` (created first), then
`conv1, bn1, conv2, bn2, conv3, bn3`. Inputs are [N, 3, H, W]; each returned feature map has
stride 4, 8, 16, 32 for layer1..layer4. In the stages chosen by `stage_with_dcn`, a bottleneck's
`conv2` is a deformable convolution (`DFConv2d`: `conv2.offset`, `conv2.conv`).
"""

from collections import namedtuple
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ...config import CfgNode
from ...config.cfg_constructor import cfg_constructor
from ...layers.batch_norm import FrozenBatchNorm2d
from .resnet_blocks import (  # noqa: F401  (conv_norm, DCNConfig: importable from here, as before)
    NORMS,
    BasicBlock,
    Bottleneck,
    DCNConfig,
    DCNSpec,
    NormFactory,
    Stem,
    as_dcn_spec,
    conv_norm,
)

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
