"""The random state of every process: seeded at the start of a run, and saved in checkpoints so that
a resumed run continues exactly as an uninterrupted one (box samplers and proposal shuffles draw from
torch's and Python's generators; each process of a distributed run has streams of its own)."""

import logging
import os
import random
from typing import Any, Dict, List

import numpy as np
import torch

from ..utils.comm import all_gather, get_rank, get_world_size

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> int:
    """Seed torch (CPU and GPUs), Python's random and numpy; seed < 0 picks a random seed. Returns it."""
    if seed < 0:
        seed = int.from_bytes(os.urandom(4), "little") >> 1
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def local_rng_state() -> Dict[str, Any]:
    """This process's generators: torch CPU, Python's random and, once initialised, CUDA."""
    state: Dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_local_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value: Any) -> Any:
    # random.setstate needs tuples; a checkpoint may hand back lists.
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def gather_rng_states() -> List[Dict[str, Any]]:
    """Every process's state, by rank (a collective: all processes must call it)."""
    return all_gather(local_rng_state())


def restore_rng_state(arguments: Dict[str, Any]) -> None:
    """Restore this process's generators from a checkpoint's "rng_states" (one per rank; older
    checkpoints hold one "rng_state" of rank 0). A different number of processes than the run that
    saved it cannot continue its streams exactly: then each process keeps its fresh seed and a
    warning says so."""
    states = arguments.pop("rng_states", None)
    single = arguments.pop("rng_state", None)
    if states is not None and len(states) == get_world_size():
        set_local_rng_state(states[get_rank()])
    elif states is None and single is not None and get_world_size() == 1:
        set_local_rng_state(single)
    elif states is not None or single is not None:
        saved = len(states) if states is not None else 1
        logger.warning(
            "The checkpoint holds the random state of %d process(es), this run has %d: the random streams "
            "(sampling, augmentation) restart from SEED, so the resumed run is not bit-identical to an "
            "uninterrupted one.",
            saved,
            get_world_size(),
        )
