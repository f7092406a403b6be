"""Tests of maskrcnn_benchmark.layers.sigmoid_focal_loss (compiled forward/backward ops, autograd,
fake kernels under torch.compile / torch.export, CUDA when a GPU is present)."""

import pytest
import torch
import torch.nn.functional as F

import maskrcnn_benchmark._C as _C
from maskrcnn_benchmark.layers.sigmoid_focal_loss import SigmoidFocalLoss, sigmoid_focal_loss

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


def reference(logits, targets, gamma, alpha):
    """Plain-PyTorch per-element focal loss (the original's formula, stable logs), in float64."""
    x = logits.double()
    num_classes = x.shape[1]
    t = targets.long().unsqueeze(1)
    cls = torch.arange(1, num_classes + 1, device=x.device).unsqueeze(0)
    p = torch.sigmoid(x)
    c1 = (t == cls).double()
    c2 = ((t >= 0) & (t != cls)).double()
    log_p = F.logsigmoid(x)
    log_q = F.logsigmoid(-x)
    return -c1 * alpha * (1 - p) ** gamma * log_p - c2 * (1 - alpha) * p**gamma * log_q


def make_inputs(n, c, seed, scale=4.0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, c, generator=g, dtype=torch.float64) * scale).to(dtype)
    targets = torch.randint(-1, c + 1, (n,), generator=g)
    return logits, targets


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("alpha", [0.25, 0.5, 1.0])
def test_forward_matches_reference(gamma, alpha):
    logits, targets = make_inputs(300, 20, seed=int(gamma * 10 + alpha * 100))
    logits[0, :6] = torch.tensor([60.0, -60.0, 20.0, -20.0, 0.0, 1e-3])
    targets[0] = 3
    out = sigmoid_focal_loss(logits, targets, gamma, alpha)
    assert out.shape == logits.shape and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), reference(logits, targets, gamma, alpha), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 2.5])
def test_backward_matches_reference(gamma):
    logits, targets = make_inputs(200, 15, seed=1)
    weights = torch.rand(200, 15, generator=torch.Generator().manual_seed(2))
    x = logits.clone().requires_grad_()
    (sigmoid_focal_loss(x, targets, gamma, 0.25) * weights).sum().backward()
    x_ref = logits.double().requires_grad_()
    (reference(x_ref, targets, gamma, 0.25) * weights.double()).sum().backward()
    torch.testing.assert_close(x.grad.double(), x_ref.grad, rtol=1e-5, atol=1e-7)


def test_matches_torchvision_on_one_hot_targets():
    torchvision = pytest.importorskip("torchvision")
    logits, targets = make_inputs(500, 30, seed=3)
    targets = targets.clamp(min=0)  # torchvision has no "ignore" label
    one_hot = F.one_hot(targets, 31)[:, 1:].float()
    ours = sigmoid_focal_loss(logits, targets, 2.0, 0.25)
    tv = torchvision.ops.sigmoid_focal_loss(logits, one_hot, alpha=0.25, gamma=2.0, reduction="none")
    torch.testing.assert_close(ours, tv, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 1.5])
def test_gradcheck_float64(gamma):
    logits, targets = make_inputs(6, 5, seed=4, scale=3.0, dtype=torch.float64)
    targets[:3] = torch.tensor([-1, 0, 5])
    x = logits.requires_grad_()
    assert torch.autograd.gradcheck(lambda v: sigmoid_focal_loss(v, targets, gamma, 0.25), (x,))


def test_ignore_label_and_out_of_range_targets():
    logits, _ = make_inputs(4, 3, seed=5)
    targets = torch.tensor([-1, -2, 0, 7])  # ignore, below -1 (ignored too), background, > C (all background)
    x = logits.clone().requires_grad_()
    out = sigmoid_focal_loss(x, targets, 2.0, 0.25)
    assert torch.all(out[:2] == 0)
    torch.testing.assert_close(out[3].detach(), reference(logits[3:], torch.tensor([0]), 2.0, 0.25)[0].float())
    out.sum().backward()
    assert torch.all(x.grad[:2] == 0)
    assert torch.all(x.grad[2:] != 0)


def test_module_returns_sum_and_repr():
    logits, targets = make_inputs(64, 10, seed=6)
    module = SigmoidFocalLoss(2.0, 0.25)
    loss = module(logits, targets)
    assert loss.dim() == 0
    torch.testing.assert_close(loss, sigmoid_focal_loss(logits, targets, 2.0, 0.25).sum())
    torch.testing.assert_close(loss.double(), reference(logits, targets, 2.0, 0.25).sum(), rtol=1e-5, atol=1e-6)
    assert repr(module) == "SigmoidFocalLoss(gamma=2.0, alpha=0.25)"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32(dtype):
    logits, targets = make_inputs(128, 12, seed=7, dtype=dtype)
    x = logits.clone().requires_grad_()
    out = sigmoid_focal_loss(x, targets, 2.0, 0.25)
    assert out.dtype == dtype
    x32 = logits.float().requires_grad_()
    out32 = sigmoid_focal_loss(x32, targets, 2.0, 0.25)
    assert torch.equal(out, out32.to(dtype))  # one rounding at the end
    out.sum().backward()
    out32.sum().backward()
    assert x.grad.dtype == dtype
    assert torch.equal(x.grad, x32.grad.to(dtype))


def test_extreme_logits():
    logits = torch.tensor([[100.0, -100.0, float("inf"), float("-inf"), float("nan")]] * 2)
    targets = torch.tensor([1, 0])
    x = logits.clone().requires_grad_()
    out = sigmoid_focal_loss(x, targets, 2.0, 0.25)
    # row 0: class 1 positive (x=100: loss ~0), the rest negative
    assert out[0, 0] == 0 and out[0, 1] == 0 and out[0, 3] == 0
    assert out[0, 2] == float("inf")  # negative with p = 1
    assert torch.isnan(out[:, 4]).all()
    assert out[1, 0] > 60  # negative with x = 100: (1 - alpha) * 100
    out[:, :2].sum().backward()
    assert torch.isfinite(x.grad[:, :2]).all()


def test_float64_and_parallel_consistency():
    logits, targets = make_inputs(3000, 40, seed=8, dtype=torch.float64)
    torch.testing.assert_close(
        sigmoid_focal_loss(logits, targets, 2.0, 0.25), reference(logits, targets, 2.0, 0.25), rtol=1e-12, atol=1e-14
    )
    logits32 = logits.float()
    out = sigmoid_focal_loss(logits32, targets, 1.5, 0.25)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        out1 = sigmoid_focal_loss(logits32, targets, 1.5, 0.25)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(out, out1)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_target_dtypes(dtype):
    logits, targets = make_inputs(50, 6, seed=9)
    targets = targets.clamp(min=0)
    torch.testing.assert_close(
        sigmoid_focal_loss(logits, targets.to(dtype), 2.0, 0.25), sigmoid_focal_loss(logits, targets, 2.0, 0.25)
    )


def test_empty_and_noncontiguous():
    out = sigmoid_focal_loss(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long), 2.0, 0.25)
    assert out.shape == (0, 5)
    logits, targets = make_inputs(40, 8, seed=10)
    wide = torch.zeros(8, 40)
    wide.copy_(logits.t())
    torch.testing.assert_close(
        sigmoid_focal_loss(wide.t(), targets, 2.0, 0.25), sigmoid_focal_loss(logits, targets, 2.0, 0.25)
    )


def test_legacy_C_entry_points():
    logits, targets = make_inputs(20, 4, seed=11)
    out = _C.sigmoid_focalloss_forward(logits, targets, 4, 2.0, 0.25)
    torch.testing.assert_close(out, sigmoid_focal_loss(logits, targets, 2.0, 0.25))
    d = torch.ones_like(out)
    grad = _C.sigmoid_focalloss_backward(logits, targets, d, 4, 2.0, 0.25)
    x = logits.clone().requires_grad_()
    sigmoid_focal_loss(x, targets, 2.0, 0.25).sum().backward()
    torch.testing.assert_close(grad, x.grad)


def test_errors():
    op = torch.ops.maskrcnn_benchmark.sigmoid_focal_loss_forward
    with pytest.raises(RuntimeError, match=r"logits must have shape \[N, num_classes\]"):
        op(torch.zeros(5), torch.zeros(5, dtype=torch.long), 1, 2.0, 0.25)
    with pytest.raises(RuntimeError, match=r"targets must have shape \[N\]"):
        op(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.long), 3, 2.0, 0.25)
    with pytest.raises(RuntimeError, match=r"targets and logits must have the same length N, got 4 targets"):
        op(torch.zeros(5, 3), torch.zeros(4, dtype=torch.long), 3, 2.0, 0.25)
    with pytest.raises(RuntimeError, match=r"targets must be an integer tensor"):
        op(torch.zeros(5, 3), torch.zeros(5), 3, 2.0, 0.25)
    with pytest.raises(RuntimeError, match=r"num_classes \(4\) must equal logits.shape\[1\] \(3\)"):
        op(torch.zeros(5, 3), torch.zeros(5, dtype=torch.long), 4, 2.0, 0.25)
    with pytest.raises(RuntimeError, match=r"logits must be a floating-point tensor"):
        op(torch.zeros(5, 3, dtype=torch.long), torch.zeros(5, dtype=torch.long), 3, 2.0, 0.25)
    with pytest.raises(RuntimeError, match=r"d_losses must have the shape of logits"):
        torch.ops.maskrcnn_benchmark.sigmoid_focal_loss_backward(
            torch.zeros(5, 3), torch.zeros(5, dtype=torch.long), torch.zeros(5, 2), 3, 2.0, 0.25
        )
    with pytest.raises(RuntimeError, match=r"targets and logits must be on the same device"):
        sigmoid_focal_loss(torch.zeros(5, 3, device="meta"), torch.zeros(5, dtype=torch.long), 2.0, 0.25)


# --- torch.compile / torch.export / opcheck --------------------------------------------------------


def test_torch_compile_forward_backward_fullgraph():
    def loss_fn(x, targets):
        return sigmoid_focal_loss(x * 1.0, targets, 2.0, 0.25).sum() / 10

    logits, targets = make_inputs(64, 9, seed=12)
    compiled = torch.compile(loss_fn, fullgraph=True, backend="aot_eager")
    x = logits.clone().requires_grad_()
    loss = compiled(x, targets)
    loss.backward()
    x_ref = logits.clone().requires_grad_()
    ref_loss = SigmoidFocalLoss(2.0, 0.25)(x_ref, targets) / 10
    ref_loss.backward()
    torch.testing.assert_close(loss.detach(), ref_loss.detach())
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_torch_export_module():
    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cls = torch.nn.Linear(16, 7)
            self.loss = SigmoidFocalLoss(2.0, 0.25)

        def forward(self, feats, targets):
            return self.loss(self.cls(feats), targets)

    model = Head()
    g = torch.Generator().manual_seed(13)
    feats = torch.randn(30, 16, generator=g)
    targets = torch.randint(-1, 8, (30,), generator=g)
    exported = torch.export.export(model, (feats, targets))
    assert any("sigmoid_focal_loss_forward" in str(node.target) for node in exported.graph.nodes)
    torch.testing.assert_close(exported.module()(feats, targets), model(feats, targets))


def test_opcheck():
    logits, targets = make_inputs(16, 5, seed=14)
    torch.library.opcheck(
        torch.ops.maskrcnn_benchmark.sigmoid_focal_loss_forward.default,
        (logits.requires_grad_(), targets, 5, 2.0, 0.25),
    )
    torch.library.opcheck(
        torch.ops.maskrcnn_benchmark.sigmoid_focal_loss_backward.default,
        (logits.detach(), targets, torch.rand(16, 5), 5, 2.0, 0.25),
    )


# --- CUDA ------------------------------------------------------------------------------------------


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("gamma", [0.0, 2.0, 1.5])
def test_cuda_matches_cpu(dtype, gamma):
    logits, targets = make_inputs(2000, 30, seed=15, dtype=dtype)
    targets[:5] = torch.tensor([-1, -2, 0, 30, 31])
    weights = torch.rand(2000, 30, generator=torch.Generator().manual_seed(16)).to(dtype)
    x = logits.clone().requires_grad_()
    out = sigmoid_focal_loss(x, targets, gamma, 0.25)
    (out * weights).sum().backward()
    xc = logits.cuda().requires_grad_()
    out_c = sigmoid_focal_loss(xc, targets.cuda(), gamma, 0.25)
    (out_c * weights.cuda()).sum().backward()
    assert out_c.dtype == dtype and out_c.device.type == "cuda"
    tol = {torch.float16: 2e-3, torch.bfloat16: 2e-2}.get(dtype, 1e-5)
    torch.testing.assert_close(out_c.cpu(), out, rtol=tol, atol=1e-6)
    torch.testing.assert_close(xc.grad.cpu(), x.grad, rtol=tol, atol=1e-6)


@needs_gpu
def test_cuda_device_mismatch_error():
    with pytest.raises(RuntimeError, match=r"targets and logits must be on the same device"):
        sigmoid_focal_loss(torch.zeros(5, 3, device="cuda"), torch.zeros(5, dtype=torch.long), 2.0, 0.25)
