"""Transforms: resize sizes (docs/CONVENTIONS.md#input-transforms), flips moving targets, normalization, pipelines."""

import random

import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.data.transforms import (
    Compose,
    Normalize,
    RandomHorizontalFlip,
    Resize,
    ToTensor,
    build_transforms,
)
from maskrcnn_benchmark.structures.bounding_box import BoxList


@pytest.mark.parametrize(
    "image_size,min_size,max_size,expected",
    [
        ((640, 480), 800, 1333, (800, 1066)),  # (h, w): long side 800 * 640 / 480 truncated
        ((480, 640), 800, 1333, (1066, 800)),
        ((2000, 500), 800, 1333, (333, 1332)),  # capped: short = round(1333 * 500 / 2000) = 333, long int(333 * 4)
        ((800, 600), 600, 1000, (600, 800)),  # short side already the size: unchanged
        ((100, 100), 50, 1000, (50, 50)),
    ],
)
def test_resize_get_size(image_size, min_size, max_size, expected):
    assert Resize(min_size, max_size).get_size(image_size) == expected


def test_resize_picks_from_the_tuple():
    random.seed(0)
    sizes = {Resize((100, 200), 10000).get_size((400, 300))[0] for _ in range(50)}
    assert sizes == {100, 200}


def _target(size=(64, 48)):
    t = BoxList(torch.tensor([[10.0, 5.0, 30.0, 20.0]]), size)
    t.add_field("labels", torch.tensor([1]))
    return t


def test_resize_scales_the_target():
    image = Image.new("RGB", (64, 48))
    out, target = Resize(96, 1000)(image, _target())
    assert out.size == (128, 96) and target.size == (128, 96)
    torch.testing.assert_close(target.bbox, torch.tensor([[20.0, 10.0, 60.0, 40.0]]))


def test_horizontal_flip_moves_image_and_boxes():
    image = Image.new("RGB", (64, 48))
    image.putpixel((0, 0), (255, 0, 0))
    out, target = RandomHorizontalFlip(1.0)(image, _target())
    assert out.getpixel((63, 0)) == (255, 0, 0)
    torch.testing.assert_close(target.bbox, torch.tensor([[64 - 30 - 1.0, 5.0, 64 - 10 - 1.0, 20.0]]))
    same, _ = RandomHorizontalFlip(0.0)(image, _target())
    assert same.getpixel((0, 0)) == (255, 0, 0)


def test_to_tensor_and_bgr255_normalize():
    image = Image.new("RGB", (4, 2), (255, 128, 0))
    tensor, _ = ToTensor()(image, None)
    assert tensor.shape == (3, 2, 4) and tensor.max() <= 1
    out, _ = Normalize([100.0, 110.0, 120.0], [1.0, 1.0, 2.0], to_bgr255=True)(tensor, None)
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([0 - 100.0, 128 - 110.0, (255 - 120.0) / 2]))
    rgb, _ = Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], to_bgr255=False)(tensor, None)
    torch.testing.assert_close(rgb[0, 0, 0], torch.tensor(1.0))


def test_build_transforms_train_and_test():
    c = cfg.clone()
    c.INPUT.MIN_SIZE_TRAIN = (32,)
    c.INPUT.MAX_SIZE_TRAIN = 100
    c.INPUT.MIN_SIZE_TEST = 24
    c.INPUT.MAX_SIZE_TEST = 100
    image = Image.new("RGB", (64, 48), (10, 20, 30))
    train_image, train_target = build_transforms(c, True)(image, _target())
    assert train_image.shape == (3, 32, 42) and train_target.size == (42, 32)
    test_image, none = build_transforms(c, False)(image, None)
    assert test_image.shape == (3, 24, 32) and none is None
    assert isinstance(build_transforms(c, True), Compose)
