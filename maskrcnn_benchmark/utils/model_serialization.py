"""Load a state_dict into a model the way the original did: by longest key suffix.

Checkpoints may come from a DDP-wrapped model ("module." prefixes), from a model with a different
head (fine-tuning with another number of classes), or from a Caffe2 .pkl whose renamed keys are only
suffixes of ours ("layer1.0.conv1.weight" for "backbone.body.layer1.0.conv1.weight").
"""
import logging
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

logger = logging.getLogger(__name__)


def strip_prefix_if_present(state_dict: Dict[str, torch.Tensor], prefix: str) -> "OrderedDict[str, torch.Tensor]":
    """Remove `prefix` from every key, but only if every key starts with it."""
    keys = sorted(state_dict.keys())
    if not keys or not all(key.startswith(prefix) for key in keys):
        return OrderedDict(state_dict)
    return OrderedDict((key[len(prefix):], value) for key, value in state_dict.items())


def match_keys_by_suffix(model_keys: List[str], loaded_keys: List[str]) -> Dict[str, str]:
    """{model key: loaded key} where the loaded key is the longest suffix of the model key.

    Ties between loaded keys of the same length go to the first in sorted order; model keys with no
    suffix among the loaded keys are left out. (Plain string suffixes, as the original.)
    """
    loaded_sorted = sorted(loaded_keys)
    matches = {}
    for model_key in sorted(model_keys):
        best = None
        for key in loaded_sorted:
            if model_key.endswith(key) and (best is None or len(key) > len(best)):
                best = key
        if best is not None:
            matches[model_key] = best
    return matches


def align_and_update_state_dicts(
    model_state_dict: Dict[str, torch.Tensor], loaded_state_dict: Dict[str, torch.Tensor]
) -> Tuple[List[str], List[Tuple[str, str, tuple, tuple]]]:
    """Copy matching tensors of `loaded_state_dict` into `model_state_dict` (in place).

    Returns (loaded model keys, skipped (model key, loaded key, model shape, loaded shape)) where
    shapes differ: those keep the model's current values.
    """
    matches = match_keys_by_suffix(list(model_state_dict.keys()), list(loaded_state_dict.keys()))
    loaded, skipped = [], []
    for model_key, loaded_key in matches.items():
        value = loaded_state_dict[loaded_key]
        target = model_state_dict[model_key]
        if tuple(value.shape) != tuple(target.shape):
            skipped.append((model_key, loaded_key, tuple(target.shape), tuple(value.shape)))
            continue
        model_state_dict[model_key] = value
        loaded.append(model_key)
        logger.debug("%s loaded from %s of shape %s", model_key, loaded_key, tuple(value.shape))
    return loaded, skipped


def load_state_dict(model: torch.nn.Module, loaded_state_dict: Dict[str, torch.Tensor]) -> None:
    """Load `loaded_state_dict` into `model` by suffix matching (see module docstring).

    Keys whose shapes differ (e.g. a COCO box predictor when fine-tuning with another NUM_CLASSES)
    are skipped and listed in one warning; model keys with no match keep their values (and are
    counted in an info message).
    """
    model_state_dict = model.state_dict()
    loaded_state_dict = strip_prefix_if_present(loaded_state_dict, prefix="module.")
    loaded, skipped = align_and_update_state_dicts(model_state_dict, loaded_state_dict)
    if skipped:
        lines = "\n".join(
            f"  {model_key}: model {list(model_shape)} vs checkpoint {list(loaded_shape)} ({loaded_key})"
            for model_key, loaded_key, model_shape, loaded_shape in skipped
        )
        logger.warning(
            "Skipped %d checkpoint tensors whose shapes differ from the model's (they keep their "
            "initial values; expected when fine-tuning with another number of classes):\n%s",
            len(skipped), lines,
        )
    not_found = len(model_state_dict) - len(loaded) - len(skipped)
    logger.info(
        "Loaded %d of %d model tensors from the checkpoint (%d not in the checkpoint).",
        len(loaded), len(model_state_dict), not_found,
    )
    model.load_state_dict(model_state_dict)
