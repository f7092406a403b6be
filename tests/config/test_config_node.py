"""Merging YAML files and command-line overrides; bad keys fail with a message naming them."""

import pytest

from maskrcnn_benchmark.config import ConfigFileError, ConfigKeyError, ConfigValueError, cfg


@pytest.fixture
def c():
    return cfg.clone()


def _write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_yaml_merge_with_tuple_strings(c, tmp_path):
    path = _write(tmp_path, "MODEL:\n  RPN:\n    ANCHOR_STRIDE: (4, 8, 16, 32, 64)\nINPUT:\n  MIN_SIZE_TRAIN: (600,)\n")
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


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "- MODEL\n- SOLVER\n",
            "the top level must be a mapping of KEY: value (e.g. 'MODEL:' with its keys indented below), got a list",
        ),
        ("3\n", "got an int ('3')"),
        ("just some words\n", "got a str ('just some words')"),
        ("", "is empty: it holds no settings"),
        ("# only a comment\n\n", "is empty: it holds no settings"),
        ("MODEL: [\n", "is not valid YAML: while parsing a flow node: expected the node content"),
        (
            "MODEL:\n  DEVICE: cpu\n   META_ARCHITECTURE: x\n",
            "is not valid YAML: mapping values are not allowed here at line 3",
        ),
        ("SOLVER:\n\tBASE_LR: 0.1\n", "is not valid YAML"),
        ("MODEL:\n  DEVICE: cpu\nMODEL:\n  DEVICE: cuda\n", "key 'MODEL' is given twice (first on line 1) at line 3"),
        ("SOLVER: {BASE_LR: 0.1, BASE_LR: 0.2}\n", "key 'BASE_LR' is given twice"),
    ],
)
def test_files_that_are_not_a_yaml_mapping(c, tmp_path, text, expected):
    path = _write(tmp_path, text, name="bad.yaml")
    with pytest.raises(ConfigFileError) as info:
        c.merge_from_file(path)
    assert str(path) in str(info.value) and expected in str(info.value), str(info.value)
    assert c == cfg  # nothing merged


def test_files_that_are_not_text_or_not_files(c, tmp_path):
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(b"\x80\x02}q\x00\xff\xfe")
    with pytest.raises(ConfigFileError, match=r"weights\.yaml is not a UTF-8 text file"):
        c.merge_from_file(str(binary))
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(ConfigFileError, match=r"folder\.yaml is a directory"):
        c.merge_from_file(str(tmp_path / "folder.yaml"))
    with pytest.raises(ConfigFileError, match="config file not found: .*nope.yaml"):
        c.merge_from_file(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("SOLVER:\n  BASE_LR: abc\n", "bad value 'abc' for SOLVER.BASE_LR: it must be a float, like the default"),
        (
            "SOLVER:\n  BASE_LR: 1\n",
            "bad value 1 for SOLVER.BASE_LR: it must be a float, like the default 0.001 (write it with a decimal point",
        ),
        (
            "SOLVER:\n  BASE_LR: null\n",
            "bad value None for SOLVER.BASE_LR: null is not a valid value (the default is 0.001, a float)",
        ),
        ("SOLVER:\n  STEPS: 5\n", "bad value 5 for SOLVER.STEPS: it must be a tuple / list, like the default (30000,)"),
        (
            "SOLVER:\n  STEPS: [1000, later]\n",
            "bad value [1000, 'later'] for SOLVER.STEPS: it must be a tuple / list of numbers",
        ),
        (
            "SOLVER:\n  STEPS: (1000, later)\n",
            "bad value '(1000, later)' for SOLVER.STEPS: it must be a tuple / list, like",
        ),
        ("MODEL:\n  MASK_ON: 1\n", "bad value 1 for MODEL.MASK_ON: it must be a bool (true / false)"),
        ("MODEL:\n  DEVICE: 2020-01-01\n", "bad value datetime.date(2020, 1, 1) for MODEL.DEVICE: it must be a string"),
        ("SOLVER: 5\n", "bad value 5 for SOLVER: it is a group of keys (MAX_ITER, BASE_LR"),
        (
            "SOLVER:\n  BASE_LR:\n    VALUE: 0.1\n",
            "bad value {'VALUE': 0.1} for SOLVER.BASE_LR: it is a single value (a float",
        ),
    ],
)
def test_values_of_the_wrong_type_name_file_key_and_value(c, tmp_path, text, expected):
    path = _write(tmp_path, text, name="values.yaml")
    with pytest.raises(ConfigValueError) as info:
        c.merge_from_file(path)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"config file {path}: ") and expected in str(info.value), str(info.value)
    assert c == cfg


def test_values_of_the_right_type_still_merge(c, tmp_path):
    path = _write(tmp_path, "SOLVER:\n  BASE_LR: 1e-3\n  STEPS: [100, 200.5]\n  MAX_ITER: 10\nMODEL:\n  MASK_ON: yes\n")
    c.merge_from_file(path)
    assert c.SOLVER.BASE_LR == 0.001 and c.SOLVER.STEPS == (100, 200.5) and c.MODEL.MASK_ON is True


@pytest.mark.parametrize(
    "pair, expected",
    [
        (["SOLVER.BASE_LR", "abc"], "command-line override: bad value 'abc' for SOLVER.BASE_LR: it must be a float"),
        (["SOLVER.STEPS", "5"], "command-line override: bad value '5' for SOLVER.STEPS: it must be a tuple / list"),
        (
            ["MODEL.DEVICE", "None"],
            "command-line override: bad value 'None' for MODEL.DEVICE: null is not a valid value",
        ),
    ],
)
def test_override_values_of_the_wrong_type(c, pair, expected):
    with pytest.raises(ConfigValueError) as info:
        c.merge_from_list(pair)
    assert expected in str(info.value)
