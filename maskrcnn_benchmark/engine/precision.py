"""Mixed precision: which autocast dtype a config (cfg.DTYPE) or a caller asks for, and the matching
autocast context. Shared by training, evaluation and the predictor."""

import contextlib
from typing import ContextManager, Optional, Union

import torch

from ..config import CfgNode

# cfg.DTYPE values -> autocast dtype (None: plain float32, no autocast).
AUTOCAST_DTYPES = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}


def autocast_dtype(cfg: CfgNode) -> Optional[torch.dtype]:
    """The autocast dtype of cfg.DTYPE (None for float32), with a clear error for other values."""
    if cfg.DTYPE not in AUTOCAST_DTYPES:
        raise ValueError(f"DTYPE must be one of {sorted(AUTOCAST_DTYPES)}, got {cfg.DTYPE!r}")
    return AUTOCAST_DTYPES[cfg.DTYPE]


def resolve_autocast_dtype(value: Union[None, str, torch.dtype]) -> Optional[torch.dtype]:
    """None, a cfg.DTYPE name (also "half") or a torch dtype -> the autocast dtype (None: no autocast)."""
    if value is None or value == torch.float32:
        return None
    if isinstance(value, torch.dtype):
        return value
    name = "float16" if value == "half" else value
    if name not in AUTOCAST_DTYPES:
        raise ValueError("unsupported autocast dtype {!r}".format(value))
    return AUTOCAST_DTYPES[name]


def autocast(device_type: str, dtype: Optional[torch.dtype]) -> ContextManager:
    """torch.autocast(device_type, dtype), or nothing when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)
