"""Tests of ROIAlign (maskrcnn_benchmark.layers.roi_align and torch.ops.maskrcnn_benchmark.roi_align_*)."""

import math

import pytest
import torch
import torchvision

from maskrcnn_benchmark.layers.roi_align import ROIAlign, roi_align

ops = torch.ops.maskrcnn_benchmark
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


# ------------------------------------------------------------------------------------------------
# helpers


def make_rois(num, batch, img_h, img_w, generator, dtype=torch.float32):
    """Random boxes of every kind: inside, partly or wholly outside the image, tiny (< 1 px), huge."""
    g = generator
    kinds = torch.randint(0, 5, (num,), generator=g)
    size = torch.rand(num, 2, generator=g) * torch.tensor([img_w, img_h]) * 0.6 + 1.0
    size[kinds == 1] = torch.rand(int((kinds == 1).sum()), 2, generator=g) * 0.9  # tiny
    size[kinds == 2] *= 4.0  # huge
    lo = torch.rand(num, 2, generator=g) * torch.tensor([img_w, img_h]) * 1.4 - torch.tensor([img_w, img_h]) * 0.3
    lo[kinds == 3] = -size[kinds == 3] - 5.0  # wholly outside (above / left)
    b = torch.randint(0, batch, (num, 1), generator=g).to(dtype)
    return torch.cat([b, lo, lo + size], dim=1).to(dtype)


def reference_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned=False):
    """Plain-PyTorch ROIAlign with the original semantics (computed in the dtype of `input`)."""
    dt = input.dtype
    n, c, h, w = input.shape
    ph, pw = output_size
    out = input.new_zeros((rois.shape[0], c, ph, pw))
    scale = torch.tensor(spatial_scale, dtype=dt)
    offset = torch.tensor(0.5 if aligned else 0.0, dtype=dt)

    def axis(start, bin_size, pooled, grid, size):
        # coordinates [pooled, grid] and bilinear (lo, hi, wlo, whi), zero weights when outside [-1, size]
        p = torch.arange(pooled, dtype=dt)[:, None]
        i = torch.arange(grid, dtype=torch.float32)[None, :] + 0.5
        y = start + p * bin_size + i.to(dt) * bin_size / torch.tensor(float(grid), dtype=dt)
        valid = (y >= -1.0) & (y <= size)
        y = y.clamp(min=0)
        lo = y.floor().long()
        at_end = lo >= size - 1
        lo = torch.where(at_end, torch.full_like(lo, size - 1), lo)
        hi = torch.where(at_end, lo, lo + 1)
        y = torch.where(at_end, lo.to(dt), y)
        l = y - lo.to(dt)
        hw = 1.0 - l
        return lo, hi, hw * valid, l * valid

    for k in range(rois.shape[0]):
        roi = rois[k].to(dt)
        b = int(roi[0])
        x1, y1, x2, y2 = [roi[j] * scale - offset for j in range(1, 5)]
        rw, rh = x2 - x1, y2 - y1
        if not aligned:
            rw, rh = torch.clamp(rw, min=1.0), torch.clamp(rh, min=1.0)
        bh, bw = rh / ph, rw / pw
        gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(float(rh / ph)))
        gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(float(rw / pw)))
        if gh <= 0 or gw <= 0:
            continue
        ylo, yhi, wylo, wyhi = axis(y1, bh, ph, gh, h)  # [ph, gh]
        xlo, xhi, wxlo, wxhi = axis(x1, bw, pw, gw, w)  # [pw, gw]
        feat = input[b]  # [C, H, W]

        def gather(yi, xi):  # -> [C, ph, gh, pw, gw]
            return feat[:, yi[:, :, None, None], xi[None, None, :, :]]

        def outer(wy, wx):
            return wy[:, :, None, None] * wx[None, None, :, :]

        val = (
            outer(wylo, wxlo) * gather(ylo, xlo)
            + outer(wylo, wxhi) * gather(ylo, xhi)
            + outer(wyhi, wxlo) * gather(yhi, xlo)
            + outer(wyhi, wxhi) * gather(yhi, xhi)
        )
        out[k] = val.sum(dim=(2, 4)) / max(gh * gw, 1)
    return out


def tv_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    return torchvision.ops.roi_align(input, rois.to(input.dtype), output_size, spatial_scale, sampling_ratio, aligned)


CASES = [  # (aligned, sampling_ratio)
    (False, 2),
    (False, 0),
    (True, 2),
    (True, 0),
]


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 37, 23, 29, generator=g)
    rois = make_rois(60, 3, 23 / 0.25, 29 / 0.25, g)
    return x, rois


# ------------------------------------------------------------------------------------------------
# forward


@pytest.mark.parametrize("aligned,sampling_ratio", CASES)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_forward_matches_torchvision(data, aligned, sampling_ratio, layout):
    x, rois = data
    xin = x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x
    out = roi_align(xin, rois, (7, 6), 0.25, sampling_ratio, aligned)
    expected = tv_roi_align(x, rois, (7, 6), 0.25, sampling_ratio, aligned)
    assert out.shape == (60, 37, 7, 6) and out.dtype == torch.float32 and out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("aligned,sampling_ratio", CASES)
def test_forward_matches_reference(data, aligned, sampling_ratio):
    x, rois = data
    x, rois = x[:, :5], rois[:25]
    out = roi_align(x, rois, 5, 0.25, sampling_ratio, aligned)
    torch.testing.assert_close(
        out, reference_roi_align(x, rois, (5, 5), 0.25, sampling_ratio, aligned), rtol=0, atol=1e-5
    )
    # float64 end to end: agreement to rounding
    out64 = roi_align(x.double(), rois.double(), 5, 0.25, sampling_ratio, aligned)
    ref64 = reference_roi_align(x.double(), rois.double(), (5, 5), 0.25, sampling_ratio, aligned)
    torch.testing.assert_close(out64, ref64, rtol=0, atol=1e-12)


def test_hand_computed_value():
    # 1x1x2x2 map [[0, 1], [2, 3]]; a box covering the map at scale 1 with one sample per bin:
    # the sample sits at (0.5 * 2 / 1) = (1, 1) -> clamped to the last row/column -> value 3.
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    out = roi_align(x, torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]]), 1, 1.0, 1)
    assert out.item() == 3.0
    # aligned=True: the sample moves to (0.5, 0.5) -> mean of the four pixels
    out = roi_align(x, torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]]), 1, 1.0, 1, aligned=True)
    assert out.item() == pytest.approx(1.5)
    # tiny box (< 1 px) at x1 = y1 = 0.25: forced to 1 px, one sample at (0.75, 0.75)
    out = roi_align(x, torch.tensor([[0.0, 0.25, 0.25, 0.5, 0.5]]), 1, 1.0, 1)
    expected = 0.25 * 0.25 * 0 + 0.25 * 0.75 * 1 + 0.75 * 0.25 * 2 + 0.75 * 0.75 * 3
    assert out.item() == pytest.approx(expected)


def test_zero_size_and_degenerate_boxes():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 10, 12, generator=g)
    rois = torch.tensor(
        [
            [0, 5.0, 5.0, 5.0, 5.0],  # zero size
            [1, 8.0, 3.0, 2.0, 1.0],  # x2 < x1, y2 < y1
            [0, -50.0, -50.0, -40.0, -40.0],  # wholly outside
            [1, 0.0, 0.0, 1e4, 1e4],  # huge
            [0, 47.9, 39.9, 48.0, 40.0],  # at the far corner
        ]
    )
    for aligned in (False, True):
        for sr in (2, 0):
            out = roi_align(x, rois, 3, 0.25, sr, aligned)
            assert torch.isfinite(out).all()
            torch.testing.assert_close(out, tv_roi_align(x, rois, 3, 0.25, sr, aligned), rtol=0, atol=1e-5)
            xg = x.clone().requires_grad_()
            roi_align(xg, rois, 3, 0.25, sr, aligned).sum().backward()
            xt = x.clone().requires_grad_()
            tv_roi_align(xt, rois, 3, 0.25, sr, aligned).sum().backward()
            torch.testing.assert_close(xg.grad, xt.grad, rtol=0, atol=1e-5)


def test_empty_rois():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    rois = torch.zeros(0, 5)
    out = roi_align(x, rois, (4, 3), 0.5, 2)
    assert out.shape == (0, 3, 4, 3)
    out.sum().backward()
    assert x.grad.shape == x.shape and (x.grad == 0).all()


def test_rois_dtype_may_differ_and_list_of_boxes(data):
    x, rois = data
    ref = roi_align(x, rois, 4, 0.25, 2)
    torch.testing.assert_close(roi_align(x, rois.double(), 4, 0.25, 2), ref)
    per_image = [rois[rois[:, 0] == i, 1:] for i in range(3)]
    order = torch.cat([torch.nonzero(rois[:, 0] == i).flatten() for i in range(3)])
    torch.testing.assert_close(roi_align(x, per_image, 4, 0.25, 2), ref[order])


def test_thread_count_does_not_change_results(data):
    x, rois = data
    grad = torch.randn(60, 37, 5, 5, generator=torch.Generator().manual_seed(3))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = roi_align(x, rois, 5, 0.25, 0)
        ga = ops.roi_align_backward(grad, rois, 0.25, 5, 5, 3, 37, 23, 29, 0, False)
    finally:
        torch.set_num_threads(threads)
    b = roi_align(x, rois, 5, 0.25, 0)
    gb = ops.roi_align_backward(grad, rois, 0.25, 5, 5, 3, 37, 23, 29, 0, False)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(ga, gb, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# backward


@pytest.mark.parametrize("aligned,sampling_ratio", CASES)
def test_backward_matches_torchvision(data, aligned, sampling_ratio):
    x, rois = data
    grad = torch.randn(60, 37, 7, 6, generator=torch.Generator().manual_seed(2))
    xg = x.clone().requires_grad_()
    roi_align(xg, rois, (7, 6), 0.25, sampling_ratio, aligned).backward(grad)
    xt = x.clone().requires_grad_()
    tv_roi_align(xt, rois, (7, 6), 0.25, sampling_ratio, aligned).backward(grad)
    assert xg.grad.shape == x.shape and xg.grad.dtype == x.dtype
    torch.testing.assert_close(xg.grad, xt.grad, rtol=0, atol=1e-5)


def test_backward_accepts_non_contiguous_grad(data):
    x, rois = data
    base = torch.randn(37, 60, 6, 7, generator=torch.Generator().manual_seed(4))
    grad = base.permute(1, 0, 3, 2)  # [60, 37, 7, 6], not contiguous
    a = ops.roi_align_backward(grad, rois, 0.25, 7, 6, 3, 37, 23, 29, 2, False)
    b = ops.roi_align_backward(grad.contiguous(), rois, 0.25, 7, 6, 3, 37, 23, 29, 2, False)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    expanded = torch.ones(1, 1, 1, 1).expand(60, 37, 7, 6)
    torch.testing.assert_close(
        ops.roi_align_backward(expanded, rois, 0.25, 7, 6, 3, 37, 23, 29, 2, False),
        ops.roi_align_backward(expanded.contiguous(), rois, 0.25, 7, 6, 3, 37, 23, 29, 2, False),
    )


@pytest.mark.parametrize("aligned,sampling_ratio", CASES)
def test_gradcheck(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor(
        [[0, 1.0, 1.3, 9.7, 11.2], [1, -3.1, 2.2, 5.3, 30.1], [1, 4.4, 4.6, 4.9, 5.0], [0, 20.5, -4.0, 31.0, 8.3]],
        dtype=torch.float64,
    )
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois, (3, 2), 0.5, sampling_ratio, aligned), (x,))
    assert torch.autograd.gradgradcheck(lambda t: roi_align(t, rois, (3, 2), 0.5, sampling_ratio, aligned), (x,))


# ------------------------------------------------------------------------------------------------
# dtypes and layouts


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(data, dtype):
    x, rois = data
    xl = x.to(dtype).requires_grad_()
    out = roi_align(xl, rois, 5, 0.25, 2)
    assert out.dtype == dtype
    ref = roi_align(x.to(dtype).float(), rois, 5, 0.25, 2)  # fp32 on the same (rounded) values
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(6))
    out.backward(grad.to(dtype))
    assert xl.grad.dtype == dtype
    xf = x.to(dtype).float().requires_grad_()
    roi_align(xf, rois, 5, 0.25, 2).backward(grad.to(dtype).float())
    torch.testing.assert_close(xl.grad.float(), xf.grad, rtol=2e-2, atol=3e-2)
    # channels-last low precision input
    out_cl = roi_align(x.to(dtype).contiguous(memory_format=torch.channels_last), rois, 5, 0.25, 2)
    torch.testing.assert_close(out_cl, out, rtol=1e-2, atol=1e-3)


def test_channels_last_backward(data):
    x, rois = data
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    xn = x.clone().requires_grad_()
    grad = torch.randn(60, 37, 4, 4, generator=torch.Generator().manual_seed(7))
    roi_align(xc, rois, 4, 0.25, 2).backward(grad)
    roi_align(xn, rois, 4, 0.25, 2).backward(grad)
    torch.testing.assert_close(xc.grad, xn.grad, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------
# errors


def test_errors():
    x = torch.randn(2, 3, 8, 8)
    rois = torch.tensor([[0, 1.0, 1.0, 5.0, 5.0]])
    with pytest.raises(RuntimeError, match="input must be a 4-D"):
        roi_align(x[0], rois, 2, 1.0, 2)
    with pytest.raises(RuntimeError, match=r"rois must be a 2-D tensor \[K, 5\]"):
        roi_align(x, rois[:, 1:], 2, 1.0, 2)
    with pytest.raises(RuntimeError, match="input must have a floating-point dtype"):
        roi_align(x.long(), rois, 2, 1.0, 2)
    with pytest.raises(RuntimeError, match="rois must have a floating-point dtype"):
        roi_align(x, rois.long(), 2, 1.0, 2)
    with pytest.raises(RuntimeError, match=r"rois\[1, 0\] \(batch index\)"):
        roi_align(x, torch.tensor([[0, 1.0, 1, 5, 5], [2, 1.0, 1, 5, 5]]), 2, 1.0, 2)
    with pytest.raises(RuntimeError, match=r"rois\[0, 0\] \(batch index\)"):
        roi_align(x, torch.tensor([[-1, 1.0, 1, 5, 5]]), 2, 1.0, 2)
    with pytest.raises(RuntimeError, match="pooled_height and pooled_width must be positive"):
        roi_align(x, rois, (0, 2), 1.0, 2)
    with pytest.raises(RuntimeError, match="rois must be on the same device as input"):
        roi_align(x, rois.to("meta"), 2, 1.0, 2)
    with pytest.raises(RuntimeError, match="grad must have shape"):
        ops.roi_align_backward(torch.randn(1, 3, 2, 3), rois, 1.0, 2, 2, 2, 3, 8, 8, 2, False)
    with pytest.raises(RuntimeError, match=r"rois\[0, 0\] \(batch index\)"):
        ops.roi_align_backward(
            torch.randn(1, 3, 2, 2), rois + torch.tensor([5.0, 0, 0, 0, 0]), 1.0, 2, 2, 2, 3, 8, 8, 2, False
        )


# ------------------------------------------------------------------------------------------------
# module, compile, export, opcheck


def test_module(data):
    x, rois = data
    m = ROIAlign((7, 7), spatial_scale=0.25, sampling_ratio=2)
    assert repr(m) == "ROIAlign(output_size=(7, 7), spatial_scale=0.25, sampling_ratio=2)"
    assert (
        repr(ROIAlign(7, 0.5, 0, aligned=True))
        == "ROIAlign(output_size=7, spatial_scale=0.5, sampling_ratio=0, aligned=True)"
    )
    torch.testing.assert_close(m(x, rois), roi_align(x, rois, 7, 0.25, 2), rtol=0, atol=0)
    assert len(list(m.parameters())) == 0 and len(m.state_dict()) == 0


def test_torch_compile_forward_backward(data):
    x, rois = data

    def f(t, r):
        return (roi_align(t, r, (5, 4), 0.25, 2) ** 2).sum()

    xa = x.clone().requires_grad_()
    f(xa, rois).backward()
    xb = x.clone().requires_grad_()
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    loss = compiled(xb, rois)
    loss.backward()
    torch.testing.assert_close(loss, f(x, rois))
    torch.testing.assert_close(xb.grad, xa.grad)


def test_torch_export(data):
    x, rois = data

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = ROIAlign((7, 7), 0.25, 2)

        def forward(self, feats, boxes):
            return self.pool(feats, boxes).flatten(1)

    m = Head()
    ep = torch.export.export(m, (x, rois))
    assert any("roi_align_forward" in str(n.target) for n in ep.graph.nodes)
    torch.testing.assert_close(ep.module()(x, rois), m(x, rois))


def test_opcheck():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(2, 3, 6, 7, generator=g, requires_grad=True)
    rois = torch.tensor([[0, 1.0, 1.3, 9.7, 11.2], [1, -3.1, 2.2, 5.3, 30.1]])
    torch.library.opcheck(ops.roi_align_forward, (x, rois, 0.5, 3, 2, 2, False))
    torch.library.opcheck(ops.roi_align_forward, (x, rois, 0.5, 3, 2, 0, True))
    grad = torch.randn(2, 3, 3, 2, generator=g, requires_grad=True)
    torch.library.opcheck(ops.roi_align_backward, (grad, rois, 0.5, 3, 2, 2, 3, 6, 7, 2, False))


# ------------------------------------------------------------------------------------------------
# CUDA (compared with the CPU kernels)


@needs_gpu
@pytest.mark.parametrize("aligned,sampling_ratio", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(data, aligned, sampling_ratio, dtype):
    x, rois = data
    x = x.to(dtype)
    grad = torch.randn(60, 37, 7, 6, generator=torch.Generator().manual_seed(9), dtype=dtype)
    xc = x.clone().requires_grad_()
    out_cpu = roi_align(xc, rois, (7, 6), 0.25, sampling_ratio, aligned)
    out_cpu.backward(grad)
    xg = x.cuda().requires_grad_()
    out_gpu = roi_align(xg, rois.cuda(), (7, 6), 0.25, sampling_ratio, aligned)
    out_gpu.backward(grad.cuda())
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=0, atol=1e-5)
    torch.testing.assert_close(xg.grad.cpu(), xc.grad, rtol=0, atol=1e-4)


@needs_gpu
def test_cuda_channels_last_low_precision_and_empty(data):
    x, rois = data
    ref = roi_align(x, rois, 5, 0.25, 2)
    xg = x.cuda().contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(roi_align(xg, rois.cuda(), 5, 0.25, 2).cpu(), ref, rtol=0, atol=1e-5)
    for dtype in (torch.float16, torch.bfloat16):
        xl = x.cuda().to(dtype).requires_grad_()
        out = roi_align(xl, rois.cuda(), 5, 0.25, 2)  # fp32 rois with low-precision features
        assert out.dtype == dtype
        torch.testing.assert_close(out.float().cpu(), ref, rtol=5e-2, atol=5e-2)
        out.float().sum().backward()
        assert xl.grad.dtype == dtype
    empty = roi_align(x.cuda().requires_grad_(), torch.zeros(0, 5, device="cuda"), 5, 0.25, 2)
    assert empty.shape == (0, 37, 5, 5)


@needs_gpu
def test_cuda_errors():
    x = torch.randn(2, 3, 8, 8, device="cuda")
    with pytest.raises(RuntimeError, match="batch index"):
        roi_align(x, torch.tensor([[3, 1.0, 1, 5, 5]], device="cuda"), 2, 1.0, 2)
    with pytest.raises(RuntimeError, match="rois must be on the same device as input"):
        roi_align(x, torch.tensor([[0, 1.0, 1, 5, 5]]), 2, 1.0, 2)


@needs_gpu
@pytest.mark.parametrize("op", ["roi_align", "roi_pool"])
def test_cuda_torchvision_kernels_equal_our_own(op):
    # roi_align / roi_pool hand CUDA inputs to torchvision's kernels; our own CUDA kernels must
    # compute the same forward and input gradient.
    from maskrcnn_benchmark.layers import _roi_common
    from maskrcnn_benchmark.layers.roi_pool import roi_pool

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 40, 48, generator=g).cuda()
    xy = torch.rand(30, 2, generator=g) * 120
    rois = torch.cat(
        [(torch.arange(30) % 2).float()[:, None], xy, xy + torch.rand(30, 2, generator=g) * 80 + 1], 1
    ).cuda()
    fn = (lambda t: roi_align(t, rois, 7, 0.25, 2)) if op == "roi_align" else (lambda t: roi_pool(t, rois, 7, 0.25))
    outputs = []
    for use_torchvision in (True, False):
        _roi_common.TORCHVISION_KERNELS_ON_CUDA = use_torchvision
        try:
            t = x.clone().requires_grad_()
            out = fn(t)
            out.backward(torch.ones_like(out))
            outputs.append((out.detach(), t.grad))
        finally:
            _roi_common.TORCHVISION_KERNELS_ON_CUDA = True
    torch.testing.assert_close(outputs[0][0], outputs[1][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outputs[0][1], outputs[1][1], rtol=1e-5, atol=1e-4)
