"""Joining the process group of a distributed run (torch.distributed.launch, torchrun) with
collective timeouts that notice a stopped process."""

import datetime
import os

import torch
import torch.distributed as dist
from torch.distributed.constants import default_pg_nccl_timeout

from ..utils import liveness

# DIST_TIMEOUT 0 on CPU (gloo): long enough for the slowest legitimate collective wait of a CPU run (a
# checkpoint save, the first batches), short enough that a stopped process is noticed.
GLOO_TIMEOUT_S = 300.0


def collective_timeout_s(dist_timeout: float, backend: str) -> float:
    """DIST_TIMEOUT in seconds, 0 meaning automatic: GLOO_TIMEOUT_S on CPU (a stopped process should not
    hold the others for torch's 30 minutes), torch's own default for NCCL."""
    if dist_timeout < 0:
        raise ValueError(f"DIST_TIMEOUT must be >= 0 seconds (0 = automatic), got {dist_timeout}")
    if dist_timeout > 0:
        return float(dist_timeout)
    if backend == "nccl":
        return default_pg_nccl_timeout.total_seconds()
    return GLOO_TIMEOUT_S


def init_distributed(device: str, local_rank: int, dist_timeout: float = 0.0) -> bool:
    """Join the process group when WORLD_SIZE > 1 (NCCL on GPUs, gloo on CPU); True if distributed.

    Collectives fail after `dist_timeout` seconds (the config's DIST_TIMEOUT; 0: automatic), and an
    uncaught failure is followed by a message naming the ranks that do not answer (utils/liveness.py).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return False
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    timeout_s = collective_timeout_s(dist_timeout, backend)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", timeout=datetime.timedelta(seconds=timeout_s))
    liveness.start(timeout_s)
    liveness.install_failure_report()
    return True
