"""Suffix-matching state_dict loading (as the original library), shape-mismatch skipping, and the
coverage requirement (require="any" / "all" / "none")."""

import copy
import logging
from collections import OrderedDict

import pytest
import torch
from torch import nn

from maskrcnn_benchmark.utils.model_serialization import (
    WeightsCoverageError,
    load_state_dict,
    match_keys_by_suffix,
    shorten_keys,
    strip_prefix_if_present,
)


def test_strip_prefix_only_when_all_keys_have_it():
    assert list(strip_prefix_if_present({"module.a": 1, "module.b": 2}, "module.")) == ["a", "b"]
    assert list(strip_prefix_if_present({"module.a": 1, "b": 2}, "module.")) == ["module.a", "b"]
    assert strip_prefix_if_present({}, "module.") == {}


def test_longest_suffix_wins_and_ties_go_to_first_sorted():
    model_keys = ["backbone.body.stem.conv1.weight", "backbone.body.layer1.0.conv1.weight", "head.bias"]
    loaded = ["conv1.weight", "layer1.0.conv1.weight", "0.conv1.weight", "ead.bias", "d.bias"]
    m = match_keys_by_suffix(model_keys, loaded)
    assert m["backbone.body.layer1.0.conv1.weight"] == "layer1.0.conv1.weight"
    assert m["backbone.body.stem.conv1.weight"] == "conv1.weight"
    assert m["head.bias"] == "ead.bias"  # plain string suffix, as the original
    assert match_keys_by_suffix(["a.x", "a.y"], ["b.z"]) == {}


class _Net(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.body = nn.Conv2d(3, 4, 3)
        self.cls = nn.Linear(4, classes)


def test_loads_module_prefixed_state_dict():
    src, dst = _Net(5), _Net(5)
    state = OrderedDict(("module." + k, v) for k, v in src.state_dict().items())
    load_state_dict(dst, state)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)


def test_shape_mismatch_is_skipped_with_one_warning(caplog):
    src, dst = _Net(81), _Net(3)
    before = dst.cls.weight.clone()
    with caplog.at_level(logging.WARNING):
        load_state_dict(dst, src.state_dict())
    assert torch.equal(dst.body.weight, src.body.weight)
    assert torch.equal(dst.cls.weight, before)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "cls.weight: model [3, 4] vs checkpoint [81, 4]" in text and "cls.bias" in text


def test_partial_checkpoint_keeps_other_values():
    src, dst = _Net(5), _Net(5)
    before = dst.cls.weight.clone()
    load_state_dict(dst, {"body.weight": src.body.weight, "body.bias": src.body.bias})
    assert torch.equal(dst.body.weight, src.body.weight) and torch.equal(dst.cls.weight, before)


def _unchanged(model, before):
    return all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values()))


def test_result_says_what_was_loaded():
    src, dst = _Net(81), _Net(3)
    state = dict(src.state_dict(), extra=torch.zeros(2))
    result = load_state_dict(dst, state)
    assert sorted(result.loaded) == ["body.bias", "body.weight"]
    assert [m[0] for m in result.mismatched] == ["cls.bias", "cls.weight"]
    assert result.missing == [] and result.unused == ["extra"] and not result.complete
    assert load_state_dict(_Net(5), _Net(5).state_dict(), require="all").complete


@pytest.mark.parametrize(
    "state",
    [
        {},  # an empty file
        {"features.0.weight": torch.zeros(8, 3, 3, 3), "classifier.weight": torch.zeros(10, 8)},  # another network
        {"body.weight": torch.zeros(2, 2), "cls.weight": torch.zeros(1)},  # same names, other shapes everywhere
    ],
)
def test_require_any_refuses_a_file_that_fills_nothing(state):
    model = _Net(5)
    before = copy.deepcopy(model)
    with pytest.raises(WeightsCoverageError) as info:
        load_state_dict(model, state, source="weights.pth")
    message = str(info.value)
    assert "weights.pth" in message and "require='none'" in message
    if state:
        assert "None of the 4 model tensors" in message and "model keys: body.weight, body.bias, cls.weight" in message
    else:
        assert "holds no tensors at all" in message
    assert _unchanged(model, before)
    load_state_dict(model, state, require="none")  # allowed when asked for
    assert _unchanged(model, before)


def test_require_all_lists_missing_and_mismatched_keys():
    model = _Net(3)
    before = copy.deepcopy(model)
    state = {"body.weight": torch.zeros(4, 3, 3, 3), "cls.weight": torch.zeros(81, 4)}
    with pytest.raises(WeightsCoverageError) as info:
        load_state_dict(model, state, require="all", source="coco.pth")
    message = str(info.value)
    assert "coco.pth does not cover the whole model: 3 of 4 model tensors" in message
    assert "not in the file (2): body.bias, cls.bias" in message
    assert "other shapes (1): cls.weight (model [3, 4] vs file [81, 4])" in message
    assert "require='any'" in message
    assert _unchanged(model, before)  # checked before anything is loaded
    assert info.value.with_hint("use --flag").args[0].endswith("use --flag")
    load_state_dict(model, state, require="any")
    assert torch.equal(model.body.weight, torch.zeros(4, 3, 3, 3))


def test_many_missing_keys_are_shortened_by_module():
    keys = [f"roi_heads.mask.feature_extractor.mask_fcn{i}.weight" for i in range(1, 5)]
    keys += [f"roi_heads.box.predictor.{n}" for n in ("cls_score.weight", "cls_score.bias", "bbox_pred.weight")]
    keys += ["rpn.head.conv.weight"]
    assert shorten_keys(keys[:3]) == ", ".join(keys[:3])
    assert shorten_keys(keys) == "roi_heads.mask.* (4), roi_heads.box.* (3), rpn.head.*"
    many = [f"m{i}.a.b" for i in range(30)]
    assert shorten_keys(many).endswith("... (18 more groups)")


@pytest.mark.parametrize(
    "state, expected",
    [
        ([torch.zeros(1)], "a list, not a dict of tensors"),
        ({"body.weight": [1.0, 2.0]}, "1 of 1 entries are not: 'body.weight' (list)"),
        ({"body.weight": torch.zeros(4, 3, 3, 3), 3: torch.zeros(1)}, "3 (Tensor)"),
    ],
)
def test_not_a_state_dict(state, expected):
    with pytest.raises(
        TypeError, match=r"^w\.pth: .*" + expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        load_state_dict(_Net(5), state, source="w.pth")


def test_unknown_requirement():
    with pytest.raises(ValueError, match="'any', 'all', 'none'"):
        load_state_dict(_Net(5), _Net(5).state_dict(), require="most")
