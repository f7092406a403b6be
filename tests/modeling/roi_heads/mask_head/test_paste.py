"""mask_head/paste.py: the batched paste gives exactly the one-box-at-a-time masks (paste_mask_in_image),
and the Masker on the CPU uses it (docs/CONVENTIONS.md#mask-pasting)."""

import pytest
import torch

from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker, paste_mask_in_image
from maskrcnn_benchmark.modeling.roi_heads.mask_head.paste import paste_layout, paste_masks_exact, pasted_crops
from maskrcnn_benchmark.structures.bounding_box import BoxList


def _case(seed: int, n: int, h: int, w: int):
    """Smooth and noisy masks; boxes inside, across the border, outside, sub-pixel, inverted, huge, and
    non-finite; resized sizes on both sides of F.interpolate's kernel switch (out_h + out_w = 128)."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.sigmoid(torch.randn(n, 28, 28, generator=g) * 4)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 1.3, h * 1.3]) - torch.tensor([w * 0.15, h * 0.15])
    wh = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.8, h * 0.8]) + 0.1
    boxes = torch.cat([xy, xy + wh], 1)
    boxes[0] = torch.tensor([-5.0, -7.0, w + 3.0, h + 9.0])  # covers the image
    boxes[1] = torch.tensor([10.0, 10.0, 69.0, 67.0])  # resized to 63 x 65 (h + w = 128) ...
    boxes[2] = torch.tensor([10.0, 10.0, 70.0, 67.0])  # ... 63 x 66 (129): the two kernels
    boxes[3] = torch.tensor([20.0, 20.0, 10.0, 30.0])  # x2 < x1: nothing
    boxes[4] = torch.tensor([w + 10.0, 0.0, w + 40.0, 20.0])  # outside the image
    boxes[5, 2] = float("nan")
    boxes[6, 0] = float("-inf")
    boxes[7] = boxes[8]  # two detections of one size share a resize call
    masks[9, 3:9, 4:7] = float("nan")  # NaN probabilities paste as 0
    return masks, boxes


@pytest.mark.parametrize("thresh", [0.5, 0.0, -1])
@pytest.mark.parametrize("seed, n, h, w", [(0, 40, 96, 128), (1, 30, 37, 200), (2, 12, 1, 1)])
def test_batched_paste_equals_one_box_paste_exactly(seed, n, h, w, thresh):
    masks, boxes = _case(seed, n, h, w)
    batched = paste_masks_exact(masks, boxes, h, w, thresh)
    one_by_one = torch.stack([paste_mask_in_image(mk, bx, h, w, thresh) for mk, bx in zip(masks, boxes)])
    assert batched.dtype == one_by_one.dtype and batched.shape == (n, h, w)
    assert torch.equal(batched, one_by_one)
    if thresh == 0.5 and h > 1:
        assert batched.any() and not batched.all()  # a real test: some pixels in, some out
        sums = paste_layout(boxes, 28, h, w).sizes.sum(1)
        assert (sums <= 128).any() and (sums > 128).any()


def test_crops_hold_the_pasted_masks_inside_the_image():
    masks, boxes = _case(3, 25, 80, 90)
    regions, crops = pasted_crops(masks, boxes, 80, 90)
    full = paste_masks_exact(masks, boxes, 80, 90)
    for k, ((x0, y0, x1, y1), crop) in enumerate(zip(regions.tolist(), crops)):
        if x1 <= x0 or y1 <= y0:
            assert crop.numel() == 0 and not full[k].any()
            continue
        assert crop.shape == (y1 - y0, x1 - x0)
        assert torch.equal(full[k, y0:y1, x0:x1], crop)
        rest = full[k].clone()
        rest[y0:y1, x0:x1] = False
        assert not rest.any()


def test_layout_groups_detections_of_one_size():
    masks, boxes = _case(4, 30, 100, 100)
    layout = paste_layout(boxes, 28, 100, 100)
    sizes = [tuple(s) for s in layout.sizes.tolist()]
    assert layout.groups[0][0] == 0 and layout.groups[-1][1] == len(sizes)
    for (a, b), (c, _) in zip(layout.groups, layout.groups[1:] + [(len(sizes), None)]):
        assert b == c and len(set(sizes[a:b])) == 1  # contiguous, one size each
    assert len({sizes[a] for a, _ in layout.groups}) == len(layout.groups)
    assert {3, 4, 5, 6}.isdisjoint(layout.index.tolist())  # nothing pasted: not in the layout
    assert paste_layout(boxes[:0], 28, 10, 10).groups == []


def test_masker_on_the_cpu_equals_one_box_paste():
    masks, boxes = _case(5, 20, 64, 48)
    out = Masker(threshold=0.5, padding=1)([masks[:, None]], BoxList(boxes, (48, 64)))[0]
    expected = torch.stack([paste_mask_in_image(mk, bx, 64, 48) for mk, bx in zip(masks, boxes)])
    assert out.shape == (20, 1, 64, 48) and torch.equal(out[:, 0], expected)
