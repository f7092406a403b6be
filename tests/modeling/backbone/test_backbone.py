"""Backbones: state_dict layout equals the original's, output shapes and strides, freezing, norms."""

import pytest
import torch

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.layers.batch_norm import FrozenBatchNorm2d
from maskrcnn_benchmark.modeling.backbone import build_backbone

FPN = {"MODEL.BACKBONE.CONV_BODY": "R-50-FPN", "MODEL.RESNETS.BACKBONE_OUT_CHANNELS": 256}
# Backbone-relevant settings of the original's configs of these names (their state_dict layouts
# are in tests/assets/checkpoint_keys.txt).
ORIGINAL_BACKBONES = {
    "e2e_mask_rcnn_R_50_FPN_1x.yaml": FPN,
    "e2e_faster_rcnn_R_50_C4_1x.yaml": {},
    "retinanet/retinanet_R-50-FPN_1x.yaml": {
        "MODEL.BACKBONE.CONV_BODY": "R-50-FPN-RETINANET",
        "MODEL.RESNETS.BACKBONE_OUT_CHANNELS": 256,
    },
    "gn_baselines/e2e_mask_rcnn_R_50_FPN_1x_gn.yaml": {
        **FPN,
        "MODEL.RESNETS.TRANS_FUNC": "BottleneckWithGN",
        "MODEL.RESNETS.STEM_FUNC": "StemWithGN",
        "MODEL.RESNETS.STRIDE_IN_1X1": False,
        "MODEL.FPN.USE_GN": True,
    },
    "e2e_mask_rcnn_X_101_32x8d_FPN_1x.yaml": {
        **FPN,
        "MODEL.BACKBONE.CONV_BODY": "R-101-FPN",
        "MODEL.RESNETS.STRIDE_IN_1X1": False,
        "MODEL.RESNETS.NUM_GROUPS": 32,
        "MODEL.RESNETS.WIDTH_PER_GROUP": 8,
    },
}


def _cfg(overrides):
    c = cfg.clone()
    for key, value in overrides.items():
        node = c
        *path, leaf = key.split(".")
        for part in path:
            node = node[part]
        node[leaf] = value
    return c


@pytest.mark.parametrize("config_name", list(ORIGINAL_BACKBONES))
def test_state_dict_keys_and_shapes_equal_the_originals(config_name, original_checkpoint_keys):
    model = build_backbone(_cfg(ORIGINAL_BACKBONES[config_name]))
    expected = [
        (k[len("backbone.") :], s) for k, s in original_checkpoint_keys[config_name] if k.startswith("backbone.")
    ]
    actual = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert actual == expected


@pytest.mark.parametrize(
    "body,out_channels,num_maps",
    [("R-50-FPN", 256, 5), ("R-18-FPN", 64, 5), ("R-34-FPN", 64, 5), ("R-50-FPN-RETINANET", 256, 5)],
)
def test_fpn_output_shapes(body, out_channels, num_maps):
    overrides = {"MODEL.BACKBONE.CONV_BODY": body, "MODEL.RESNETS.BACKBONE_OUT_CHANNELS": out_channels}
    if body.startswith(("R-18", "R-34")):
        overrides["MODEL.RESNETS.RES2_OUT_CHANNELS"] = 64
    model = build_backbone(_cfg(overrides)).eval()
    with torch.no_grad():
        maps = model(torch.randn(2, 3, 128, 160))
    assert len(maps) == num_maps
    strides = (4, 8, 16, 32, 64) if "RETINANET" not in body else (8, 16, 32, 64, 128)
    for m, s in zip(maps, strides):
        assert m.shape == (2, out_channels, -(-128 // s), -(-160 // s))  # ceil: odd sizes round up


def test_fpn_handles_sizes_not_divisible_by_32():
    model = build_backbone(
        _cfg({**FPN, "MODEL.BACKBONE.CONV_BODY": "R-18-FPN", "MODEL.RESNETS.RES2_OUT_CHANNELS": 64})
    ).eval()
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 100, 75))
    assert [tuple(m.shape[-2:]) for m in maps] == [(25, 19), (13, 10), (7, 5), (4, 3), (2, 2)]


def test_c4_body_output():
    model = build_backbone(cfg.clone()).eval()
    assert model.out_channels == 1024
    with torch.no_grad():
        (c4,) = model(torch.randn(1, 3, 64, 64))
    assert c4.shape == (1, 1024, 4, 4)


@pytest.mark.parametrize(
    "freeze_at,frozen", [(-1, []), (0, []), (1, ["stem"]), (2, ["stem", "layer1"]), (3, ["stem", "layer1", "layer2"])]
)
def test_freeze_conv_body_at(freeze_at, frozen):
    c = _cfg(
        {
            "MODEL.BACKBONE.CONV_BODY": "R-18-C4",
            "MODEL.RESNETS.RES2_OUT_CHANNELS": 64,
            "MODEL.RESNETS.TRANS_FUNC": "BottleneckWithBatchNorm",
            "MODEL.RESNETS.STEM_FUNC": "StemWithBatchNorm",
            "MODEL.BACKBONE.FREEZE_CONV_BODY_AT": freeze_at,
        }
    )
    body = build_backbone(c).body
    for name in ["stem", "layer1", "layer2", "layer3"]:
        flags = {p.requires_grad for p in getattr(body, name).parameters()}
        assert flags == ({False} if name in frozen else {True}), name


def test_stride_placement_and_groups():
    msra = build_backbone(_cfg(FPN)).body
    assert msra.layer2[0].conv1.stride == (2, 2) and msra.layer2[0].conv2.stride == (1, 1)
    x101 = build_backbone(_cfg(ORIGINAL_BACKBONES["e2e_mask_rcnn_X_101_32x8d_FPN_1x.yaml"])).body
    assert x101.layer2[0].conv1.stride == (1, 1) and x101.layer2[0].conv2.stride == (2, 2)
    assert x101.layer2[0].conv2.groups == 32 and x101.layer2[0].conv2.weight.shape == (512, 16, 3, 3)


def test_norm_kinds():
    frozen = build_backbone(_cfg(FPN)).body
    assert isinstance(frozen.layer1[0].bn1, FrozenBatchNorm2d)
    gn = build_backbone(_cfg(ORIGINAL_BACKBONES["gn_baselines/e2e_mask_rcnn_R_50_FPN_1x_gn.yaml"])).body
    assert isinstance(gn.stem.bn1, torch.nn.GroupNorm) and gn.layer1[0].bn1.num_groups == 32
    bn = build_backbone(_cfg({**FPN, "MODEL.RESNETS.TRANS_FUNC": "BottleneckWithBatchNorm"})).body
    assert isinstance(bn.layer1[0].bn1, torch.nn.BatchNorm2d) and isinstance(bn.stem.bn1, FrozenBatchNorm2d)


def test_unknown_names_are_explained():
    with pytest.raises(KeyError, match="R-51-FPN"):
        build_backbone(_cfg({"MODEL.BACKBONE.CONV_BODY": "R-51-FPN"}))
    with pytest.raises(KeyError, match="TRANS_FUNC"):
        build_backbone(_cfg({**FPN, "MODEL.RESNETS.TRANS_FUNC": "Nope"}))


def test_backward_reaches_unfrozen_parameters_only():
    c = _cfg(
        {
            "MODEL.BACKBONE.CONV_BODY": "R-18-FPN",
            "MODEL.RESNETS.RES2_OUT_CHANNELS": 64,
            "MODEL.RESNETS.BACKBONE_OUT_CHANNELS": 32,
        }
    )
    model = build_backbone(c)
    sum(m.sum() for m in model(torch.randn(1, 3, 64, 64))).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:
            assert p.grad is None, name


def test_group_norm_settings_come_from_the_given_config_not_the_global_one():
    c = _cfg({**ORIGINAL_BACKBONES["gn_baselines/e2e_mask_rcnn_R_50_FPN_1x_gn.yaml"], "MODEL.GROUP_NORM.NUM_GROUPS": 8})
    model = build_backbone(c)
    assert cfg.MODEL.GROUP_NORM.NUM_GROUPS == 32
    assert model.body.stem.bn1.num_groups == 8 and model.body.layer2[0].bn2.num_groups == 8
    assert model.fpn.fpn_inner1[1].num_groups == 8


def test_frozen_bn_folded_into_the_convolution_is_exact_and_trains():
    from maskrcnn_benchmark.modeling.backbone.resnet import conv_norm

    g = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=False)
    bn = FrozenBatchNorm2d(6)
    bn.weight.copy_(torch.rand(6, generator=g) + 0.5)
    bn.bias.copy_(torch.randn(6, generator=g))
    bn.running_mean.copy_(torch.randn(6, generator=g))
    bn.running_var.copy_(torch.rand(6, generator=g) + 0.5)
    x = torch.randn(2, 4, 9, 9, generator=g)
    torch.testing.assert_close(conv_norm(conv, bn, x), bn(conv(x)), rtol=1e-5, atol=1e-5)
    conv_norm(conv, bn, x).sum().backward()
    fused_grad = conv.weight.grad.clone()
    conv.weight.grad = None
    bn(conv(x)).sum().backward()
    torch.testing.assert_close(fused_grad, conv.weight.grad, rtol=1e-4, atol=1e-4)


def test_folded_frozen_bn_is_cached_without_autograd_and_follows_weight_changes():
    from maskrcnn_benchmark.modeling.backbone.resnet import conv_norm

    g = torch.Generator().manual_seed(3)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=False)
    bn = FrozenBatchNorm2d(6)
    bn.running_var.uniform_(0.5, 2.0, generator=g)
    x = torch.randn(1, 4, 9, 9, generator=g)
    with torch.inference_mode():
        first = conv_norm(conv, bn, x)
        cached = conv._folded_frozen_bn[1][0]
        assert conv_norm(conv, bn, x) is not None and conv._folded_frozen_bn[1][0] is cached  # reused
        torch.testing.assert_close(first, bn(conv(x)), rtol=1e-5, atol=1e-5)
    # Changed in place (load_state_dict copies in place) -> recomputed.
    conv.load_state_dict({"weight": torch.randn(6, 4, 3, 3, generator=g)})
    bn.running_mean.add_(1.0)
    with torch.no_grad():
        torch.testing.assert_close(conv_norm(conv, bn, x), bn(conv(x)), rtol=1e-5, atol=1e-5)
    assert conv._folded_frozen_bn[1][0] is not cached
    # With autograd the fold is recomputed (and gradients flow), also after inference-mode use.
    conv_norm(conv, bn, x).sum().backward()
    assert conv.weight.grad is not None
