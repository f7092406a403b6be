"""FrozenBatchNorm2d, the empty-safe wrappers and smooth_l1_loss against plain torch."""

import torch
from torch.nn import functional as F

from maskrcnn_benchmark.layers.batch_norm import FrozenBatchNorm2d
from maskrcnn_benchmark.layers.misc import BatchNorm2d, Conv2d, ConvTranspose2d, interpolate
from maskrcnn_benchmark.layers.smooth_l1_loss import smooth_l1_loss


def _random_frozen_bn(c, generator):
    bn = FrozenBatchNorm2d(c)
    bn.weight.copy_(torch.rand(c, generator=generator) + 0.5)
    bn.bias.copy_(torch.randn(c, generator=generator))
    bn.running_mean.copy_(torch.randn(c, generator=generator))
    bn.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
    return bn


def test_frozen_bn_matches_the_batchnorm_formula_without_eps():
    # (x - mean) / sqrt(var) * weight + bias with no eps, written out (recent torch refuses eps=0 in
    # batch_norm, so BatchNorm2d cannot serve as the reference).
    g = torch.Generator().manual_seed(0)
    bn = _random_frozen_bn(8, g)
    x = torch.randn(2, 8, 5, 7, generator=g)
    view = lambda t: t.view(1, -1, 1, 1)  # noqa: E731
    expected = (x - view(bn.running_mean)) / view(bn.running_var).sqrt() * view(bn.weight) + view(bn.bias)
    torch.testing.assert_close(bn(x), expected, rtol=1e-5, atol=1e-5)


def test_frozen_bn_has_only_buffers_and_loads_batchnorm_state():
    bn = FrozenBatchNorm2d(4)
    assert list(bn.parameters()) == []
    assert sorted(bn.state_dict()) == ["bias", "running_mean", "running_var", "weight"]
    source = torch.nn.BatchNorm2d(4)
    bn.load_state_dict(source.state_dict())  # num_batches_tracked is dropped, strict load passes


def test_frozen_bn_keeps_half_and_bf16_dtype():
    bn = _random_frozen_bn(3, torch.Generator().manual_seed(1))
    x = torch.randn(1, 3, 4, 4)
    for dtype in (torch.float16, torch.bfloat16):
        y = bn(x.to(dtype))
        assert y.dtype == dtype
        torch.testing.assert_close(y.float(), bn(x), rtol=2e-2, atol=2e-2)


def test_frozen_bn_gradient_flows_to_input_only():
    bn = _random_frozen_bn(3, torch.Generator().manual_seed(2))
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    bn(x).sum().backward()
    expected = (bn.weight * bn.running_var.rsqrt()).view(1, 3, 1, 1).expand_as(x)
    torch.testing.assert_close(x.grad, expected)


def test_empty_batches_keep_shapes():
    x = torch.zeros(0, 4, 7, 7)
    assert Conv2d(4, 6, 3, padding=1)(x).shape == (0, 6, 7, 7)
    assert ConvTranspose2d(4, 6, 2, stride=2)(x).shape == (0, 6, 14, 14)
    assert BatchNorm2d(4).train()(x).shape == (0, 4, 7, 7)
    assert interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).shape == (0, 4, 14, 14)
    assert interpolate(x, size=(3, 5)).shape == (0, 4, 3, 5)


def test_smooth_l1_matches_torch():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g)
    for beta in (1.0 / 9, 1.0, 0.11):
        torch.testing.assert_close(smooth_l1_loss(a, b, beta=beta), F.smooth_l1_loss(a, b, beta=beta))
        torch.testing.assert_close(
            smooth_l1_loss(a, b, beta=beta, size_average=False), F.smooth_l1_loss(a, b, beta=beta, reduction="sum")
        )
    torch.testing.assert_close(smooth_l1_loss(a, b, beta=0.0), F.l1_loss(a, b))


def test_smooth_l1_known_values():
    x = torch.tensor([0.0, 0.05, 1.0])
    loss = smooth_l1_loss(x, torch.zeros(3), beta=0.1, size_average=False)
    torch.testing.assert_close(loss, torch.tensor(0.5 * 0.05**2 / 0.1 + (1.0 - 0.05)))
