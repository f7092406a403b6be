"""ResNet bodies with deformable conv2 (MODEL.RESNETS.STAGE_WITH_DCN): the original's checkpoint
layout for configs/dcn, the frozen-batch-norm folding around a deformable convolution, and a small
deformable backbone training a step."""

import os

import pytest
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.layers import DeformConv, DFConv2d, ModulatedDeformConv
from maskrcnn_benchmark.layers.batch_norm import FrozenBatchNorm2d
from maskrcnn_benchmark.modeling.backbone import build_backbone
from maskrcnn_benchmark.modeling.backbone.resnet import (
    STAGE_SPECS,
    BasicBlock,
    Bottleneck,
    DCNSpec,
    ResNet,
    ResNetHead,
    StageSpec,
    conv_norm,
)
from maskrcnn_benchmark.modeling.detector import build_detection_model

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs", "dcn")
DCN_CONFIGS = [
    "e2e_faster_rcnn_dconv_R_50_FPN_1x.yaml",
    "e2e_faster_rcnn_mdconv_R_50_FPN_1x.yaml",
    "e2e_mask_rcnn_dconv_R_50_FPN_1x.yaml",
    "e2e_mask_rcnn_mdconv_R_50_FPN_1x.yaml",
]


def _load(name):
    c = cfg.clone()
    c.merge_from_file(os.path.join(CONFIG_DIR, name))
    c.MODEL.DEVICE = "cpu"
    return c


def test_the_defaults_are_the_originals():
    r = cfg.MODEL.RESNETS
    assert tuple(r.STAGE_WITH_DCN) == (False, False, False, False)
    assert r.WITH_MODULATED_DCN is False and r.DEFORMABLE_GROUPS == 1


def test_mdconv_mask_rcnn_state_dict_equals_the_originals(original_checkpoint_keys):
    name = "e2e_mask_rcnn_mdconv_R_50_FPN_1x.yaml"
    with torch.device("meta"):
        model = build_detection_model(_load(name))
    actual = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert actual == original_checkpoint_keys["dcn/" + name]


@pytest.mark.parametrize("name", DCN_CONFIGS)
def test_dcn_configs_build_the_originals_backbone(name, original_checkpoint_keys):
    # The mdconv Mask R-CNN layout is known; the others differ from it only in the offset
    # predictor's width (18 channels for v1) and in the heads.
    c = _load(name)
    assert tuple(c.MODEL.RESNETS.STAGE_WITH_DCN) == (False, True, True, True)
    assert c.MODEL.RESNETS.DEFORMABLE_GROUPS == 1
    modulated = "mdconv" in name
    assert c.MODEL.RESNETS.WITH_MODULATED_DCN == modulated
    with torch.device("meta"):
        backbone = build_backbone(c)
    expected = []
    for k, shape in original_checkpoint_keys["dcn/e2e_mask_rcnn_mdconv_R_50_FPN_1x.yaml"]:
        if not k.startswith("backbone."):
            continue
        if k.endswith("conv2.offset.weight") and not modulated:
            shape = (18,) + shape[1:]
        elif k.endswith("conv2.offset.bias") and not modulated:
            shape = (18,)
        expected.append((k[len("backbone.") :], shape))
    assert [(k, tuple(v.shape)) for k, v in backbone.state_dict().items()] == expected
    body = backbone.body
    assert not isinstance(body.layer1[0].conv2, DFConv2d)
    for layer in (body.layer2, body.layer3, body.layer4):
        for block in layer:
            assert isinstance(block.conv2.conv, ModulatedDeformConv if modulated else DeformConv)


def _frozen_bn(channels):
    bn = FrozenBatchNorm2d(channels)
    bn.weight.uniform_(0.5, 1.5)
    bn.bias.normal_()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    return bn


@pytest.mark.parametrize("modulated", [False, True])
def test_frozen_batch_norm_folds_into_a_deformable_conv(modulated):
    conv = DFConv2d(8, 8, with_modulated_dcn=modulated, stride=2, groups=2, deformable_groups=2)
    with torch.no_grad():
        conv.offset.weight.mul_(0.1)  # moderate offsets, most samples inside the map
    bn = _frozen_bn(8)
    x = torch.randn(2, 8, 9, 9)
    expected = bn(conv(x))
    # With autograd: folded on the fly, gradients reach the deformable conv and the offset predictor.
    out = conv_norm(conv, bn, x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    out.square().sum().backward()
    assert conv.conv.weight.grad.abs().sum() > 0 and conv.offset.weight.grad.abs().sum() > 0
    # Without autograd: the folded weights are cached, and recomputed when the weights change.
    with torch.no_grad():
        torch.testing.assert_close(conv_norm(conv, bn, x), expected, rtol=1e-5, atol=1e-5)
        conv.conv.weight.mul_(2)
        bn.bias.add_(1)
        torch.testing.assert_close(conv_norm(conv, bn, x), bn(conv(x)), rtol=1e-5, atol=1e-5)


def _tiny_resnet(modulated, norm=FrozenBatchNorm2d, freeze_at=0):
    return ResNet(
        STAGE_SPECS["R-50-FPN"],
        block=Bottleneck,
        norm=norm,
        stem_out_channels=8,
        res2_out_channels=16,
        num_groups=2,
        width_per_group=2,
        freeze_at=freeze_at,
        stage_with_dcn=(False, True, True, True),
        with_modulated_dcn=modulated,
        deformable_groups=2,
    )


@pytest.mark.parametrize("modulated", [False, True])
def test_a_tiny_dcn_backbone_trains_a_step(modulated):
    torch.manual_seed(0)
    model = _tiny_resnet(modulated).train()
    assert all(isinstance(b.conv2, DFConv2d) for name in ("layer2", "layer3", "layer4") for b in getattr(model, name))
    x = torch.randn(2, 3, 64, 64)
    outputs = model(x)
    assert [o.shape[1:] for o in outputs] == [(16, 16, 16), (32, 8, 8), (64, 4, 4), (128, 2, 2)]
    loss = sum(o.square().mean() for o in outputs)
    loss.backward()
    dcn = model.layer3[1].conv2
    for p in (dcn.offset.weight, dcn.offset.bias, dcn.conv.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert "layer3.1.conv2.offset.weight" in changed and "layer4.0.conv2.conv.weight" in changed
    new_loss = sum(o.square().mean() for o in model(x))
    assert torch.isfinite(new_loss) and new_loss < loss


def test_dcn_works_with_group_norm_and_batch_norm():
    for norm in (lambda channels: torch.nn.GroupNorm(2, channels), torch.nn.BatchNorm2d):
        model = _tiny_resnet(True, norm=norm)
        out = model(torch.randn(2, 3, 32, 32))
        sum(o.sum() for o in out).backward()
        assert model.layer2[0].conv2.offset.weight.grad is not None


def test_freezing_covers_the_deformable_layers():
    model = _tiny_resnet(True, freeze_at=3)
    assert not any(p.requires_grad for p in model.layer2.parameters())
    assert all(p.requires_grad for p in model.layer3.parameters())


def test_a_dcn_block_matches_the_unfolded_computation():
    torch.manual_seed(0)
    block = Bottleneck(16, 8, 32, num_groups=2, stride=2, dcn_config=DCNSpec(True, 2))
    for m in (block.bn1, block.bn2, block.bn3, block.downsample[1]):
        fresh = _frozen_bn(m.weight.numel())
        m.load_state_dict(fresh.state_dict())
    with torch.no_grad():
        block.conv2.offset.weight.mul_(0.1)
    x = torch.randn(2, 16, 10, 10)
    identity = block.downsample[1](block.downsample[0](x))
    out = F.relu(block.bn1(block.conv1(x)))
    out = F.relu(block.bn2(block.conv2(out)))
    expected = F.relu(block.bn3(block.conv3(out)) + identity)
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_res5_head_and_errors():
    head = ResNetHead(
        Bottleneck, (StageSpec(4, 3, False),), res2_out_channels=16, width_per_group=4, stage_with_dcn=(0, 0, 0, 1)
    )
    assert all(isinstance(b.conv2, DFConv2d) for b in head.layer4)
    assert head(torch.randn(2, 64, 8, 8)).shape == (2, 128, 4, 4)
    with pytest.raises(ValueError, match="bottleneck blocks"):
        BasicBlock(8, 8, 8, dcn_config=DCNSpec(False, 1))
    c = cfg.clone()
    c.MODEL.BACKBONE.CONV_BODY = "R-18-FPN"
    c.MODEL.RESNETS.STAGE_WITH_DCN = (False, True, True, True)
    with pytest.raises(ValueError, match="bottleneck blocks"):
        build_backbone(c)
