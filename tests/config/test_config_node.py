"""Merging YAML files and command-line overrides; bad keys fail with a message naming them."""
import pytest

from maskrcnn_benchmark.config import ConfigKeyError, cfg


@pytest.fixture
def c():
    return cfg.clone()


def _write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_yaml_merge_with_tuple_strings(c, tmp_path):
    path = _write(tmp_path, 'MODEL:\n  RPN:\n    ANCHOR_STRIDE: (4, 8, 16, 32, 64)\nINPUT:\n  MIN_SIZE_TRAIN: (600,)\n')
    c.merge_from_file(path)
    assert c.MODEL.RPN.ANCHOR_STRIDE == (4, 8, 16, 32, 64)
    assert c.INPUT.MIN_SIZE_TRAIN == (600,)


def test_unknown_yaml_key_names_file_and_key(c, tmp_path):
    path = _write(tmp_path, "MODEL:\n  RPN:\n    NMS_THRES: 0.5\n", name="typo.yaml")
    with pytest.raises(KeyError) as info:
        c.merge_from_file(path)
    assert isinstance(info.value, ConfigKeyError)
    message = str(info.value)
    assert "typo.yaml" in message and "MODEL.RPN.NMS_THRES" in message
    assert "MODEL.RPN.NMS_THRESH" in message  # the suggestion


def test_unknown_top_level_group_in_yaml(c, tmp_path):
    path = _write(tmp_path, "SOLVERR:\n  BASE_LR: 0.1\n")
    with pytest.raises(ConfigKeyError, match="SOLVERR"):
        c.merge_from_file(path)


def test_type_mismatch_names_file_and_key(c, tmp_path):
    path = _write(tmp_path, "SOLVER:\n  MAX_ITER: fast\n", name="types.yaml")
    with pytest.raises(ValueError, match=r"types\.yaml.*SOLVER\.MAX_ITER"):
        c.merge_from_file(path)


def test_merge_from_list(c):
    c.merge_from_list(["MODEL.DEVICE", "cpu", "SOLVER.BASE_LR", "0.02", "SOLVER.STEPS", "(10, 20)"])
    assert c.MODEL.DEVICE == "cpu"
    assert c.SOLVER.BASE_LR == 0.02
    assert c.SOLVER.STEPS == (10, 20)


@pytest.mark.parametrize("key", ["MODEL.RPN.NMS_THRES", "FOO", "MODEL.DEVICE.X"])
def test_unknown_override_key(c, key):
    with pytest.raises(ConfigKeyError, match=key.replace(".", r"\.")):
        c.merge_from_list([key, "1"])


def test_override_of_a_group_is_rejected(c):
    with pytest.raises(ConfigKeyError, match="group"):
        c.merge_from_list(["MODEL.RPN", "1"])


def test_odd_override_list(c):
    with pytest.raises(ValueError, match="KEY VALUE pairs"):
        c.merge_from_list(["MODEL.DEVICE"])


def test_frozen_config_rejects_changes(c):
    c.freeze()
    with pytest.raises(AttributeError):
        c.MODEL.DEVICE = "cpu"


def test_clone_keeps_the_class(c):
    assert type(c.clone()) is type(cfg)
    assert type(c.clone().MODEL) is type(cfg)


def test_missing_file_names_the_path(c, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        c.merge_from_file(str(tmp_path / "nope.yaml"))
