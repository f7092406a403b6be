"""Backbone builders registered by CONV_BODY name: the config layer over resnet.py and fpn.py.

Each returns nn.Sequential(body[, fpn]) with an `out_channels` attribute; its forward maps an image
batch [N, 3, H, W] to a list of feature maps (one for C4/C5 bodies, five for FPN).
"""

from collections import OrderedDict

from torch import nn

from ...config import CfgNode
from .. import registry
from ..make_layers import conv_with_kaiming_uniform, gn_factory
from . import fpn as fpn_module
from . import resnet

# TRANS_FUNC / STEM_FUNC names -> (block type, norm). The *WithBatchNorm and BasicBlock* names are
# additions; "Bottleneck*" on an R-18/34 body selects the basic block with the same norm.
TRANS_FUNCS = {
    "BottleneckWithFixedBatchNorm": (resnet.Bottleneck, "FrozenBatchNorm"),
    "BottleneckWithGN": (resnet.Bottleneck, "GroupNorm"),
    "BottleneckWithBatchNorm": (resnet.Bottleneck, "BatchNorm"),
    "BasicBlockWithFixedBatchNorm": (resnet.BasicBlock, "FrozenBatchNorm"),
    "BasicBlockWithGN": (resnet.BasicBlock, "GroupNorm"),
    "BasicBlockWithBatchNorm": (resnet.BasicBlock, "BatchNorm"),
}
STEM_NORMS = {
    "StemWithFixedBatchNorm": "FrozenBatchNorm",
    "StemWithGN": "GroupNorm",
    "StemWithBatchNorm": "BatchNorm",
}


def _lookup(table: dict, key: str, what: str):
    if key not in table:
        raise KeyError(f"{what} {key!r} is not known; choose one of {sorted(table)}")
    return table[key]


def norm_factory(cfg: CfgNode, name: str):
    """channels -> norm layer for a NORMS name; GroupNorm uses cfg.MODEL.GROUP_NORM."""
    return gn_factory(cfg.MODEL.GROUP_NORM) if name == "GroupNorm" else resnet.NORMS[name]


def block_and_norm(cfg: CfgNode, conv_body: str):
    """(block class, norm factory) for cfg.MODEL.RESNETS.TRANS_FUNC on the body `conv_body`."""
    block, norm = _lookup(TRANS_FUNCS, cfg.MODEL.RESNETS.TRANS_FUNC, "MODEL.RESNETS.TRANS_FUNC")
    if conv_body.startswith(("R-18-", "R-34-")):
        block = resnet.BasicBlock
    return block, norm_factory(cfg, norm)


def resnet_arguments(cfg: CfgNode) -> dict:
    """The ResNet constructor's arguments for cfg.MODEL.BACKBONE and cfg.MODEL.RESNETS."""
    r = cfg.MODEL.RESNETS
    conv_body = cfg.MODEL.BACKBONE.CONV_BODY
    block, norm = block_and_norm(cfg, conv_body)
    stem_norm = norm_factory(cfg, _lookup(STEM_NORMS, r.STEM_FUNC, "MODEL.RESNETS.STEM_FUNC"))
    return dict(
        stage_specs=_lookup(resnet.STAGE_SPECS, conv_body, "MODEL.BACKBONE.CONV_BODY"),
        block=block,
        norm=norm,
        stem_norm=stem_norm,
        stem_out_channels=r.STEM_OUT_CHANNELS,
        res2_out_channels=r.RES2_OUT_CHANNELS,
        num_groups=r.NUM_GROUPS,
        width_per_group=r.WIDTH_PER_GROUP,
        stride_in_1x1=r.STRIDE_IN_1X1,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT,
        stage_with_dcn=r.STAGE_WITH_DCN,
        with_modulated_dcn=r.WITH_MODULATED_DCN,
        deformable_groups=r.DEFORMABLE_GROUPS,
    )


def build_resnet(cfg: CfgNode) -> resnet.ResNet:
    """The ResNet body described by cfg.MODEL.BACKBONE and cfg.MODEL.RESNETS."""
    return resnet.ResNet(**resnet_arguments(cfg))


def build_resnet_backbone(cfg: CfgNode) -> nn.Sequential:
    model = nn.Sequential(OrderedDict([("body", build_resnet(cfg))]))
    # The channels of the last stage (res4 for -C4, res5 for -C5). The original used
    # BACKBONE_OUT_CHANNELS, which equals this for every C4 config but not for a C5 body.
    last_stage = 5 if cfg.MODEL.BACKBONE.CONV_BODY.endswith("-C5") else 4
    model.out_channels = cfg.MODEL.RESNETS.RES2_OUT_CHANNELS * 2 ** (last_stage - 2)
    return model


def build_resnet_fpn_backbone(cfg: CfgNode) -> nn.Sequential:
    body = build_resnet(cfg)
    stage2 = cfg.MODEL.RESNETS.RES2_OUT_CHANNELS
    out_channels = cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS
    fpn = fpn_module.FPN(
        in_channels_list=[stage2, stage2 * 2, stage2 * 4, stage2 * 8],
        out_channels=out_channels,
        conv_block=conv_with_kaiming_uniform(
            cfg.MODEL.FPN.USE_GN, cfg.MODEL.FPN.USE_RELU, gn_factory(cfg.MODEL.GROUP_NORM)
        ),
        top_blocks=fpn_module.LastLevelMaxPool(),
    )
    model = nn.Sequential(OrderedDict([("body", body), ("fpn", fpn)]))
    model.out_channels = out_channels
    return model


def build_resnet_fpn_p3p7_backbone(cfg: CfgNode) -> nn.Sequential:
    body = build_resnet(cfg)
    stage2 = cfg.MODEL.RESNETS.RES2_OUT_CHANNELS
    out_channels = cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS
    p6p7_in = stage2 * 8 if cfg.MODEL.RETINANET.USE_C5 else out_channels
    fpn = fpn_module.FPN(
        in_channels_list=[0, stage2 * 2, stage2 * 4, stage2 * 8],
        out_channels=out_channels,
        conv_block=conv_with_kaiming_uniform(
            cfg.MODEL.FPN.USE_GN, cfg.MODEL.FPN.USE_RELU, gn_factory(cfg.MODEL.GROUP_NORM)
        ),
        top_blocks=fpn_module.LastLevelP6P7(p6p7_in, out_channels),
    )
    model = nn.Sequential(OrderedDict([("body", body), ("fpn", fpn)]))
    model.out_channels = out_channels
    return model


for _name in resnet.STAGE_SPECS:
    if _name.endswith("-RETINANET"):
        registry.BACKBONES.register(_name, build_resnet_fpn_p3p7_backbone)
    elif _name.endswith("-FPN"):
        registry.BACKBONES.register(_name, build_resnet_fpn_backbone)
    else:
        registry.BACKBONES.register(_name, build_resnet_backbone)


def build_backbone(cfg: CfgNode) -> nn.Sequential:
    """The backbone named by cfg.MODEL.BACKBONE.CONV_BODY (see registry.BACKBONES)."""
    return registry.BACKBONES[cfg.MODEL.BACKBONE.CONV_BODY](cfg)
