"""FrozenBatchNorm2d: batch norm with fixed statistics and affine parameters."""

import torch
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """y = (x - running_mean) / sqrt(running_var) * weight + bias, with nothing trainable.

    All four tensors are buffers (as in the original), so checkpoints carry them but optimizers do
    not see them. Like the original (and Detectron's AffineChannel), there is no epsilon: weights
    converted from Caffe2 fold the statistics into weight/bias and keep running_var = 1.
    Input [N, C, H, W] of any floating dtype; the output has the input's dtype.
    """

    def __init__(self, n: int):
        super().__init__()
        self.register_buffer("weight", torch.ones(n))
        self.register_buffer("bias", torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def scale_and_shift(self):
        """(scale, shift) with y = x * scale + shift, per channel."""
        scale = self.weight * self.running_var.rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_and_shift()
        # One fused kernel: shift + x * scale.
        return torch.addcmul(shift.to(x.dtype).view(1, -1, 1, 1), x, scale.to(x.dtype).view(1, -1, 1, 1))

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # Checkpoints of an nn.BatchNorm2d (e.g. torchvision's) also hold num_batches_tracked.
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.weight.shape[0]})"
