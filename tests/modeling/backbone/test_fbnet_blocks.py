"""FBNet building blocks against plain-PyTorch references and their documented shapes."""

import pytest
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.modeling.backbone import fbnet_builder
from maskrcnn_benchmark.modeling.backbone.fbnet_blocks import (
    PRIMITIVES,
    ChannelShuffle,
    ConvBNRelu,
    Identity,
    IRFBlock,
    SEModule,
    Shift,
    _get_divisible_by,
)


def test_the_39_primitives_of_the_original():
    assert len(PRIMITIVES) == 39
    assert fbnet_builder.PRIMITIVES is PRIMITIVES  # the original's import path
    expected = {"skip", "ir_k3", "ir_k5", "ir_k7", "ir_k1", "shuffle", "basic_block", "shift_5x5", "ir_k3_sep"}
    expected |= {f"ir_k{k}_{v}{se}" for k in (3, 5) for v in ("e1", "e3", "e6", "s4", "s2") for se in ("", "_se")}
    expected |= {f"ir_k33_e{e}" for e in (1, 3, 6)} | {f"ir_k7_e{e}" for e in (1, 3, 6)}
    expected |= {"ir_k7_sep"} | {f"ir_k7_sep_e{e}" for e in (1, 3, 6)}
    assert set(PRIMITIVES) == expected


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@pytest.mark.parametrize("batch", [3, 0])
def test_primitive_shapes(name, batch):
    torch.manual_seed(0)
    for stride, size_out in ((1, 7), (2, 4)):
        if name == "ir_k1" and stride == 2:
            with pytest.raises(ValueError, match="kernel 1"):
                PRIMITIVES[name](16, 32, 4, stride)
            continue
        op = PRIMITIVES[name](16, 32, 4, stride).eval()
        y = op(torch.rand(batch, 16, 7, 7))
        assert y.shape == (batch, 32, size_out, size_out), name
        assert op.output_depth == 32


def test_divisible_by_rounds_half_away_from_zero():
    # 36 / 8 = 4.5 rounds to 5 (Python 3's round would give 4 -> 32 channels, not the original's 40);
    # 3 / 8 rounds to 0 multiples, replaced by min_val = 8 multiples.
    cases = {(36, 8, 8): 40, (20, 8, 8): 24, (12, 8, 8): 16, (4, 8, 8): 8, (3, 8, 8): 64, (96, 8, 8): 96, (7, 0, 0): 7}
    for args, expected in cases.items():
        assert _get_divisible_by(*args) == expected, args


def test_identity_passes_through_or_projects():
    x = torch.rand(10, 20, 7, 7)
    assert Identity(20, 20, 1)(x) is x
    assert Identity(20, 40, 2).eval()(x).shape == (10, 40, 4, 4)


def test_channel_shuffle_is_the_group_transpose():
    x = torch.arange(2 * 12 * 2 * 2, dtype=torch.float32).view(2, 12, 2, 2)
    groups, per_group = 3, 4
    # Output channel k * groups + g is input channel g * per_group + k.
    order = [g * per_group + k for k in range(per_group) for g in range(groups)]
    torch.testing.assert_close(ChannelShuffle(groups)(x), x[:, order])
    with pytest.raises(ValueError, match="not divisible"):
        ChannelShuffle(5)(x)


def test_shift_moves_each_channel_group_by_one_offset():
    C, k = 30, 5  # one channel per offset, the centre gets 1 + 30 % 25 = 6
    shift = Shift(C, k, stride=1, padding=2)
    x = torch.randn(2, C, 6, 7)
    y = shift(x)
    padded = F.pad(x, (2, 2, 2, 2))
    channel = 0
    for i in range(k):
        for j in range(k):
            count = 6 if (i, j) == (2, 2) else 1
            for c in range(channel, channel + count):
                # A cross-correlation with a one-hot kernel at (i, j) reads the input at (y + i - 2, x + j - 2).
                torch.testing.assert_close(y[:, c], padded[:, c, i : i + 6, j : j + 7])
            channel += count
    assert not shift.kernel.requires_grad


def _reference_conv_bn_relu(m: ConvBNRelu, x):
    conv = m.conv
    y = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    if hasattr(m, "bn"):
        bn = m.bn
        y = (y - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
        y = y * bn.weight[:, None, None] + bn.bias[:, None, None]
    return y.clamp(min=0) if hasattr(m, "relu") else y


def _randomise_bn(module):
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


@pytest.mark.parametrize(
    "options",
    [
        dict(kernel=3),
        dict(kernel=5, dw_skip_bn=True, dw_skip_relu=True),
        dict(kernel=3, shuffle_type="mid", pw_group=2, se=True),
        dict(kernel=3, cdw=True),
    ],
)
def test_irf_block_equals_a_plain_reference(options):
    torch.manual_seed(0)
    block = IRFBlock(16, 16, 3, 1, width_divisor=8, **options).eval()
    _randomise_bn(block)
    x = torch.randn(2, 16, 9, 9)
    mid = _reference_conv_bn_relu(block.pw, x)
    assert mid.shape[1] == 48
    if options.get("shuffle_type") == "mid":
        mid = ChannelShuffle(options["pw_group"])(mid)
    dws = [block.dw.dw1, block.dw.dw2] if options.get("cdw") else [block.dw]
    for dw in dws:
        mid = _reference_conv_bn_relu(dw, mid)
    assert hasattr(dws[-1], "bn") != options.get("dw_skip_bn", False)
    assert hasattr(dws[-1], "relu") != options.get("dw_skip_relu", False)
    expected = _reference_conv_bn_relu(block.pwl, mid) + x  # stride 1, same channels: residual
    if options.get("se"):
        se = block.se4.op
        s = expected.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(F.conv2d(F.relu(F.conv2d(s, se[1].weight, se[1].bias)), se[3].weight, se[3].bias))
        expected = expected * s
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_irf_block_upsamples_with_a_negative_stride():
    block = IRFBlock(8, 4, 2, -2).eval()
    assert block.upscale is not None and block.dw.conv.stride == (1, 1)
    assert block(torch.rand(1, 8, 5, 6)).shape == (1, 4, 10, 12)
    with pytest.raises(ValueError, match="stride"):
        IRFBlock(8, 4, 2, 3)


def test_se_module_bottleneck_width():
    assert SEModule(64).op[1].out_channels == 16
    assert SEModule(16).op[1].out_channels == 8  # at least 8


def test_conv_bn_relu_norm_choices():
    assert type(ConvBNRelu(4, 8, 3, 1, 1, True, "relu", "af").bn).__name__ == "FrozenBatchNorm2d"
    gn = ConvBNRelu(4, 8, 3, 1, 1, True, None, ("gn", 4))
    assert isinstance(gn.bn, torch.nn.GroupNorm) and gn.bn.num_groups == 4 and not hasattr(gn, "relu")
    assert not hasattr(ConvBNRelu(4, 8, 3, 1, 1, True, "relu", None), "bn")
    with pytest.raises(ValueError, match="bn_type"):
        ConvBNRelu(4, 8, 3, 1, 1, True, "relu", "syncbn")
