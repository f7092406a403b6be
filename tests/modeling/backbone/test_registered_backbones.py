"""Every registered backbone builds from the default config with only CONV_BODY changed."""

import pytest
import torch

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.modeling.backbone import build_backbone
from maskrcnn_benchmark.modeling.registry import BACKBONES


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_builds_and_runs_from_the_default_config(name):
    c = cfg.clone()
    c.MODEL.BACKBONE.CONV_BODY = name
    with torch.device("meta"):  # shapes only: no weights are allocated
        backbone = build_backbone(c)
        features = backbone(torch.zeros(1, 3, 64, 96))
    assert all(f.shape[1] == backbone.out_channels for f in features)
    # (stride of the first map, number of maps): P2-P6, P3-P7 (RetinaNet), C4 or C5 alone.
    stride, levels = (4, 5) if name.endswith("-FPN") else (8, 5) if name.endswith("-RETINANET") else (16, 1)
    stride = 32 if name.endswith("-C5") else stride
    assert len(features) == levels
    assert tuple(features[0].shape[-2:]) == (64 // stride, 96 // stride)
