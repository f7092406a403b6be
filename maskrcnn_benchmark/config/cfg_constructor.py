"""`cfg_constructor`: a class whose constructor takes its parts, built from a config too.

This library's model classes take their parts (`ROIBoxHead(feature_extractor, predictor, ...)`); the
original's took the config (`ROIBoxHead(cfg, in_channels)`), and code written for it constructs,
subclasses and registers them that way. A decorated class accepts both calls: with a CfgNode first
argument (or keyword), `arguments(cfg, ...)` turns the original's arguments into the keyword
arguments of the class's own constructor; any other call goes to that constructor unchanged.

    @cfg_constructor(fpn_predictor_arguments)   # (cfg, in_channels) -> {"in_channels": ..., ...}
    class FPNPredictor(nn.Module):
        def __init__(self, in_channels: int, num_classes: int, cls_agnostic_bbox_reg: bool = False): ...

    FPNPredictor(cfg, 1024) == FPNPredictor(**fpn_predictor_arguments(cfg, 1024))

`inspect.signature(FPNPredictor)` shows the parts constructor; `FPNPredictor.__init__.from_cfg` is
`arguments`, whose signature is the original's.
"""

import functools
import inspect
from typing import Any, Callable, Dict, TypeVar

from yacs.config import CfgNode as _YacsCfgNode

T = TypeVar("T", bound=type)


def cfg_constructor(arguments: Callable[..., Dict[str, Any]]) -> Callable[[T], T]:
    """Class decorator: `cls(cfg, *args, **kwargs)` constructs `cls(**arguments(cfg, *args, **kwargs))`."""
    cfg_name = next(iter(inspect.signature(arguments).parameters))

    def decorate(cls: T) -> T:
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            # Any yacs node counts (this package's CfgNode subclasses it; callers may pass a plain one).
            first = args[0] if args else kwargs.get(cfg_name)
            if isinstance(first, _YacsCfgNode):
                args, kwargs = (), arguments(*args, **kwargs)
            init(self, *args, **kwargs)

        __init__.from_cfg = arguments
        cls.__init__ = __init__
        return cls

    return decorate
