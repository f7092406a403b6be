"""Shared test fixtures."""

import os
from typing import Dict, List, Tuple

import pytest
import torch

ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")


def _parse_checkpoint_keys() -> Dict[str, List[Tuple[str, Tuple[int, ...]]]]:
    """{config name: [(state_dict key, shape), ...]} of the original's models, in their order."""
    sections: Dict[str, List[Tuple[str, Tuple[int, ...]]]] = {}
    current = None
    with open(os.path.join(ASSETS_DIR, "checkpoint_keys.txt")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("### "):
                current = line[4:].split()[0]
                sections[current] = []
            elif line and not line.startswith("#") and current is not None:
                key, shape = line.split()
                dims = tuple(int(d) for d in shape.split("x"))
                sections[current].append((key, dims))
    return sections


@pytest.fixture(scope="session")
def original_checkpoint_keys():
    return _parse_checkpoint_keys()


@pytest.fixture(autouse=True)
def _deterministic_seed():
    torch.manual_seed(0)
    yield
