"""Load a state_dict into a model the way the original did (by longest key suffix), with a coverage
requirement so that a model is never left (mostly) random without the caller asking for it.

Checkpoints may come from a DDP-wrapped model ("module." prefixes), from a model with a different
head (fine-tuning with another number of classes), or from a Caffe2 .pkl whose renamed keys are only
suffixes of ours ("layer1.0.conv1.weight" for "backbone.body.layer1.0.conv1.weight").

`require` says how much of the model the file must fill:
    "any"   at least one tensor (the default): ImageNet-pretrained backbones and fine-tuning with
            another number of classes are partial by nature; a file that matches nothing at all
            (a classification checkpoint, another config) is an error.
    "all"   every model tensor, with the right shape: resuming, evaluating, predicting.
    "none"  anything, even nothing (the caller accepts random weights).
"""

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import torch

logger = logging.getLogger(__name__)

REQUIRE_CHOICES = ("any", "all", "none")


class WeightsCoverageError(RuntimeError):
    """The weights do not cover as much of the model as required. `problem` says what is missing,
    `hint` how to allow it (callers such as command-line tools replace it with `with_hint`)."""

    def __init__(self, problem: str, hint: str = ""):
        super().__init__(problem + ("\n" + hint if hint else ""))
        self.problem = problem
        self.hint = hint

    def with_hint(self, hint: str) -> "WeightsCoverageError":
        """The same error with another way to allow it."""
        return type(self)(self.problem, hint)


@dataclass
class LoadResult:
    """What load_state_dict did. `mismatched` holds (model key, file key, model shape, file shape)."""

    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, str, tuple, tuple]] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every model tensor was loaded."""
        return not self.missing and not self.mismatched


def check_require(require: str) -> str:
    """`require` itself, or a ValueError naming the choices."""
    if require not in REQUIRE_CHOICES:
        raise ValueError(f"require must be one of {', '.join(map(repr, REQUIRE_CHOICES))}, got {require!r}")
    return require


def state_dict_problem(state_dict: Any) -> str:
    """Why `state_dict` is not a {name: tensor} mapping ("" when it is one)."""
    if not isinstance(state_dict, Mapping):
        return f"the model weights are a {type(state_dict).__name__}, not a dict of tensors"
    bad = [(k, v) for k, v in state_dict.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if not bad:
        return ""
    shown = ", ".join(f"{k!r} ({type(v).__name__})" for k, v in bad[:5]) + (", ..." if len(bad) > 5 else "")
    return f"the model weights are not a dict of tensors: {len(bad)} of {len(state_dict)} entries are not: {shown}"


def shorten_keys(keys: Sequence[str], limit: int = 6) -> str:
    """A few keys in full, or for many keys their modules with counts: "roi_heads.mask.* (10), ..."."""
    keys = list(keys)
    if len(keys) <= limit:
        return ", ".join(keys)
    groups: "OrderedDict[str, int]" = OrderedDict()
    for key in keys:
        parts = key.split(".")
        group = ".".join(parts[:2]) + ".*" if len(parts) > 2 else key
        groups[group] = groups.get(group, 0) + 1
    items = [f"{g} ({n})" if n > 1 else g for g, n in groups.items()]
    more = len(items) - 2 * limit
    return ", ".join(items[: 2 * limit]) + (f", ... ({more} more groups)" if more > 0 else "")


def _first(keys: Sequence[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def strip_prefix_if_present(state_dict: Dict[str, torch.Tensor], prefix: str) -> "OrderedDict[str, torch.Tensor]":
    """Remove `prefix` from every key, but only if every key starts with it."""
    keys = sorted(state_dict.keys())
    if not keys or not all(key.startswith(prefix) for key in keys):
        return OrderedDict(state_dict)
    return OrderedDict((key[len(prefix) :], value) for key, value in state_dict.items())


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
    return _copy_matches(model_state_dict, loaded_state_dict, matches)


def _copy_matches(
    model_state_dict: Dict[str, torch.Tensor], loaded_state_dict: Dict[str, torch.Tensor], matches: Dict[str, str]
) -> Tuple[List[str], List[Tuple[str, str, tuple, tuple]]]:
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


def _nothing_matches(
    result: LoadResult, model_keys: List[str], file_keys: List[str], source: str
) -> WeightsCoverageError:
    if not file_keys:
        problem = f"{source} holds no tensors at all: nothing to load into the model."
    else:
        why = (
            f"{len(result.mismatched)} match by name but all have other shapes"
            if result.mismatched
            else "no key matches"
        )
        problem = (
            f"None of the {len(model_keys)} model tensors could be loaded from {source} ({len(file_keys)} tensors): "
            f"{why}. It holds the weights of another model (a classification network? another config?).\n"
            f"  model keys: {_first(model_keys)}\n  file keys:  {_first(file_keys)}"
        )
    hint = "Check the weights file and the config; pass require='none' to keep the random initialisation anyway."
    return WeightsCoverageError(problem, hint)


def _not_all_loaded(result: LoadResult, total: int, source: str) -> WeightsCoverageError:
    left = len(result.missing) + len(result.mismatched)
    lines = [
        f"{source} does not cover the whole model: {left} of {total} model tensors would keep their "
        f"initial (random) values."
    ]
    if result.missing:
        lines.append(f"  not in the file ({len(result.missing)}): {shorten_keys(result.missing)}")
    if result.mismatched:
        shown = ", ".join(f"{m} (model {list(ms)} vs file {list(fs)})" for m, _, ms, fs in result.mismatched[:4])
        more = f", ... ({len(result.mismatched) - 4} more)" if len(result.mismatched) > 4 else ""
        lines.append(f"  other shapes ({len(result.mismatched)}): {shown}{more}")
    hint = "To load it anyway, leaving those tensors as initialised, pass require='any' (or 'none')."
    return WeightsCoverageError("\n".join(lines), hint)


def load_state_dict(
    model: torch.nn.Module,
    loaded_state_dict: Dict[str, torch.Tensor],
    require: str = "any",
    source: str = "the checkpoint",
    optional: Iterable[str] = (),
) -> LoadResult:
    """Load `loaded_state_dict` into `model` by suffix matching (see module docstring).

    Keys whose shapes differ (e.g. a COCO box predictor when fine-tuning with another NUM_CLASSES)
    are skipped and listed in one warning; model keys with no match keep their values. Raises
    WeightsCoverageError, before changing the model, when the coverage is less than `require`
    asks; `source` names the file in messages. `optional` model keys may be absent from the file
    without counting as missing (e.g. anchors, which the model computes from its config).
    """
    check_require(require)
    optional = set(optional)
    problem = state_dict_problem(loaded_state_dict)
    if problem:
        raise TypeError(f"{source}: {problem}")
    model_state_dict = model.state_dict()
    model_keys = list(model_state_dict.keys())
    loaded_state_dict = strip_prefix_if_present(loaded_state_dict, prefix="module.")
    matches = match_keys_by_suffix(model_keys, list(loaded_state_dict))
    loaded, skipped = _copy_matches(model_state_dict, loaded_state_dict, matches)
    used = set(matches.values())
    result = LoadResult(
        loaded=loaded,
        mismatched=skipped,
        unused=[k for k in loaded_state_dict if k not in used],
        missing=[k for k in model_keys if k not in matches and k not in optional],
    )
    if require == "any" and model_keys and not loaded:
        raise _nothing_matches(result, model_keys, list(loaded_state_dict), source)
    if require == "all" and not result.complete:
        raise _not_all_loaded(result, len(model_keys), source)
    if skipped:
        lines = "\n".join(
            f"  {model_key}: model {list(model_shape)} vs checkpoint {list(loaded_shape)} ({loaded_key})"
            for model_key, loaded_key, model_shape, loaded_shape in skipped
        )
        logger.warning(
            "Skipped %d checkpoint tensors whose shapes differ from the model's (they keep their "
            "initial values; expected when fine-tuning with another number of classes):\n%s",
            len(skipped),
            lines,
        )
    logger.info(
        "Loaded %d of %d model tensors from %s (%d not in it%s)%s.",
        len(loaded),
        len(model_keys),
        source,
        len(result.missing),
        f": {shorten_keys(result.missing)}" if result.missing else "",
        f"; {len(result.unused)} of its tensors are not used by this model" if result.unused else "",
    )
    model.load_state_dict(model_state_dict)
    return result
