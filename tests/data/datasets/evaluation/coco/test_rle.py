"""coco/rle.py: RLE strings, areas and boxes equal pycocotools' (encode, area, toBbox) of the full masks."""

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from maskrcnn_benchmark.data.datasets.evaluation.coco.rle import encode_binary_masks, encode_pasted_masks
from maskrcnn_benchmark.modeling.roi_heads.mask_head.paste import paste_masks_exact


def _pycocotools(full: torch.Tensor):
    """(strings, areas, boxes) of pycocotools for [N, H, W] masks."""
    if full.shape[0] == 0:
        return [], np.zeros(0), np.zeros((0, 4))
    rles = mask_util.encode(np.asfortranarray(full.permute(1, 2, 0).numpy().astype(np.uint8)))
    return [r["counts"].decode() for r in rles], mask_util.area(rles), mask_util.toBbox(rles)


def _assert_same(encoded, full):
    strings, areas, boxes = _pycocotools(full)
    assert encoded.counts == strings
    np.testing.assert_array_equal(encoded.areas, areas)
    np.testing.assert_array_equal(encoded.boxes, boxes)
    assert (encoded.height, encoded.width) == tuple(full.shape[1:])
    for rle, mask in zip(encoded.rles(), full):  # the dicts decode back to the masks
        assert np.array_equal(mask_util.decode(rle), mask.numpy().astype(np.uint8))


def _binary_cases():
    g = torch.Generator().manual_seed(0)
    h, w = 23, 17
    masks = torch.rand(12, h, w, generator=g) > 0.5  # many short runs
    masks[0] = False
    masks[1] = True  # one run over the whole image: counts [0, H * W]
    masks[2] = False
    masks[2, -1, -1] = True  # ends with a 1: no trailing count of 0s
    masks[3] = False
    masks[3, 0, 0] = True  # starts with a 1: a leading count of 0
    masks[4] = False
    masks[4, :, 5:9] = True  # full-height columns: runs that continue into the next column
    masks[5] = False
    masks[5, h - 3 :, 2] = True
    masks[5, :4, 3] = True  # one run across a column boundary (toBbox then spans all rows)
    masks[6] = torch.arange(h * w).reshape(w, h).t() % 7 == 0  # long and negative count differences
    return masks


def test_binary_masks_equal_pycocotools():
    masks = _binary_cases()
    _assert_same(encode_binary_masks(masks), masks)
    big = torch.zeros(2, 700, 900, dtype=torch.bool)
    big[0, 100:650, 30:880] = True  # counts above 2**16: several characters each
    big[1, 0, 0] = True
    _assert_same(encode_binary_masks(big), big)
    for shape in [(0, 5, 5), (3, 1, 1), (2, 1, 9), (2, 9, 1)]:
        masks = torch.rand(*shape) > 0.5
        _assert_same(encode_binary_masks(masks), masks)


@pytest.mark.parametrize("seed, h, w", [(0, 120, 160), (1, 61, 33), (2, 7, 300), (3, 1, 1)])
def test_pasted_masks_equal_pycocotools_of_the_full_masks(seed, h, w):
    g = torch.Generator().manual_seed(seed)
    n = 40
    masks = torch.sigmoid(torch.randn(n, 28, 28, generator=g) * 3)
    masks[:4] = 1.0  # pasted solid: touching borders, covering the image
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 1.2, h * 1.2]) - 8
    wh = torch.rand(n, 2, generator=g) * torch.tensor([w * 1.0, h * 1.0]) + 0.5
    boxes = torch.cat([xy, xy + wh], 1)
    boxes[0] = torch.tensor([-4.0, -4.0, w + 4.0, h + 4.0])  # the whole image, ends with a 1
    boxes[1] = torch.tensor([3.0, -4.0, 9.0, h + 4.0])  # full-height columns
    boxes[2] = torch.tensor([-3.0, 2.0, w + 3.0, 4.0])  # full-width rows
    boxes[5, 3] = float("nan")  # nothing pasted: the RLE of an empty mask
    full = paste_masks_exact(masks, boxes, h, w)
    encoded = encode_pasted_masks(masks, boxes, h, w)
    _assert_same(encoded, full)
    if h * w > 1:
        assert len(set(encoded.counts)) > n // 2  # varied masks, not a degenerate case


def test_pasted_masks_with_nan_or_no_detection():
    masks = torch.full((2, 28, 28), float("nan"))
    boxes = torch.tensor([[2.0, 2.0, 20.0, 20.0], [0.0, 0.0, 5.0, 5.0]])
    encoded = encode_pasted_masks(masks, boxes, 30, 30)
    assert encoded.counts == [_pycocotools(torch.zeros(1, 30, 30, dtype=torch.bool))[0][0]] * 2
    empty = encode_pasted_masks(masks[:0], boxes[:0], 30, 30)
    assert empty.counts == [] and empty.areas.shape == (0,) and empty.boxes.shape == (0, 4)
