"""Helpers for multi-process (torch.distributed) runs; all work in a single process too."""
from typing import Any, Dict, List

import torch
import torch.distributed as dist


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


def all_gather(data: Any) -> List[Any]:
    """Gather any picklable object from every process; returns the list ordered by rank."""
    if get_world_size() == 1:
        return [data]
    gathered: List[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, data)
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


