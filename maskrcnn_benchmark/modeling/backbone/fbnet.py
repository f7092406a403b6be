"""FBNet detectors: the trunk (CONV_BODY "FBNet") and the RPN / box / mask / keypoint heads built
from the same architecture definition (MODEL.FBNET).

The trunk maps [N, 3, H, W] to one feature map [N, C, H/16, W/16] (a list of one). The RPN head runs
the architecture's "rpn" blocks on it, then RPNHeadConvRegressor; the RoI heads pool
(cfg.MODEL.<head>.POOLER_*), run their stage's blocks (the first block's stride can be overridden by
*_HEAD_STRIDE, only some blocks kept with *_HEAD_BLOCKS) and an optional final 1x1 conv
(*_HEAD_LAST_SCALE), returning a feature map [K, C', R', R'] for the predictors.
Module names follow the original library: backbone.body.{first, stages.xif*}, rpn.head.0.head.xif*,
rpn.head.1.{cls_logits, bbox_pred}, roi_heads.<head>.feature_extractor.head.{blocks.xif*, last}.
"""

import copy
import json
import logging
from collections import OrderedDict
from typing import List, Sequence, Tuple

import torch
from torch import nn

from ...config import CfgNode
from ...structures.bounding_box import BoxList
from .. import registry
from ..poolers import make_pooler
from ..rpn.rpn import RPNHeadConvRegressor
from . import fbnet_builder as mbuilder
from . import fbnet_modeldef as modeldef

logger = logging.getLogger(__name__)


def create_builder(cfg: CfgNode) -> Tuple[mbuilder.FBNetBuilder, dict]:
    """(FBNetBuilder from MODEL.FBNET, unified architecture definition).

    MODEL.FBNET.ARCH names an architecture of fbnet_modeldef.MODEL_ARCH; otherwise ARCH_DEF must hold
    one as JSON (if both are given they must agree)."""
    fb = cfg.MODEL.FBNET
    bn_type = (fb.BN_TYPE, cfg.MODEL.GROUP_NORM.NUM_GROUPS) if fb.BN_TYPE == "gn" else fb.BN_TYPE
    arch_def = json.loads(fb.ARCH_DEF) if fb.ARCH_DEF else None
    if fb.ARCH in modeldef.MODEL_ARCH:
        if arch_def is not None and arch_def != modeldef.MODEL_ARCH[fb.ARCH]:
            raise ValueError(f"MODEL.FBNET.ARCH_DEF differs from the built-in architecture {fb.ARCH!r}")
        arch_def = modeldef.MODEL_ARCH[fb.ARCH]
    elif arch_def is None:
        raise KeyError(
            f"MODEL.FBNET.ARCH {fb.ARCH!r} is not a built-in architecture ({sorted(modeldef.MODEL_ARCH)}) "
            "and MODEL.FBNET.ARCH_DEF is empty"
        )
    arch_def = mbuilder.unify_arch_def(arch_def)

    rpn_stride = arch_def.get("rpn_stride")
    if rpn_stride is not None and cfg.MODEL.RPN.ANCHOR_STRIDE[0] != rpn_stride:
        raise ValueError(
            f"FBNet architecture {fb.ARCH!r} needs MODEL.RPN.ANCHOR_STRIDE ({rpn_stride},), "
            f"got {tuple(cfg.MODEL.RPN.ANCHOR_STRIDE)}"
        )
    builder = mbuilder.FBNetBuilder(
        width_ratio=fb.SCALE_FACTOR,
        bn_type=bn_type,
        width_divisor=fb.WIDTH_DIVISOR,
        dw_skip_bn=fb.DW_CONV_SKIP_BN,
        dw_skip_relu=fb.DW_CONV_SKIP_RELU,
    )
    return builder, arch_def


def _get_trunk_cfg(arch_def: dict) -> dict:
    """The blocks of the "backbone" stages (default: all stages but the last)."""
    stages = arch_def.get("backbone", range(mbuilder.get_num_stages(arch_def) - 1))
    return mbuilder.get_blocks(arch_def, stage_indices=stages)


class FBNetTrunk(nn.Module):
    """Stem conv + the trunk's blocks: [N, dim_in, H, W] -> [one feature map]."""

    def __init__(self, builder: mbuilder.FBNetBuilder, arch_def: dict, dim_in: int):
        super().__init__()
        self.first = builder.add_first(arch_def["first"], dim_in=dim_in)
        self.stages = builder.add_blocks(_get_trunk_cfg(arch_def)["stages"])

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return [self.stages(self.first(x))]


@registry.BACKBONES.register("FBNet")
def add_conv_body(cfg: CfgNode, dim_in: int = 3) -> nn.Sequential:
    builder, arch_def = create_builder(cfg)
    model = nn.Sequential(OrderedDict([("body", FBNetTrunk(builder, arch_def, dim_in))]))
    model.out_channels = builder.last_depth
    return model


def _get_rpn_stage(arch_def: dict, num_blocks: int) -> List[dict]:
    """The "rpn" stage's blocks; only its last `num_blocks` when num_blocks > 0."""
    blocks = mbuilder.get_blocks(arch_def, stage_indices=arch_def.get("rpn"))["stages"]
    if num_blocks > 0:
        if num_blocks > len(blocks):
            raise ValueError(f"MODEL.FBNET.RPN_HEAD_BLOCKS = {num_blocks}, but the RPN stage has {len(blocks)} blocks")
        blocks = blocks[len(blocks) - num_blocks :]
    return blocks


class FBNetRPNHead(nn.Module):
    """The RPN stage's blocks on each feature map (MODEL.FBNET.RPN_HEAD_BLOCKS, RPN_BN_TYPE)."""

    def __init__(self, cfg: CfgNode, in_channels: int, builder: mbuilder.FBNetBuilder, arch_def: dict):
        super().__init__()
        if in_channels != builder.last_depth:
            raise ValueError(f"builder.last_depth is {builder.last_depth}, the RPN input has {in_channels} channels")
        if cfg.MODEL.FBNET.RPN_BN_TYPE:
            builder.bn_type = cfg.MODEL.FBNET.RPN_BN_TYPE
        self.head = builder.add_blocks(_get_rpn_stage(arch_def, cfg.MODEL.FBNET.RPN_HEAD_BLOCKS))
        self.out_channels = builder.last_depth

    def forward(self, x: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        return [self.head(y) for y in x]


@registry.RPN_HEADS.register("FBNet.rpn_head")
def add_rpn_head(cfg: CfgNode, in_channels: int, num_anchors: int) -> nn.Sequential:
    builder, arch_def = create_builder(cfg)
    builder.last_depth = in_channels
    features = FBNetRPNHead(cfg, in_channels, builder, arch_def)
    return nn.Sequential(features, RPNHeadConvRegressor(cfg, features.out_channels, num_anchors))


def _get_head_stage(arch_def: dict, head_name: str, blocks: Sequence[int]) -> List[dict]:
    """The blocks of the stage named `head_name` (else of "head"), restricted to `blocks` if given."""
    if head_name not in arch_def:
        head_name = "head"
    stages = arch_def.get(head_name)
    if stages is None:
        # As in the original: with no stage named for the head, every block of the architecture is used.
        logger.warning("FBNet architecture names no %r or 'head' stage; the RoI head uses all its blocks", head_name)
    return mbuilder.get_blocks(arch_def, stage_indices=stages, block_indices=blocks)["stages"]


# Head names in architecture definitions -> the config node of that head.
ARCH_CFG_NAME_MAPPING = {"bbox": "ROI_BOX_HEAD", "kpts": "ROI_KEYPOINT_HEAD", "mask": "ROI_MASK_HEAD"}


class FBNetROIHead(nn.Module):
    """Pool, the head stage's blocks, the optional final 1x1 conv: -> [K, out_channels, R', R']."""

    def __init__(
        self,
        cfg: CfgNode,
        in_channels: int,
        builder: mbuilder.FBNetBuilder,
        arch_def: dict,
        head_name: str,
        use_blocks: Sequence[int],
        stride_init: int,
        last_layer_scale: float,
    ):
        super().__init__()
        if in_channels != builder.last_depth:
            raise ValueError(f"builder.last_depth is {builder.last_depth}, the head input has {in_channels} channels")
        if stride_init not in (0, 1, 2):
            raise ValueError(f"the *_HEAD_STRIDE of an FBNet head must be 0 (keep), 1 or 2, got {stride_init}")
        self.pooler = make_pooler(cfg, ARCH_CFG_NAME_MAPPING[head_name])
        stage = _get_head_stage(arch_def, head_name, list(use_blocks))
        if stride_init != 0:
            stage[0]["block"][3] = stride_init
        blocks = builder.add_blocks(stage)
        last_info = copy.deepcopy(arch_def["last"])
        last_info[1] = last_layer_scale
        last = builder.add_last(last_info)
        self.head = nn.Sequential(OrderedDict([("blocks", blocks), ("last", last)]))
        self.out_channels = builder.last_depth

    def forward(self, x: Sequence[torch.Tensor], proposals: Sequence[BoxList]) -> torch.Tensor:
        return self.head(self.pooler(x, proposals))


def _roi_head(cfg: CfgNode, in_channels: int, head_name: str, prefix: str) -> FBNetROIHead:
    builder, arch_def = create_builder(cfg)
    builder.last_depth = in_channels
    fb = cfg.MODEL.FBNET
    return FBNetROIHead(
        cfg,
        in_channels,
        builder,
        arch_def,
        head_name=head_name,
        use_blocks=fb[prefix + "_HEAD_BLOCKS"],
        stride_init=fb[prefix + "_HEAD_STRIDE"],
        last_layer_scale=fb[prefix + "_HEAD_LAST_SCALE"],
    )


@registry.ROI_BOX_FEATURE_EXTRACTORS.register("FBNet.roi_head")
def add_roi_head(cfg: CfgNode, in_channels: int) -> FBNetROIHead:
    return _roi_head(cfg, in_channels, "bbox", "DET")


@registry.ROI_KEYPOINT_FEATURE_EXTRACTORS.register("FBNet.roi_head_keypoints")
def add_roi_head_keypoints(cfg: CfgNode, in_channels: int) -> FBNetROIHead:
    return _roi_head(cfg, in_channels, "kpts", "KPTS")


@registry.ROI_MASK_FEATURE_EXTRACTORS.register("FBNet.roi_head_mask")
def add_roi_head_mask(cfg: CfgNode, in_channels: int) -> FBNetROIHead:
    return _roi_head(cfg, in_channels, "mask", "MASK")
