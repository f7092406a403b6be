"""Registries of model pieces, by the names configs use.

Register your own piece and select it from a config:

    from maskrcnn_benchmark.modeling import registry

    @registry.ROI_BOX_FEATURE_EXTRACTORS.register("MyExtractor")
    class MyExtractor(nn.Module):
        def __init__(self, cfg, in_channels): ...

    # MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR: "MyExtractor"
"""

from typing import Callable, Dict

from ..utils.registry import Registry

BACKBONES: Dict[str, Callable] = Registry()
RPN_HEADS: Dict[str, Callable] = Registry()
ROI_BOX_FEATURE_EXTRACTORS: Dict[str, Callable] = Registry()
ROI_BOX_PREDICTOR: Dict[str, Callable] = Registry()
ROI_KEYPOINT_FEATURE_EXTRACTORS: Dict[str, Callable] = Registry()
ROI_KEYPOINT_PREDICTOR: Dict[str, Callable] = Registry()
ROI_MASK_FEATURE_EXTRACTORS: Dict[str, Callable] = Registry()
ROI_MASK_PREDICTOR: Dict[str, Callable] = Registry()
