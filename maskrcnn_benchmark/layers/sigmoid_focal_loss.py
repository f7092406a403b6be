"""Sigmoid focal loss (RetinaNet), as the original ``maskrcnn_benchmark.layers.SigmoidFocalLoss``.

Compiled ops ``torch.ops.maskrcnn_benchmark.sigmoid_focal_loss_forward`` / ``_backward`` with CPU
and CUDA kernels (the original had a CUDA kernel only and a plain-PyTorch CPU fallback). Autograd
is registered here and the fake kernels are defined here (registered by ``maskrcnn_benchmark.layers``,
see ``FAKE_KERNELS``), so the loss works under ``torch.compile(fullgraph=True)`` and
``torch.export``.

For logits ``x[N, C]`` (``C`` foreground classes) and targets ``t[N]`` (``0`` background,
``1..C`` class, ``-1`` ignored), element ``(n, d)`` with ``p = sigmoid(x)``::

    c1 = (t == d + 1);  c2 = (t >= 0) & (t != d + 1)
    loss = -c1 * alpha * (1 - p)**gamma * log(p) - c2 * (1 - alpha) * p**gamma * log(1 - p)

Logs are computed stably (``log p = -softplus(-x)``; the original clamped ``p`` at ``FLT_MIN``).
Targets below ``-1`` are ignored like ``-1``; targets above ``C`` make the row all-background (as in
the original). float16/bfloat16 inputs are computed in float32 and returned in their dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import maskrcnn_benchmark._C  # noqa: F401  (registers torch.ops.maskrcnn_benchmark.*)

__all__ = ["sigmoid_focal_loss", "SigmoidFocalLoss", "sigmoid_focal_loss_cuda", "sigmoid_focal_loss_cpu"]


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, gamma: float, alpha: float) -> Tensor:
    """Per-element focal losses ``[N, C]`` (see the module docstring); differentiable in ``logits``."""
    num_classes = logits.shape[1] if logits.dim() == 2 else -1
    return torch.ops.maskrcnn_benchmark.sigmoid_focal_loss_forward(
        logits, targets, num_classes, float(gamma), float(alpha)
    )


# The original's names for its CUDA op and its plain-PyTorch CPU version: one op here serves both.
sigmoid_focal_loss_cuda = sigmoid_focal_loss
sigmoid_focal_loss_cpu = sigmoid_focal_loss


class SigmoidFocalLoss(nn.Module):
    """``forward(logits[N, C], targets[N])`` returns the **sum** of the per-element losses."""

    def __init__(self, gamma: float, alpha: float):
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return sigmoid_focal_loss(logits, targets, self.gamma, self.alpha).sum()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(gamma={self.gamma}, alpha={self.alpha})"


# --- fake kernels and autograd ----------------------------------------------------------------


def _check(op: str, logits: Tensor, targets: Tensor, num_classes: int) -> None:
    # Mirrors the C++ checks so that fake tensors fail the same way.
    torch._check(logits.dim() == 2, lambda: f"{op}: logits must have shape [N, num_classes], got {list(logits.shape)}")
    torch._check(
        logits.dtype.is_floating_point, lambda: f"{op}: logits must be a floating-point tensor, got {logits.dtype}"
    )
    torch._check(targets.dim() == 1, lambda: f"{op}: targets must have shape [N], got {list(targets.shape)}")
    torch._check(
        not targets.dtype.is_floating_point and not targets.dtype.is_complex and targets.dtype != torch.bool,
        lambda: (
            f"{op}: targets must be an integer tensor (class ids, 0 = background, -1 = ignore), got {targets.dtype}"
        ),
    )
    torch._check(
        targets.shape[0] == logits.shape[0],
        lambda: (
            f"{op}: targets and logits must have the same length N, got {targets.shape[0]} targets "
            f"and {logits.shape[0]} rows of logits"
        ),
    )
    torch._check(
        num_classes == logits.shape[1],
        lambda: f"{op}: num_classes ({num_classes}) must equal logits.shape[1] ({logits.shape[1]})",
    )
    torch._check(
        targets.device == logits.device,
        lambda: (
            f"{op}: targets and logits must be on the same device, got targets on {targets.device} "
            f"and logits on {logits.device}"
        ),
    )


def _forward_fake(logits: Tensor, targets: Tensor, num_classes: int, gamma: float, alpha: float) -> Tensor:
    _check("sigmoid_focal_loss_forward", logits, targets, num_classes)
    return torch.empty_like(logits, memory_format=torch.contiguous_format)


def _backward_fake(
    logits: Tensor, targets: Tensor, d_losses: Tensor, num_classes: int, gamma: float, alpha: float
) -> Tensor:
    _check("sigmoid_focal_loss_backward", logits, targets, num_classes)
    torch._check(
        d_losses.shape == logits.shape,
        lambda: (
            f"sigmoid_focal_loss_backward: d_losses must have the shape of logits {list(logits.shape)}, "
            f"got {list(d_losses.shape)}"
        ),
    )
    return torch.empty_like(logits, memory_format=torch.contiguous_format)


def _setup_context(ctx, inputs, output) -> None:
    logits, targets, num_classes, gamma, alpha = inputs
    ctx.save_for_backward(logits, targets)
    ctx.num_classes = num_classes
    ctx.gamma = gamma
    ctx.alpha = alpha


def _backward(ctx, grad: Tensor):
    logits, targets = ctx.saved_tensors
    d_logits = None
    if ctx.needs_input_grad[0]:
        d_logits = torch.ops.maskrcnn_benchmark.sigmoid_focal_loss_backward(
            logits, targets, grad, ctx.num_classes, ctx.gamma, ctx.alpha
        )
    return d_logits, None, None, None, None


torch.library.register_autograd(
    "maskrcnn_benchmark::sigmoid_focal_loss_forward", _backward, setup_context=_setup_context
)


FAKE_KERNELS = {
    "maskrcnn_benchmark::sigmoid_focal_loss_forward": _forward_fake,
    "maskrcnn_benchmark::sigmoid_focal_loss_backward": _backward_fake,
}
