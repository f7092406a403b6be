"""yacs CfgNode with error messages that say where a bad key or value came from.

yacs already rejects unknown keys; this subclass names the file (or the command line), the
offending key and the closest existing keys, and raises `ConfigKeyError` (a KeyError, so code that
caught yacs' errors keeps working). A file that is not a YAML mapping raises `ConfigFileError`, a
value of the wrong type `ConfigValueError` (both ValueErrors, as yacs' type errors), naming the file
(or the command line), and the key and the value.
"""

import difflib
from typing import Any, Iterable, List

from yacs.config import CfgNode as _YacsCfgNode
from yacs.config import _check_and_coerce_cfg_value_type

from .config_file import ConfigValueError, read_config_file


class ConfigKeyError(KeyError):
    """An unknown configuration key. `str()` gives the plain message (KeyError would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _all_keys(node: "_YacsCfgNode", prefix: str = "") -> List[str]:
    keys = []
    for name, value in node.items():
        full = prefix + name
        if isinstance(value, _YacsCfgNode):
            keys.extend(_all_keys(value, full + "."))
        else:
            keys.append(full)
    return keys


def _kind(value: Any) -> str:
    if isinstance(value, _YacsCfgNode):
        keys = list(value.keys())
        return f"a group of keys ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
    if isinstance(value, bool):
        return "a bool (true / false)"
    if isinstance(value, (tuple, list)):
        return "a tuple / list"
    names = {int: "an int", float: "a float", str: "a string", type(None): "null", dict: "a group of keys"}
    return names.get(type(value), f"a {type(value).__name__}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_problem(value: Any, default: Any, full_key: str) -> str:
    """Why `value` (decoded) cannot replace `default` ("" when it can): yacs' rules (same type, or
    list <-> tuple), and no null, and numbers where the default tuple holds numbers."""
    if value is None and default is not None:
        return f"null is not a valid value (the default is {default!r}, {_kind(default)})"
    try:
        _check_and_coerce_cfg_value_type(value, default, full_key.split(".")[-1], full_key)
    except ValueError:
        hint = " (write it with a decimal point, e.g. 1.0)" if isinstance(default, float) and _is_number(value) else ""
        return f"it must be {_kind(default)}, like the default {default!r}{hint}"
    if isinstance(default, (tuple, list)) and default and all(_is_number(v) for v in default):
        bad = [v for v in value if not _is_number(v)]
        if bad:
            return f"it must be a tuple / list of numbers, like the default {default!r}; {bad[0]!r} is not a number"
    return ""


class CfgNode(_YacsCfgNode):
    """Drop-in replacement for yacs.config.CfgNode (same API) with clearer key errors."""

    def _unknown_key(self, full_key: str, source: str) -> ConfigKeyError:
        known = _all_keys(self)
        close = difflib.get_close_matches(full_key, known, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return ConfigKeyError(f"{source}: unknown config key '{full_key}'.{hint}")

    def _check_keys(self, other: dict, source: str, prefix: str = "") -> None:
        node = self
        for part in filter(None, prefix.rstrip(".").split(".")):
            node = node[part]
        for name, value in other.items():
            full = prefix + str(name)
            if name not in node:
                if self.key_is_deprecated(full) or self.key_is_renamed(full):
                    continue  # yacs handles (and explains) these itself
                raise self._unknown_key(full, source)
            if isinstance(value, dict) and isinstance(node[name], _YacsCfgNode):
                self._check_keys(value, source, full + ".")

    def _check_value(self, full_key: str, value: Any, source: str) -> None:
        """ConfigValueError naming `source`, the key and the value when `value` (as given, before
        decoding) does not fit the key's default."""
        default = self
        for part in full_key.split("."):
            default = default[part]
        if isinstance(default, _YacsCfgNode) and not isinstance(value, dict):
            problem = f"it is {_kind(default)}: write them under it, indented, not a single value"
        elif isinstance(value, dict) and not isinstance(default, _YacsCfgNode):
            problem = f"it is a single value ({_kind(default)}, like the default {default!r}), not a group of keys"
        elif isinstance(value, dict):
            for name, sub in value.items():
                if name in default:
                    self._check_value(f"{full_key}.{name}", sub, source)
            return
        else:
            problem = _type_problem(self._decode_cfg_value(value), default, full_key)
        if problem:
            shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
            raise ConfigValueError(f"{source}: bad value {shown} for {full_key}: {problem}")

    def merge_from_file(self, cfg_filename: str) -> None:
        """Merge a YAML file. A file that is not a YAML mapping raises ConfigFileError, a value of
        the wrong type ConfigValueError, an unknown key ConfigKeyError; all name the file."""
        source = f"config file {cfg_filename}"
        if str(cfg_filename).endswith(".py"):  # yacs' Python config files: yacs reads them
            with open(cfg_filename, "r") as f:
                loaded = self.load_cfg(f)
        else:
            raw = read_config_file(cfg_filename)
            self._check_keys(raw, source)
            for name, value in raw.items():
                if name in self:
                    self._check_value(name, value, source)
            loaded = type(self)(raw)
        self._check_keys(loaded, source)
        try:
            self.merge_from_other_cfg(loaded)
        except ValueError as e:  # yacs' type-mismatch message names the key
            raise ConfigValueError(f"{source}: {e}") from None

    def merge_from_list(self, cfg_list: Iterable) -> None:
        """Merge KEY VALUE pairs (command-line style); unknown keys raise ConfigKeyError."""
        cfg_list = list(cfg_list)
        if len(cfg_list) % 2 != 0:
            raise ValueError(f"config overrides must be KEY VALUE pairs, got an odd number of items: {cfg_list}")
        for full_key, value in zip(cfg_list[0::2], cfg_list[1::2]):
            node = self
            parts = str(full_key).split(".")
            for part in parts:
                if not isinstance(node, _YacsCfgNode) or part not in node:
                    if self.key_is_deprecated(full_key) or self.key_is_renamed(full_key):
                        break
                    raise self._unknown_key(str(full_key), "command-line override")
                node = node[part]
            else:
                if isinstance(node, _YacsCfgNode):
                    raise ConfigKeyError(f"command-line override: '{full_key}' is a group of keys, not a single key")
                self._check_value(str(full_key), value, "command-line override")
        try:
            super().merge_from_list(cfg_list)
        except ValueError as e:
            raise ConfigValueError(f"command-line override: {e}") from None
