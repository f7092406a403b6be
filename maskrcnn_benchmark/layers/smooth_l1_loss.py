"""Smooth L1 loss with the original's signature (beta defaults to 1/9, as the RPN uses)."""

import torch


def smooth_l1_loss(
    input: torch.Tensor, target: torch.Tensor, beta: float = 1.0 / 9, size_average: bool = True
) -> torch.Tensor:
    """0.5 * d**2 / beta where |d| < beta, else |d| - 0.5 * beta (d = input - target).

    Returns the mean over all elements if size_average, else the sum. beta == 0 is plain L1.
    """
    diff = torch.abs(input - target)
    if beta > 0:
        loss = torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)
    else:
        loss = diff
    return loss.mean() if size_average else loss.sum()
