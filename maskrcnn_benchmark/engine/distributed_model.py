"""The training model wrapped in DistributedDataParallel, set by the SOLVER.DDP config keys.

`wrap_distributed(model, cfg, local_rank)` is what tools/train_net.py trains; checkpoints keep
holding the bare model (`ddp.module`). The defaults are tuned for speed:

- gradients are views into DDP's all-reduce buckets (GRADIENT_AS_BUCKET_VIEW): no copy from the
  buckets back into `param.grad` after each all-reduce, and no second copy of every gradient in memory;
- a static graph (STATIC_GRAPH): every trainable parameter of these detectors gets a gradient in every
  iteration, also without positive proposals (the mask / keypoint / box losses return `logits.sum() * 0`
  then), so DDP learns the set once in the first iteration instead of checking it in every one. Off for
  models that skip parameters in some iterations (then FIND_UNUSED_PARAMETERS), and off automatically
  with SOLVER.ACCUMULATE_GRAD_ITERS > 1: the trainer's first backward then runs under `no_sync()`,
  which torch's static-graph reducer does not support (it fails an internal assert);
- optional gradient compression (GRADIENT_COMPRESSION "fp16" / "bf16"): buckets are all-reduced in
  16 bits, halving the bytes sent, for runs whose gradients travel over a slow link.
"""

import inspect
import logging
from typing import Any, Callable, Dict, Optional

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from ..config import CfgNode
from ..config.config_file import ConfigValueError

logger = logging.getLogger(__name__)

# SOLVER.DDP.GRADIENT_COMPRESSION -> (DDP communication hook, dtype the buckets travel in).
COMPRESSION_HOOKS: Dict[str, Optional[Callable]] = {
    "none": None,
    "fp16": default_hooks.fp16_compress_hook,
    "bf16": default_hooks.bf16_compress_hook,
}
COMPRESSION_DTYPES: Dict[str, torch.dtype] = {"fp16": torch.float16, "bf16": torch.bfloat16}

# torch >= 2.14 deprecates broadcast_buffers for forward_sync_buffers; older ones only know the former.
_HAS_FORWARD_SYNC_BUFFERS = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters


def static_graph_of(cfg: CfgNode) -> bool:
    """Whether DDP runs with static_graph: SOLVER.DDP.STATIC_GRAPH, unless gradient accumulation makes
    the first backward run under no_sync() (unsupported by torch's static-graph reducer)."""
    return bool(cfg.SOLVER.DDP.STATIC_GRAPH) and int(cfg.SOLVER.ACCUMULATE_GRAD_ITERS) <= 1


def ddp_options(cfg: CfgNode, device: torch.device, local_rank: int) -> Dict[str, Any]:
    """The DistributedDataParallel keyword arguments (all but the module) of cfg's SOLVER.DDP keys."""
    d = cfg.SOLVER.DDP
    options: Dict[str, Any] = dict(
        device_ids=[local_rank] if device.type == "cuda" else None,
        output_device=local_rank if device.type == "cuda" else None,
        bucket_cap_mb=d.BUCKET_CAP_MB,
        gradient_as_bucket_view=bool(d.GRADIENT_AS_BUCKET_VIEW),
        static_graph=static_graph_of(cfg),
        find_unused_parameters=bool(d.FIND_UNUSED_PARAMETERS),
    )
    # FrozenBN / GN hold no running statistics worth broadcasting before every forward.
    options["forward_sync_buffers" if _HAS_FORWARD_SYNC_BUFFERS else "broadcast_buffers"] = False
    return options


def check_compression_supported(compression: str) -> None:
    """Fail at start-up, naming the key, when this process group cannot all-reduce the compression
    dtype (a tiny all-reduce, on every rank alike), instead of in the first backward."""
    dtype = COMPRESSION_DTYPES.get(compression)
    if dtype is None:
        return
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    try:
        dist.all_reduce(torch.zeros(1, dtype=dtype, device=device))
    except (RuntimeError, ValueError) as e:
        raise ConfigValueError(
            f"config key SOLVER.DDP.GRADIENT_COMPRESSION is {compression!r}; the {backend} backend of this torch "
            f"cannot all-reduce {dtype} tensors ({e}). Use 'fp16' or 'none' (bf16 needs NCCL >= 2.10 on GPUs "
            f"or a gloo build with bfloat16 support)."
        ) from None


def wrap_distributed(model: torch.nn.Module, cfg, local_rank: int) -> DistributedDataParallel:
    """`model` (already on cfg.MODEL.DEVICE) in DistributedDataParallel with the SOLVER.DDP settings and
    its gradient-compression hook. Call it after the process group is initialised, on every rank."""
    device = next(model.parameters()).device
    options = ddp_options(cfg, device, local_rank)
    if cfg.SOLVER.DDP.STATIC_GRAPH and not options["static_graph"]:
        logger.info(
            "SOLVER.DDP.STATIC_GRAPH is on but SOLVER.ACCUMULATE_GRAD_ITERS is %d: DDP runs without a static "
            "graph (torch's static-graph reducer cannot start under no_sync(), which accumulation uses).",
            cfg.SOLVER.ACCUMULATE_GRAD_ITERS,
        )
    compression = cfg.SOLVER.DDP.GRADIENT_COMPRESSION
    check_compression_supported(compression)
    ddp = DistributedDataParallel(model, **options)
    hook = COMPRESSION_HOOKS[compression]
    if hook is not None:
        ddp.register_comm_hook(state=None, hook=hook)  # state None: the default process group
    logger.info(
        "DistributedDataParallel: %s, gradient compression %s",
        ", ".join(f"{k}={v}" for k, v in options.items() if k not in ("device_ids", "output_device")),
        compression,
    )
    return ddp
