"""Pooler: FPN level assignment (docs/CONVENTIONS.md#pooler-level-assignment) and routing of boxes to their level."""

import math

import torch
import torchvision

from maskrcnn_benchmark.modeling.poolers import LevelMapper, Pooler
from maskrcnn_benchmark.structures.bounding_box import BoxList


def test_level_mapper_formula():
    sizes = [10, 111, 112, 223, 224, 447, 448, 1000]
    boxes = BoxList(torch.tensor([[0.0, 0.0, s - 1.0, s - 1.0] for s in sizes]), (2000, 2000))
    levels = LevelMapper(2, 5)([boxes])
    expected = [min(max(math.floor(4 + math.log2(s / 224 + 1e-6)), 2), 5) - 2 for s in sizes]
    assert levels.tolist() == expected
    assert levels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_multi_level_pooling_routes_each_box_to_its_level():
    g = torch.Generator().manual_seed(0)
    scales = (0.25, 0.125, 0.0625, 0.03125)
    features = [torch.randn(2, 4, int(256 * s), int(256 * s), generator=g) for s in scales]
    pooler = Pooler((7, 7), scales, sampling_ratio=2)
    boxes = [
        BoxList(torch.tensor([[0.0, 0.0, 20.0, 30.0], [10.0, 10.0, 250.0, 200.0]]), (256, 256)),
        BoxList(torch.tensor([[5.0, 5.0, 120.0, 90.0]]), (256, 256)),
    ]
    out = pooler(features, boxes)
    assert out.shape == (3, 4, 7, 7)
    levels = LevelMapper(2, 5)(boxes)
    rois = pooler.convert_to_roi_format(boxes)
    assert rois[:, 0].tolist() == [0, 0, 1]
    for i in range(3):
        lvl = int(levels[i])
        ref = torchvision.ops.roi_align(features[lvl], rois[i : i + 1], (7, 7), scales[lvl], 2, aligned=False)
        torch.testing.assert_close(out[i : i + 1], ref, rtol=1e-5, atol=1e-5)


def test_single_level_and_empty_boxes():
    pooler = Pooler(14, (1.0 / 16,), 0)
    feature = torch.randn(1, 3, 8, 8)
    empty = pooler([feature], [BoxList(torch.zeros(0, 4), (128, 128))])
    assert empty.shape == (0, 3, 14, 14)
    multi = Pooler((7, 7), (0.25, 0.125), 2)
    out = multi([torch.randn(1, 3, 16, 16), torch.randn(1, 3, 8, 8)], [BoxList(torch.zeros(0, 4), (64, 64))])
    assert out.shape == (0, 3, 7, 7)
