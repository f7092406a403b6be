"""Read a YAML config file into a dict, with an error naming the file and saying what is wrong for
anything that is not a mapping of keys to values (missing file, directory, binary file, invalid
YAML, an empty file, a list or a scalar at the top level, a key given twice)."""

import os
from typing import Any, Dict

import yaml


class ConfigFileError(ValueError):
    """A config file that cannot be used; the message names it and says why."""


class ConfigFileNotFoundError(ConfigFileError, FileNotFoundError):
    """The config file does not exist."""


class ConfigValueError(ValueError):
    """A config value that cannot work: of the wrong type (found when merged; the message names the
    file or the command line) or of the right type but nonsense (config/checks.py); the message
    names the key and the value."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error (PyYAML would
    silently keep the last value)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice (first on line {first})", key_node.start_mark
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(error: yaml.YAMLError) -> str:
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{context + ': ' if context else ''}{problem}{where}"


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def read_config_file(path: str) -> Dict[str, Any]:
    """The top-level mapping of the YAML file `path`; ConfigFileError when there is none."""
    if not os.path.exists(path):
        raise ConfigFileNotFoundError(f"config file not found: {path}")
    if os.path.isdir(path):
        raise ConfigFileError(f"config file {path} is a directory, not a YAML file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigFileError(f"config file {path} cannot be read: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigFileError(f"config file {path} is not a UTF-8 text file (a binary file?)") from None
    try:
        loaded = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        raise ConfigFileError(f"config file {path} is not valid YAML: {_yaml_problem(e)}") from None
    if loaded is None:
        raise ConfigFileError(f"config file {path} is empty: it holds no settings")
    if not isinstance(loaded, dict):
        raise ConfigFileError(
            f"config file {path}: the top level must be a mapping of KEY: value (e.g. 'MODEL:' with its keys "
            f"indented below), got {_a(type(loaded).__name__)} ({str(loaded)[:60]!r})"
        )
    return loaded
