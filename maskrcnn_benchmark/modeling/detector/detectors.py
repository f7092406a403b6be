"""Meta-architectures by name (MODEL.META_ARCHITECTURE)."""

from ...config import CfgNode
from ...config.checks import check_model
from .generalized_rcnn import GeneralizedRCNN

_DETECTION_META_ARCHITECTURES = {"GeneralizedRCNN": GeneralizedRCNN.from_config}


def build_detection_model(cfg: CfgNode):
    name = cfg.MODEL.META_ARCHITECTURE
    if name not in _DETECTION_META_ARCHITECTURES:
        raise KeyError(
            f"MODEL.META_ARCHITECTURE {name!r} is not known; choose one of {sorted(_DETECTION_META_ARCHITECTURES)}"
        )
    check_model(cfg)  # anchors, pooler levels, classes: a clear error instead of one deep in the forward
    return _DETECTION_META_ARCHITECTURES[name](cfg)
