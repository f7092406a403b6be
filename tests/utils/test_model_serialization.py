"""Suffix-matching state_dict loading (REFERENCE.md 8.4) and shape-mismatch skipping."""
import logging
from collections import OrderedDict

import torch
from torch import nn

from maskrcnn_benchmark.utils.model_serialization import (
    load_state_dict,
    match_keys_by_suffix,
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
