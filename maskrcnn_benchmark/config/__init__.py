"""Configuration: the global yacs node `cfg` holding every default (see defaults.py).

Typical use, as in the original library:

    from maskrcnn_benchmark.config import cfg
    cfg.merge_from_file("configs/e2e_mask_rcnn_R_50_FPN_1x.yaml")
    cfg.merge_from_list(["MODEL.DEVICE", "cpu"])
    cfg.freeze()
"""

from .config_file import ConfigFileError, ConfigValueError
from .config_node import CfgNode, ConfigKeyError
from .defaults import _C as cfg

__all__ = ["cfg", "CfgNode", "ConfigKeyError", "ConfigFileError", "ConfigValueError"]
