"""Layer factories: GroupNorm settings are explicit, never read from the global config."""

import pytest

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.config.defaults import _C
from maskrcnn_benchmark.modeling import make_layers
from maskrcnn_benchmark.modeling.make_layers import gn_factory, group_norm


def test_group_norm_defaults_equal_the_config_defaults():
    defaults = _C.clone()  # the default tree as shipped (tests do not merge into the global one)
    assert make_layers.DEFAULT_GN_DIM_PER_GP == defaults.MODEL.GROUP_NORM.DIM_PER_GP
    assert make_layers.DEFAULT_GN_NUM_GROUPS == defaults.MODEL.GROUP_NORM.NUM_GROUPS
    assert make_layers.DEFAULT_GN_EPSILON == defaults.MODEL.GROUP_NORM.EPSILON


def test_group_norm_without_settings_ignores_the_global_config():
    frozen = cfg.is_frozen()
    cfg.defrost()
    saved = cfg.MODEL.GROUP_NORM.NUM_GROUPS
    try:
        cfg.MODEL.GROUP_NORM.NUM_GROUPS = 4
        assert group_norm(64).num_groups == 32
        assert gn_factory()(64).num_groups == 32
    finally:
        cfg.MODEL.GROUP_NORM.NUM_GROUPS = saved
        if frozen:
            cfg.freeze()


def test_group_norm_settings_and_divisor():
    gn = group_norm(64, divisor=2, num_groups=16, dim_per_gp=-1, eps=1e-3)
    assert gn.num_groups == 8 and gn.eps == 1e-3
    assert gn_factory(_C.clone().MODEL.GROUP_NORM)(96).num_groups == 32
    with pytest.raises(ValueError, match="exactly one"):
        group_norm(64, num_groups=8, dim_per_gp=8)
