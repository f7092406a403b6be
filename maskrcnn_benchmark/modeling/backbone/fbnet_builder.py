"""Turns an FBNet architecture definition into modules.

An architecture definition (see fbnet_modeldef.MODEL_ARCH) is a dict:
- "block_op_type": per stage, the PRIMITIVES name of each block;
- "block_cfg": "first" = [channels, stride(, kernel)] of the stem conv; "stages" = per stage a list
  of [t, c, n, s] runs (expansion t, output channels c, n blocks, stride s of the run's first block;
  a negative s upsamples); "last" = [channels, scale] of an optional final 1x1 conv; and which stages
  form the "backbone" trunk and the "rpn", "bbox", "mask" (or "kpts") heads.

`unify_arch_def` flattens it into one list of blocks, each {"stage_idx", "block_idx", "block":
[t, c, 1, s], "block_op_type"}; `get_blocks` selects some of them; `FBNetBuilder` makes modules from
them, tracking the channel count (`last_depth`) from one call to the next. Blocks are named
`xif{stage_idx}_{block_idx}`, as in the original library's checkpoints.
"""

import copy
import logging
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional

from torch import nn

from .fbnet_blocks import (  # noqa: F401  (the original's fbnet_builder exported all of these)
    PRIMITIVES,
    BnType,
    CascadeConv3x3,
    ChannelShuffle,
    ConvBNRelu,
    Identity,
    IRFBlock,
    SEModule,
    Shift,
    ShiftBlock5x5,
    Upsample,
    _get_divisible_by,
    _get_upsample_op,
)

logger = logging.getLogger(__name__)


def _expand_block_cfg(block_cfg: list) -> List[list]:
    """[t, c, n, s] -> n copies of [t, c, 1, s'], where only the first keeps the stride s."""
    t, c, n, s = block_cfg
    return [[t, c, 1, s if i == 0 else 1] for i in range(n)]


def expand_stage_cfg(stage_cfg: List[list]) -> List[list]:
    """One stage's runs -> its blocks, one [t, c, 1, s] each."""
    return [block for run in stage_cfg for block in _expand_block_cfg(run)]


def expand_stages_cfg(stage_cfgs: List[List[list]]) -> List[List[list]]:
    """expand_stage_cfg for each stage."""
    return [expand_stage_cfg(stage) for stage in stage_cfgs]


def unify_arch_def(arch_def: dict) -> dict:
    """The flattened form described in the module docstring; the other block_cfg keys ("first",
    "last", "backbone", "rpn", ...) move to the top level."""
    if "block_cfg" not in arch_def or "stages" not in arch_def["block_cfg"] or "block_op_type" not in arch_def:
        raise ValueError("an FBNet architecture needs 'block_op_type' and 'block_cfg' with 'stages'")
    ret = {k: copy.deepcopy(v) for k, v in arch_def.items() if k not in ("block_cfg", "block_op_type")}
    ret.update(copy.deepcopy(arch_def["block_cfg"]))
    op_types = arch_def["block_op_type"]
    if len(op_types) != len(arch_def["block_cfg"]["stages"]):
        raise ValueError(f"{len(op_types)} block_op_type stages for {len(arch_def['block_cfg']['stages'])} stages")
    blocks = []
    for stage_idx, stage in enumerate(arch_def["block_cfg"]["stages"]):
        expanded = expand_stage_cfg(stage)
        if len(op_types[stage_idx]) != len(expanded):
            raise ValueError(
                f"stage {stage_idx} has {len(expanded)} blocks but {len(op_types[stage_idx])} block_op_type entries"
            )
        for block_idx, block in enumerate(expanded):
            blocks.append(
                {
                    "stage_idx": stage_idx,
                    "block_idx": block_idx,
                    "block": block,
                    "block_op_type": op_types[stage_idx][block_idx],
                }
            )
    ret["stages"] = blocks
    return ret


def get_num_stages(arch_def: dict) -> int:
    """Number of stages of a unified architecture."""
    return max(b["stage_idx"] for b in arch_def["stages"]) + 1


def get_blocks(
    arch_def: dict, stage_indices: Optional[Iterable[int]] = None, block_indices: Optional[Iterable[int]] = None
) -> dict:
    """A copy of the unified `arch_def` keeping the blocks whose stage is in `stage_indices` and whose
    index within its stage is in `block_indices` (None or empty: no restriction)."""
    stages = None if not stage_indices else set(stage_indices)
    indices = None if not block_indices else set(block_indices)
    ret = copy.deepcopy(arch_def)
    ret["stages"] = [
        copy.deepcopy(b)
        for b in arch_def["stages"]
        if (stages is None or b["stage_idx"] in stages) and (indices is None or b["block_idx"] in indices)
    ]
    return ret


class FBNetBuilder:
    """Makes the stem, block sequences and final conv of an FBNet, keeping `last_depth` (the
    channels of the last module made) so that consecutive calls chain.

    width_ratio scales every width, then widths are rounded to multiples of width_divisor;
    bn_type is None, "bn", "af" (frozen BN) or ("gn", groups); dw_skip_bn / dw_skip_relu drop the
    norm / ReLU after the (last) depthwise conv of IRF blocks.
    """

    def __init__(
        self,
        width_ratio: float,
        bn_type: BnType = "bn",
        width_divisor: int = 1,
        dw_skip_bn: bool = False,
        dw_skip_relu: bool = False,
    ):
        self.width_ratio = width_ratio
        self.last_depth = -1
        self.bn_type = bn_type
        self.width_divisor = width_divisor
        self.dw_skip_bn = dw_skip_bn
        self.dw_skip_relu = dw_skip_relu

    def _get_divisible_width(self, width: float) -> int:
        return _get_divisible_by(int(width), self.width_divisor, self.width_divisor)

    def add_first(self, stage_info: list, dim_in: int = 3, pad: bool = True) -> ConvBNRelu:
        """The stem: a k x k ConvBNRelu from `dim_in` channels; stage_info = [channels, stride(, k=3)]."""
        channels, stride = stage_info[0], stage_info[1]
        kernel = stage_info[2] if len(stage_info) > 2 else 3
        out_depth = self._get_divisible_width(int(channels * self.width_ratio))
        out = ConvBNRelu(dim_in, out_depth, kernel, stride, kernel // 2 if pad else 0, True, "relu", self.bn_type)
        self.last_depth = out_depth
        return out

    def add_blocks(self, blocks: List[Dict]) -> nn.Sequential:
        """nn.Sequential of the unified blocks, named xif{stage}_{block}, from `last_depth` channels."""
        modules = OrderedDict()
        for block in blocks:
            name = "xif{}_{}".format(block["stage_idx"], block["block_idx"])
            if name in modules:
                raise ValueError(f"two blocks are named {name}")
            modules[name] = self.add_ir_block(block["block"], [block["block_op_type"]])
        return nn.Sequential(modules)

    def add_last(self, stage_info: list) -> nn.Module:
        """The optional final 1x1 ConvBNRelu; stage_info = [channels, scale]. scale 0: none (empty
        Sequential); scale > 0: channels * scale outputs; scale < 0: last_depth * -scale outputs."""
        channels, channel_scale = stage_info
        if channel_scale == 0.0:
            return nn.Sequential()
        if channel_scale > 0:
            base = int(channels * self.width_ratio) if self.width_ratio > 1.0 else channels
            last_channel = int(base * channel_scale)
        else:
            last_channel = int(self.last_depth * -channel_scale)
        last_channel = self._get_divisible_width(last_channel)
        if last_channel == 0:
            return nn.Sequential()
        out = ConvBNRelu(self.last_depth, last_channel, 1, 1, 0, True, "relu", self.bn_type)
        self.last_depth = last_channel
        return out

    def add_ir_block(self, tcns: list, block_op_types: List[str], **kwargs) -> nn.Module:
        """One block [t, c, 1, s] of type block_op_types[0], from `last_depth` channels."""
        t, c, n, s = tcns
        if n != 1:
            raise ValueError(f"add_ir_block makes one block; expand [t, c, n, s] = {tcns} first")
        op_type = block_op_types[0]
        if op_type not in PRIMITIVES:
            raise KeyError(f"unknown FBNet block type {op_type!r}; choose one of {sorted(PRIMITIVES)}")
        op = PRIMITIVES[op_type](
            self.last_depth,
            self._get_divisible_width(int(c * self.width_ratio)),
            expansion=t,
            stride=s,
            bn_type=self.bn_type,
            width_divisor=self.width_divisor,
            dw_skip_bn=self.dw_skip_bn,
            dw_skip_relu=self.dw_skip_relu,
            **kwargs,
        )
        self.last_depth = op.output_depth
        return op
