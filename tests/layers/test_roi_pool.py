"""Tests of ROIPool (maskrcnn_benchmark.layers.roi_pool and torch.ops.maskrcnn_benchmark.roi_pool_*)."""

import math

import pytest
import torch
import torchvision  # noqa: F401  (registers torch.ops.torchvision.*)

from maskrcnn_benchmark.layers.roi_pool import ROIPool, roi_pool

ops = torch.ops.maskrcnn_benchmark
tv_ops = torch.ops.torchvision
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


def make_rois(num, batch, img_h, img_w, generator):
    """Random boxes: inside, partly or wholly outside the image, tiny and huge."""
    g = generator
    kinds = torch.randint(0, 5, (num,), generator=g)
    size = torch.rand(num, 2, generator=g) * torch.tensor([img_w, img_h]) * 0.6 + 1.0
    size[kinds == 1] = torch.rand(int((kinds == 1).sum()), 2, generator=g) * 0.9
    size[kinds == 2] *= 4.0
    lo = torch.rand(num, 2, generator=g) * torch.tensor([img_w, img_h]) * 1.4 - torch.tensor([img_w, img_h]) * 0.3
    lo[kinds == 3] = -size[kinds == 3] - 5.0
    b = torch.randint(0, batch, (num, 1), generator=g).float()
    return torch.cat([b, lo, lo + size], dim=1)


def reference_roi_pool(input, rois, output_size, spatial_scale):
    """Plain-PyTorch ROIPool with the original (Caffe) semantics; returns (output, argmax)."""
    n, c, h, w = input.shape
    ph, pw = output_size
    k = rois.shape[0]
    out = input.new_zeros((k, c, ph, pw))
    arg = torch.full((k, c, ph, pw), -1, dtype=torch.int32)
    scale = torch.tensor(spatial_scale, dtype=torch.float32)
    for r in range(k):
        roi = rois[r].float()
        b = int(roi[0])
        sw, sh, ew, eh = [int(torch.round(roi[j] * scale)) for j in (1, 2, 3, 4)]
        rw, rh = max(ew - sw + 1, 1), max(eh - sh + 1, 1)
        bh = torch.tensor(rh, dtype=torch.float32) / ph
        bw = torch.tensor(rw, dtype=torch.float32) / pw
        for i in range(ph):
            hs = min(max(int(math.floor(float(i * bh))) + sh, 0), h)
            he = min(max(int(math.ceil(float((i + 1) * bh))) + sh, 0), h)
            for j in range(pw):
                ws = min(max(int(math.floor(float(j * bw))) + sw, 0), w)
                we = min(max(int(math.ceil(float((j + 1) * bw))) + sw, 0), w)
                if he <= hs or we <= ws:
                    continue
                region = input[b, :, hs:he, ws:we].reshape(c, -1)
                val, idx = region.max(dim=1)  # first maximum (no ties in the random tests)
                out[r, :, i, j] = val
                arg[r, :, i, j] = ((idx // (we - ws) + hs) * w + idx % (we - ws) + ws).to(torch.int32)
    return out, arg


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 37, 23, 29, generator=g)
    rois = make_rois(60, 3, 23 / 0.25, 29 / 0.25, g)
    return x, rois


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_matches_torchvision(data, layout, dtype):
    x, rois = data
    x = x.to(dtype)
    xin = x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x
    out, arg = ops.roi_pool_forward(xin, rois, 0.25, 7, 6)
    exp_out, exp_arg = tv_ops.roi_pool(x, rois.to(dtype), 0.25, 7, 6)
    assert out.dtype == dtype and arg.dtype == torch.int32 and out.shape == (60, 37, 7, 6)
    torch.testing.assert_close(out, exp_out, rtol=0, atol=0)
    torch.testing.assert_close(arg, exp_arg, rtol=0, atol=0)
    torch.testing.assert_close(roi_pool(xin, rois, (7, 6), 0.25), exp_out, rtol=0, atol=0)


def test_forward_matches_reference(data):
    x, rois = data
    x, rois = x[:, :6], rois[:30]
    out, arg = ops.roi_pool_forward(x, rois, 0.25, 5, 4)
    ref_out, ref_arg = reference_roi_pool(x, rois, (5, 4), 0.25)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0)
    torch.testing.assert_close(arg, ref_arg, rtol=0, atol=0)


def test_ties_nan_and_inf_follow_the_first_maximum():
    g = torch.Generator().manual_seed(1)
    for channels in (1, 8, 16, 21, 40):  # exercises vector widths and tails
        x = torch.randint(0, 3, (2, channels, 30, 41), generator=g).float()
        x[0, :, 3:5] = float("nan")
        x[1, 0, :, 2] = -float("inf")
        rois = make_rois(40, 2, 120, 164, g)
        for xin in (x, x.contiguous(memory_format=torch.channels_last)):
            out, arg = ops.roi_pool_forward(xin, rois, 0.25, 7, 5)
            exp_out, exp_arg = tv_ops.roi_pool(x, rois, 0.25, 7, 5)
            torch.testing.assert_close(arg, exp_arg, rtol=0, atol=0)
            torch.testing.assert_close(out, exp_out, rtol=0, atol=0, equal_nan=True)


def test_backward_matches_torchvision(data):
    x, rois = data
    grad = torch.randn(60, 37, 7, 6, generator=torch.Generator().manual_seed(2))
    xg = x.clone().requires_grad_()
    roi_pool(xg, rois, (7, 6), 0.25).backward(grad)
    _, arg = tv_ops.roi_pool(x, rois, 0.25, 7, 6)
    expected = tv_ops._roi_pool_backward(grad, rois, arg, 0.25, 7, 6, 3, 37, 23, 29)
    torch.testing.assert_close(xg.grad, expected, rtol=0, atol=1e-6)
    # non-contiguous / expanded incoming gradients
    _, arg = ops.roi_pool_forward(x, rois, 0.25, 7, 6)
    expanded = torch.ones(1, 1, 1, 1).expand(60, 37, 7, 6)
    torch.testing.assert_close(
        ops.roi_pool_backward(expanded, rois, arg, 0.25, 7, 6, 3, 37, 23, 29),
        ops.roi_pool_backward(expanded.contiguous(), rois, arg, 0.25, 7, 6, 3, 37, 23, 29),
    )


def test_gradcheck():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 8, 9, generator=g, dtype=torch.float64, requires_grad=True)  # no ties
    rois = torch.tensor(
        [[0, 1.0, 1.3, 9.7, 11.2], [1, -3.1, 2.2, 5.3, 30.1], [1, 4.4, 4.6, 4.9, 5.0], [0, 20.5, -4.0, 31.0, 8.3]],
        dtype=torch.float64,
    )
    assert torch.autograd.gradcheck(lambda t: roi_pool(t, rois, (3, 2), 0.5), (x,))
    assert torch.autograd.gradgradcheck(lambda t: roi_pool(t, rois, (3, 2), 0.5), (x,))


def test_empty_and_degenerate_rois():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = roi_pool(x, torch.zeros(0, 5), (4, 3), 0.5)
    assert out.shape == (0, 3, 4, 3)
    out.sum().backward()
    assert (x.grad == 0).all()
    rois = torch.tensor(
        [[0, 5.0, 5.0, 5.0, 5.0], [1, 8.0, 3.0, 2.0, 1.0], [0, -50.0, -50.0, -40.0, -40.0], [1, 0.0, 0.0, 1e4, 1e4]]
    )
    out, arg = ops.roi_pool_forward(x.detach(), rois, 0.5, 3, 3)
    exp_out, exp_arg = tv_ops.roi_pool(x.detach(), rois, 0.5, 3, 3)
    torch.testing.assert_close(out, exp_out, rtol=0, atol=0)
    torch.testing.assert_close(arg, exp_arg, rtol=0, atol=0)
    assert (out[2] == 0).all() and (arg[2] == -1).all()  # wholly outside: empty bins


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(data, dtype):
    x, rois = data
    xl = x.to(dtype).requires_grad_()
    out = roi_pool(xl, rois, 5, 0.25)
    assert out.dtype == dtype
    ref = roi_pool(x.to(dtype).float(), rois, 5, 0.25)  # max is exact: equal after rounding back
    torch.testing.assert_close(out, ref.to(dtype), rtol=0, atol=0)
    out.float().sum().backward()
    assert xl.grad.dtype == dtype
    xf = x.to(dtype).float().requires_grad_()
    roi_pool(xf, rois, 5, 0.25).sum().backward()
    torch.testing.assert_close(xl.grad.float(), xf.grad, rtol=1e-2, atol=1e-2)


def test_errors():
    x = torch.randn(2, 3, 8, 8)
    rois = torch.tensor([[0, 1.0, 1.0, 5.0, 5.0]])
    with pytest.raises(RuntimeError, match="input must be a 4-D"):
        roi_pool(x[0], rois, 2, 1.0)
    with pytest.raises(RuntimeError, match=r"rois must be a 2-D tensor \[K, 5\]"):
        roi_pool(x, rois[:, 1:], 2, 1.0)
    with pytest.raises(RuntimeError, match="input must have a floating-point dtype"):
        roi_pool(x.int(), rois, 2, 1.0)
    with pytest.raises(RuntimeError, match=r"rois\[1, 0\] \(batch index\)"):
        roi_pool(x, torch.tensor([[0, 1.0, 1, 5, 5], [2, 1.0, 1, 5, 5]]), 2, 1.0)
    with pytest.raises(RuntimeError, match="rois must be on the same device as input"):
        roi_pool(x, rois.to("meta"), 2, 1.0)
    grad = torch.randn(1, 3, 2, 2)
    with pytest.raises(RuntimeError, match="argmax must have the shape of grad"):
        ops.roi_pool_backward(grad, rois, torch.zeros(1, 3, 2, 1, dtype=torch.int32), 1.0, 2, 2, 2, 3, 8, 8)
    with pytest.raises(RuntimeError, match="argmax value"):
        ops.roi_pool_backward(grad, rois, torch.full((1, 3, 2, 2), 64, dtype=torch.int32), 1.0, 2, 2, 2, 3, 8, 8)


def test_module_compile_export_opcheck(data):
    x, rois = data
    m = ROIPool((7, 7), spatial_scale=0.25)
    assert repr(m) == "ROIPool(output_size=(7, 7), spatial_scale=0.25)"
    torch.testing.assert_close(m(x, rois), roi_pool(x, rois, 7, 0.25), rtol=0, atol=0)

    def f(t, r):
        return (roi_pool(t, r, (5, 4), 0.25) ** 2).sum()

    xa = x.clone().requires_grad_()
    f(xa, rois).backward()
    xb = x.clone().requires_grad_()
    loss = torch.compile(f, fullgraph=True, backend="aot_eager")(xb, rois)
    loss.backward()
    torch.testing.assert_close(xb.grad, xa.grad)

    ep = torch.export.export(m, (x, rois))
    torch.testing.assert_close(ep.module()(x, rois), m(x, rois))

    xs = x[:2, :3, :8, :9].clone().requires_grad_()
    small = torch.tensor([[0, 1.0, 1.3, 19.7, 21.2], [1, -3.1, 2.2, 5.3, 30.1]])
    torch.library.opcheck(ops.roi_pool_forward, (xs, small, 0.5, 3, 2))
    _, arg = ops.roi_pool_forward(xs.detach(), small, 0.5, 3, 2)
    grad = torch.randn(2, 3, 3, 2, requires_grad=True)
    torch.library.opcheck(ops.roi_pool_backward, (grad, small, arg, 0.5, 3, 2, 2, 3, 8, 9))


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_cuda_matches_cpu(data, dtype):
    x, rois = data
    x = x.to(dtype)
    grad = torch.randn(60, 37, 7, 6, generator=torch.Generator().manual_seed(4)).to(dtype)
    out_cpu, arg_cpu = ops.roi_pool_forward(x, rois, 0.25, 7, 6)
    out_gpu, arg_gpu = ops.roi_pool_forward(x.cuda(), rois.cuda(), 0.25, 7, 6)
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=0, atol=0)
    torch.testing.assert_close(arg_gpu.cpu(), arg_cpu, rtol=0, atol=0)
    out_cl, _ = ops.roi_pool_forward(x.cuda().contiguous(memory_format=torch.channels_last), rois.cuda(), 0.25, 7, 6)
    torch.testing.assert_close(out_cl.cpu(), out_cpu, rtol=0, atol=0)
    g_cpu = ops.roi_pool_backward(grad, rois, arg_cpu, 0.25, 7, 6, 3, 37, 23, 29)
    g_gpu = ops.roi_pool_backward(grad.cuda(), rois.cuda(), arg_gpu, 0.25, 7, 6, 3, 37, 23, 29)
    tol = 1e-2 if dtype == torch.float16 else 1e-5
    torch.testing.assert_close(g_gpu.cpu(), g_cpu, rtol=tol, atol=tol)


@needs_gpu
def test_cuda_empty_and_errors():
    x = torch.randn(2, 3, 8, 8, device="cuda", requires_grad=True)
    out = roi_pool(x, torch.zeros(0, 5, device="cuda"), 2, 1.0)
    assert out.shape == (0, 3, 2, 2)
    out.sum().backward()
    with pytest.raises(RuntimeError, match="batch index"):
        roi_pool(x, torch.tensor([[5, 1.0, 1, 5, 5]], device="cuda"), 2, 1.0)
