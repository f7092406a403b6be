"""The original's block and stem classes, built with its constructor signatures."""

import torch

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.layers.batch_norm import FrozenBatchNorm2d
from maskrcnn_benchmark.layers.deform_conv import DFConv2d
from maskrcnn_benchmark.modeling.backbone.resnet import (
    Bottleneck,
    BottleneckWithFixedBatchNorm,
    BottleneckWithGN,
    StemWithFixedBatchNorm,
    StemWithGN,
)


def test_bottlenecks_take_the_original_arguments_and_run():
    x = torch.randn(2, 64, 16, 16)
    block = BottleneckWithFixedBatchNorm(64, 32, 128, num_groups=1, stride_in_1x1=True, stride=2)
    assert isinstance(block, Bottleneck) and isinstance(block.bn1, FrozenBatchNorm2d)
    assert block(x).shape == (2, 128, 8, 8)
    gn = BottleneckWithGN(64, 32, 128, stride=1, dilation=2)
    assert isinstance(gn.bn2, torch.nn.GroupNorm) and gn.bn2.num_groups == 32
    assert gn(x).shape == (2, 128, 16, 16)
    dcn = {"stage_with_dcn": True, "with_modulated_dcn": True, "deformable_groups": 1}
    deformable = BottleneckWithFixedBatchNorm(64, 32, 128, dcn_config=dcn)
    assert isinstance(deformable.conv2, DFConv2d) and deformable(x).shape == (2, 128, 16, 16)
    plain = BottleneckWithFixedBatchNorm(64, 32, 128, dcn_config={"stage_with_dcn": False})
    assert not isinstance(plain.conv2, DFConv2d)


def test_stems_read_their_width_from_the_config():
    c = cfg.clone()
    c.MODEL.RESNETS.STEM_OUT_CHANNELS = 32
    c.MODEL.GROUP_NORM.NUM_GROUPS = 8
    image = torch.randn(1, 3, 32, 32)
    stem = StemWithFixedBatchNorm(c)
    assert stem(image).shape == (1, 32, 8, 8) and isinstance(stem.bn1, FrozenBatchNorm2d)
    gn_stem = StemWithGN(c)
    assert gn_stem.bn1.num_groups == 8 and gn_stem(image).shape == (1, 32, 8, 8)
