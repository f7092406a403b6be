import pytest

from maskrcnn_benchmark.modeling.registry import Registry


def test_register_as_call_and_decorator():
    reg = Registry()
    reg.register("a", int)

    @reg.register("b")
    def build_b():
        return "b"

    assert reg["a"] is int and reg["b"]() == "b"


def test_duplicate_and_missing_names():
    reg = Registry()
    reg.register("a", int)
    with pytest.raises(KeyError, match="already registered"):
        reg.register("a", float)
    with pytest.raises(KeyError, match="'c' is not registered; registered names: a"):
        reg["c"]
