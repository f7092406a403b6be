"""Deformable convolutions v1 and v2: against a plain-PyTorch bilinear-sampling reference (float64),
gradients (gradcheck), the ordinary-convolution special case, the offset channel layout, the
DFConv2d / ModulatedDeformConvPack wrappers, and CPU == CUDA where a GPU is present."""

import pytest
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.layers import (
    DeformConv,
    DFConv2d,
    ModulatedDeformConv,
    ModulatedDeformConvPack,
    deform_conv,
    modulated_deform_conv,
)


def _bilinear(img, py, px):
    """img [N, c, H, W] sampled at rows py / columns px [N, Ho, Wo]: 0 outside (-1, H) x (-1, W),
    corners outside the map count 0."""
    n, c, h, w = img.shape
    inside = (py > -1) & (py < h) & (px > -1) & (px < w)
    y0, x0 = torch.floor(py), torch.floor(px)
    ly, lx = py - y0, px - x0
    flat = img.reshape(n, c, h * w)
    out = img.new_zeros(n, c, *py.shape[1:])
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            valid = inside & (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).long().reshape(n, 1, -1).expand(n, c, -1)
            values = flat.gather(2, index).reshape(n, c, *py.shape[1:])
            out = out + values * (wy * wx * valid)[:, None]
    return out


def reference_deform_conv(x, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    """Deformable convolution written out: sample every kernel tap, then a grouped matrix product."""
    (sh, sw), (ph, pw), (dh, dw) = (torch.nn.modules.utils._pair(v) for v in (stride, padding, dilation))
    n, c, h, w = x.shape
    out_channels, c_per_group, kh, kw = weight.shape
    groups = c // c_per_group
    taps = kh * kw
    dg = offset.shape[1] // (2 * taps)
    ho, wo = offset.shape[-2:]
    rows = (torch.arange(ho, dtype=x.dtype) * sh - ph).view(1, ho, 1)
    cols = (torch.arange(wo, dtype=x.dtype) * sw - pw).view(1, 1, wo)
    columns = x.new_zeros(n, c, taps, ho, wo)
    per_dg = c // dg
    for g in range(dg):
        chans = slice(g * per_dg, (g + 1) * per_dg)
        for i in range(kh):
            for j in range(kw):
                k = i * kw + j
                py = rows + i * dh + offset[:, g * 2 * taps + 2 * k]
                px = cols + j * dw + offset[:, g * 2 * taps + 2 * k + 1]
                sampled = _bilinear(x[:, chans], py, px)
                if mask is not None:
                    sampled = sampled * mask[:, g * taps + k][:, None]
                columns[:, chans, k] = sampled
    columns = columns.reshape(n, groups, c_per_group * taps, ho * wo)
    w2 = weight.reshape(groups, out_channels // groups, c_per_group * taps)
    out = torch.einsum("gok,ngkp->ngop", w2, columns).reshape(n, out_channels, ho, wo)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# (in, out, kernel, stride, padding, dilation, groups, deformable_groups)
CASES = [
    (4, 6, (3, 3), 1, 1, 1, 1, 1),
    (4, 6, (3, 3), 2, 1, 1, 2, 2),
    (4, 4, (3, 3), 1, 2, 2, 1, 4),
    (6, 4, (2, 3), (1, 2), (0, 1), 1, 2, 3),
]


def _inputs(cin, cout, kernel, stride, padding, dilation, groups, dg, n=2, h=7, w=6, dtype=torch.float64):
    kh, kw = kernel
    sh, sw = torch.nn.modules.utils._pair(stride)
    ph, pw = torch.nn.modules.utils._pair(padding)
    dh, dw = torch.nn.modules.utils._pair(dilation)
    ho, wo = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    x = torch.randn(n, cin, h, w, dtype=dtype)
    # Offsets of up to +-3 pixels: many samples fall partly or wholly outside the map.
    offset = (torch.rand(n, 2 * dg * kh * kw, ho, wo, dtype=dtype) - 0.5) * 6
    mask = torch.rand(n, dg * kh * kw, ho, wo, dtype=dtype)
    weight = torch.randn(cout, cin // groups, kh, kw, dtype=dtype)
    bias = torch.randn(cout, dtype=dtype)
    return x, offset, mask, weight, bias


@pytest.mark.parametrize("case", CASES)
def test_deform_conv_matches_the_reference(case):
    cin, cout, kernel, stride, padding, dilation, groups, dg = case
    x, offset, _, weight, _ = _inputs(*case)
    out = deform_conv(x, offset, weight, stride, padding, dilation, groups, dg)
    expected = reference_deform_conv(x, offset, weight, None, stride, padding, dilation)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES)
def test_modulated_deform_conv_matches_the_reference(case):
    cin, cout, kernel, stride, padding, dilation, groups, dg = case
    x, offset, mask, weight, bias = _inputs(*case)
    out = modulated_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation, groups, dg)
    expected = reference_deform_conv(x, offset, weight, bias, stride, padding, dilation, mask)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def test_gradients_match_the_reference():
    case = CASES[1]
    x, offset, mask, weight, bias = _inputs(*case)
    tensors = [t.requires_grad_() for t in (x, offset, mask, weight, bias)]
    grad_out = None
    grads = []
    for fn in (modulated_deform_conv, None):
        if fn is None:
            out = reference_deform_conv(x, offset, weight, bias, case[3], case[4], case[5], mask)
        else:
            out = fn(x, offset, mask, weight, bias, case[3], case[4], case[5], case[6], case[7])
        grad_out = torch.randn_like(out) if grad_out is None else grad_out
        grads.append(torch.autograd.grad(out, tensors, grad_out))
    for name, a, b in zip(("input", "offset", "mask", "weight", "bias"), *grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=name)


@pytest.mark.parametrize("case", [CASES[0], CASES[1]])
def test_gradcheck_v1(case):
    x, offset, _, weight, _ = _inputs(*case, n=1, h=5, w=5)
    cin, cout, kernel, stride, padding, dilation, groups, dg = case
    args = [t.requires_grad_() for t in (x, offset, weight)]

    def fn(x, offset, weight):
        return deform_conv(x, offset, weight, stride, padding, dilation, groups, dg)

    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("case", [CASES[0], CASES[1]])
def test_gradcheck_v2(case):
    x, offset, mask, weight, bias = _inputs(*case, n=1, h=5, w=5)
    cin, cout, kernel, stride, padding, dilation, groups, dg = case
    args = [t.requires_grad_() for t in (x, offset, mask, weight, bias)]

    def fn(x, offset, mask, weight, bias):
        return modulated_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation, groups, dg)

    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5, fast_mode=True)


def test_gradcheck_v2_every_entry():
    # Full (not fast-mode) gradcheck on a tiny case: every Jacobian entry.
    x, offset, mask, weight, bias = _inputs(2, 2, (3, 3), 1, 1, 1, 1, 1, n=1, h=3, w=3)
    args = [t.requires_grad_() for t in (x, offset, mask, weight, bias)]

    def fn(x, offset, mask, weight, bias):
        return modulated_deform_conv(x, offset, mask, weight, bias, 1, 1)

    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_zero_offsets_and_unit_mask_give_an_ordinary_convolution(case):
    cin, cout, kernel, stride, padding, dilation, groups, dg = case
    x, offset, mask, weight, bias = _inputs(*case)
    offset.zero_()
    mask.fill_(1)
    conv = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    torch.testing.assert_close(
        deform_conv(x, offset, weight, stride, padding, dilation, groups, dg), conv - bias.view(-1, 1, 1)
    )
    torch.testing.assert_close(
        modulated_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation, groups, dg), conv
    )


def test_offset_channels_are_dy_then_dx_per_kernel_tap():
    # Moving every tap one row down (dy = 1 in the even channels) equals an ordinary convolution
    # whose window starts one row lower: no zero row above, two below. One column right (dx = 1,
    # the odd channels): two zero columns on the right.
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    offset = torch.zeros(1, 18, 6, 7, dtype=torch.float64)
    dy, dx = offset.clone(), offset.clone()
    dy[:, 0::2] = 1
    dx[:, 1::2] = 1
    torch.testing.assert_close(deform_conv(x, dy, weight, padding=1), F.conv2d(F.pad(x, (1, 1, 0, 2)), weight))
    torch.testing.assert_close(deform_conv(x, dx, weight, padding=1), F.conv2d(F.pad(x, (0, 2, 1, 1)), weight))


def test_mask_scales_each_tap():
    x, offset, mask, weight, bias = _inputs(*CASES[0])
    half = modulated_deform_conv(x, offset, torch.full_like(mask, 0.5), weight, None, 1, 1)
    full = modulated_deform_conv(x, offset, torch.ones_like(mask), weight, None, 1, 1)
    torch.testing.assert_close(half, full / 2)
    torch.testing.assert_close(full, deform_conv(x, offset, weight, 1, 1))


def test_float32_matches_float64():
    x, offset, mask, weight, bias = _inputs(*CASES[1])
    out64 = modulated_deform_conv(x, offset, mask, weight, bias, 2, 1, 1, 2, 2)
    out32 = modulated_deform_conv(*(t.float() for t in (x, offset, mask, weight, bias)), 2, 1, 1, 2, 2)
    torch.testing.assert_close(out32, out64.float(), rtol=1e-4, atol=1e-4)


def test_shape_errors_are_reported():
    x = torch.randn(1, 4, 5, 5)
    weight = torch.randn(4, 4, 3, 3)
    with pytest.raises(ValueError, match="offset has 9 channels"):
        deform_conv(x, torch.zeros(1, 9, 5, 5), weight, padding=1)
    with pytest.raises(ValueError, match="mask has 18 channels"):
        modulated_deform_conv(x, torch.zeros(1, 18, 5, 5), torch.zeros(1, 18, 5, 5), weight, padding=1)
    with pytest.raises(ValueError, match="input has 4 channels"):
        deform_conv(x, torch.zeros(1, 18, 5, 5), torch.randn(4, 2, 3, 3), padding=1)
    with pytest.raises(ValueError, match="must divide by deformable_groups"):
        DeformConv(4, 4, 3, deformable_groups=3)
    with pytest.raises(ValueError, match="no bias"):
        DeformConv(4, 4, 3, bias=True)


def test_modules_hold_the_originals_parameters():
    v1 = DeformConv(8, 16, 3, padding=1, groups=2, deformable_groups=2)
    v2 = ModulatedDeformConv(8, 16, 3, padding=1)
    assert [(k, tuple(p.shape)) for k, p in v1.named_parameters()] == [("weight", (16, 4, 3, 3))]
    assert [(k, tuple(p.shape)) for k, p in v2.named_parameters()] == [("weight", (16, 8, 3, 3)), ("bias", (16,))]
    bound = 1 / (8 * 9) ** 0.5
    assert v1.weight.abs().max() <= bound and v2.weight.abs().max() <= bound
    assert (v2.bias == 0).all()
    x = torch.randn(2, 8, 6, 6)
    offset = torch.randn(2, 36, 6, 6)
    torch.testing.assert_close(v1(x, offset), deform_conv(x, offset, v1.weight, 1, 1, 1, 2, 2))


@pytest.mark.parametrize("modulated", [False, True])
@pytest.mark.parametrize("dg", [1, 2])
def test_dfconv2d(modulated, dg):
    torch.manual_seed(1)
    m = DFConv2d(8, 6, with_modulated_dcn=modulated, stride=2, dilation=2, deformable_groups=dg).double()
    per_tap = 3 if modulated else 2
    assert [(k, tuple(p.shape)) for k, p in m.state_dict().items()] == [
        ("offset.weight", (dg * per_tap * 9, 8, 3, 3)),
        ("offset.bias", (dg * per_tap * 9,)),
        ("conv.weight", (6, 8, 3, 3)),
    ]
    assert isinstance(m.conv, ModulatedDeformConv if modulated else DeformConv)
    assert m.padding == (2, 2) and m.conv.padding == (2, 2) and m.offset.padding == (2, 2)
    # The original's init: Kaiming-uniform offset predictor, zero bias.
    assert (m.offset.bias == 0).all() and m.offset.weight.abs().sum() > 0
    x = torch.randn(2, 8, 9, 9, dtype=torch.float64)
    out = m(x)
    assert out.shape == (2, 6, 5, 5)
    pred = m.offset(x)
    if modulated:
        # The original's split: three equal chunks o1, o2, m; offset = cat(o1, o2), mask = sigmoid(m).
        o1, o2, logits = pred.chunk(3, dim=1)
        expected = reference_deform_conv(x, torch.cat((o1, o2), 1), m.conv.weight, None, 2, 2, 2, logits.sigmoid())
    else:
        expected = reference_deform_conv(x, pred, m.conv.weight, None, 2, 2, 2)
    torch.testing.assert_close(out, expected)
    # With a zero offset predictor (and mask logits pushed to 1), an ordinary convolution.
    with torch.no_grad():
        m.offset.weight.zero_()
        if modulated:
            m.offset.bias[-dg * 9 :] = 50.0
    torch.testing.assert_close(m(x), F.conv2d(x, m.conv.weight, None, 2, 2, 2))
    # An empty batch gives an empty output of the right shape.
    assert m(x[:0]).shape == (0, 6, 5, 5)


def test_dfconv2d_backward_reaches_every_parameter():
    m = DFConv2d(4, 4, with_modulated_dcn=True)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    m(x).square().sum().backward()
    for name, p in [("x", x)] + list(m.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_modulated_deform_conv_pack_starts_as_half_a_convolution():
    m = ModulatedDeformConvPack(4, 6, 3, padding=1).double()
    assert (m.conv_offset_mask.weight == 0).all() and (m.conv_offset_mask.bias == 0).all()
    assert m.conv_offset_mask.out_channels == 27
    with torch.no_grad():
        m.bias.normal_()
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(m(x), F.conv2d(x, m.weight * 0.5, m.bias, padding=1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("case", CASES)
def test_cuda_matches_cpu(case):
    cin, cout, kernel, stride, padding, dilation, groups, dg = case
    cpu = [t.requires_grad_() for t in _inputs(*case)]
    cuda = [t.detach().cuda().requires_grad_() for t in cpu]
    outs = []
    for x, offset, mask, weight, bias in (cpu, cuda):
        out = modulated_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation, groups, dg)
        out = out + deform_conv(x, offset, weight, stride, padding, dilation, groups, dg)
        out.backward(torch.ones_like(out))
        outs.append(out)
    torch.testing.assert_close(outs[1].cpu(), outs[0], rtol=1e-9, atol=1e-9)
    for a, b in zip(cpu, cuda):
        torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=1e-7, atol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_dfconv2d_runs_on_cuda_in_half_precision_autocast():
    m = DFConv2d(8, 8, with_modulated_dcn=True).cuda()
    x = torch.randn(2, 8, 16, 16, device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        out = m(x)
    out.float().sum().backward()
    assert torch.isfinite(out).all() and m.conv.weight.grad is not None
