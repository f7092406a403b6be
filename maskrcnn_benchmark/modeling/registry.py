"""Registries of model pieces, by the names configs use.

Register your own piece and select it from a config:

    from maskrcnn_benchmark.modeling import registry

    @registry.ROI_BOX_FEATURE_EXTRACTORS.register("MyExtractor")
    class MyExtractor(nn.Module):
        def __init__(self, cfg, in_channels): ...

    # MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR: "MyExtractor"
"""

from typing import Callable, Dict, Optional


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


BACKBONES: Dict[str, Callable] = Registry()
RPN_HEADS: Dict[str, Callable] = Registry()
ROI_BOX_FEATURE_EXTRACTORS: Dict[str, Callable] = Registry()
ROI_BOX_PREDICTOR: Dict[str, Callable] = Registry()
ROI_KEYPOINT_FEATURE_EXTRACTORS: Dict[str, Callable] = Registry()
ROI_KEYPOINT_PREDICTOR: Dict[str, Callable] = Registry()
ROI_MASK_FEATURE_EXTRACTORS: Dict[str, Callable] = Registry()
ROI_MASK_PREDICTOR: Dict[str, Callable] = Registry()
