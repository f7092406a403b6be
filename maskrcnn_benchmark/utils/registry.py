"""Registry: the name -> builder dict behind the model registries (modeling/registry.py), at the
original's import path."""

from typing import Callable, Optional


class Registry(dict):
    """A name -> builder dict; `register(name)` works as a call or as a decorator.

    Registering a name twice is an error (it would silently replace a piece).
    """

    def register(self, name: str, obj: Optional[Callable] = None):
        if obj is not None:
            self._add(name, obj)
            return obj

        def decorator(fn: Callable) -> Callable:
            self._add(name, fn)
            return fn

        return decorator

    def _add(self, name: str, obj: Callable) -> None:
        if name in self:
            raise KeyError(f"{name!r} is already registered (by {self[name]!r})")
        self[name] = obj

    def __missing__(self, name: str):
        known = ", ".join(sorted(self)) or "(none)"
        raise KeyError(f"{name!r} is not registered; registered names: {known}")
