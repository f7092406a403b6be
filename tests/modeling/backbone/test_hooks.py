"""Hooks on the ResNet's convolutions and norms fire with what the original's modules produced,
although unhooked FrozenBatchNorm2d layers are folded into their convolutions."""

import pytest
import torch
import torch.nn.functional as F

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.modeling.backbone import build_backbone


@pytest.fixture(scope="module")
def backbone():
    c = cfg.clone()
    c.MODEL.BACKBONE.CONV_BODY = "R-18-C4"
    c.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    torch.manual_seed(0)
    model = build_backbone(c).eval()
    for name, buf in model.named_buffers():  # non-trivial frozen statistics
        if name.endswith(("running_mean", "weight", "bias")):
            buf.copy_(torch.randn_like(buf) * 0.1 + (1.0 if name.endswith("weight") else 0.0))
        elif name.endswith("running_var"):
            buf.copy_(torch.rand_like(buf) + 0.5)
    return model


def _image():
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("grad", [False, True])
def test_forward_hooks_on_convs_and_norms_see_the_unfolded_tensors(backbone, grad):
    body = backbone.body
    watched = {
        "stem.conv1": body.stem.conv1,
        "stem.bn1": body.stem.bn1,
        "layer1.0.conv1": body.layer1[0].conv1,
        "layer1.0.bn1": body.layer1[0].bn1,
        "layer2.0.downsample": body.layer2[0].downsample,
    }
    seen = {}

    def recorder(name):
        def hook(module, inputs, output):
            seen[name] = (inputs[0], output.clone())  # returns None: the output is not replaced

        return hook

    handles = [m.register_forward_hook(recorder(name)) for name, m in watched.items()]
    try:
        with torch.set_grad_enabled(grad):
            hooked = backbone(_image())[0]
    finally:
        for h in handles:
            h.remove()
    assert sorted(seen) == sorted(watched)
    for prefix in ("stem.", "layer1.0."):
        conv, bn = watched[prefix + "conv1"], watched[prefix + "bn1"]
        conv_in, conv_out = seen[prefix + "conv1"]
        expected = F.conv2d(conv_in, conv.weight, None, conv.stride, conv.padding)
        torch.testing.assert_close(conv_out, expected)
        bn_in, bn_out = seen[prefix + "bn1"]
        torch.testing.assert_close(bn_in, conv_out)
        torch.testing.assert_close(bn_out, bn(conv_out))
    ds_in, ds_out = seen["layer2.0.downsample"]
    ds = watched["layer2.0.downsample"]
    torch.testing.assert_close(ds_out, ds[1](ds[0](ds_in)))
    with torch.set_grad_enabled(grad):
        folded = backbone(_image())[0]  # no hooks left: the fold is back, same result
    torch.testing.assert_close(hooked, folded, rtol=1e-4, atol=1e-4)


def test_global_module_hooks_see_every_convolution(backbone):
    from torch.nn.modules.module import register_module_forward_hook

    called = []
    handle = register_module_forward_hook(lambda mod, inp, out: called.append(type(mod).__name__))
    try:
        with torch.no_grad():
            backbone(_image())
    finally:
        handle.remove()
    num_convs = sum(1 for m in backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert called.count("Conv2d") == num_convs
    assert called.count("FrozenBatchNorm2d") == num_convs  # one norm after each convolution
