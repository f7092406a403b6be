"""yacs CfgNode with error messages that say where a bad key came from.

yacs already rejects unknown keys; this subclass names the file (or the command line), the
offending key and the closest existing keys, and raises `ConfigKeyError` (a KeyError, so code that
caught yacs' errors keeps working).
"""
import difflib
from typing import Iterable, List

from yacs.config import CfgNode as _YacsCfgNode


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
            full = prefix + name
            if name not in node:
                if self.key_is_deprecated(full) or self.key_is_renamed(full):
                    continue  # yacs handles (and explains) these itself
                raise self._unknown_key(full, source)
            if isinstance(value, dict) and isinstance(node[name], _YacsCfgNode):
                self._check_keys(value, source, full + ".")

    def merge_from_file(self, cfg_filename: str) -> None:
        """Merge a YAML file; unknown keys and type mismatches name the file and the key."""
        with open(cfg_filename, "r") as f:
            loaded = self.load_cfg(f)
        self._check_keys(loaded, f"config file {cfg_filename}")
        try:
            self.merge_from_other_cfg(loaded)
        except ValueError as e:  # yacs' type-mismatch message names the key
            raise ValueError(f"config file {cfg_filename}: {e}") from None

    def merge_from_list(self, cfg_list: Iterable) -> None:
        """Merge KEY VALUE pairs (command-line style); unknown keys raise ConfigKeyError."""
        cfg_list = list(cfg_list)
        if len(cfg_list) % 2 != 0:
            raise ValueError(
                f"config overrides must be KEY VALUE pairs, got an odd number of items: {cfg_list}"
            )
        for full_key in cfg_list[0::2]:
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
                    raise ConfigKeyError(
                        f"command-line override: '{full_key}' is a group of keys, not a single key"
                    )
        try:
            super().merge_from_list(cfg_list)
        except ValueError as e:
            raise ValueError(f"command-line override: {e}") from None
