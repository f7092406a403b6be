"""Small tensor helpers shared by the model pieces."""
from typing import Sequence

import torch


def cat(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """torch.cat that returns a single tensor as is (no copy)."""
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(list(tensors), dim)
