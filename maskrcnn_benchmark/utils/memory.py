"""The peak memory a training log reports ("max mem", in MiB)."""

import resource
import sys

import torch


def peak_memory_mb(device: torch.device) -> float:
    """On a GPU: the peak of memory allocated by tensors on it (torch.cuda.max_memory_allocated,
    what the original logged). Elsewhere: this process's peak resident memory (its RSS high-water
    mark), which includes the Python interpreter and libraries, not only tensors."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
