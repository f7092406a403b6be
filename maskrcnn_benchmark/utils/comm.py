"""Helpers for multi-process (torch.distributed) runs; all work in a single process too."""

from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist

from . import liveness


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if _initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if _initialized() else 0


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across all processes (no-op in a single process)."""
    if _initialized() and dist.get_world_size() > 1:
        dist.barrier()


def wait_for_all(name: str) -> None:
    """Barrier for waits that may be legitimately long (the others waiting while the main process
    evaluates): it lasts as long as the awaited processes still answer, and fails naming them once
    they stopped answering for DIST_TIMEOUT (utils/liveness.py), where a collective barrier would fail
    after DIST_TIMEOUT whatever they do. A plain barrier in runs set up without liveness."""
    if get_world_size() < 2:
        return
    live = liveness.active()
    if live is None:
        dist.barrier()
    else:
        live.wait_for_all(name)


def all_gather(data: Any) -> List[Any]:
    """Gather any picklable object from every process; returns the list ordered by rank."""
    if get_world_size() == 1:
        return [data]
    gathered: List[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, data)
    return gathered


def gather(data: Any, dst: int = 0) -> Optional[List[Any]]:
    """Gather any picklable object from every process on process `dst`: the list ordered by rank
    there, None elsewhere (unlike all_gather, the others receive nothing)."""
    if get_world_size() == 1:
        return [data]
    gathered: Optional[List[Any]] = [None] * get_world_size() if get_rank() == dst else None
    dist.gather_object(data, gathered, dst=dst)
    return gathered


def reduce_dict(input_dict: Dict[str, torch.Tensor], average: bool = True) -> Dict[str, torch.Tensor]:
    """Sum (or average) the scalar tensors of `input_dict` over processes; every rank gets the result."""
    world_size = get_world_size()
    if world_size < 2:
        return input_dict
    with torch.no_grad():
        names = sorted(input_dict.keys())
        values = torch.stack([input_dict[k].detach() for k in names])
        dist.all_reduce(values)
        if average:
            values /= world_size
        return dict(zip(names, values))
