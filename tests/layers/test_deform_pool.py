"""Deformable RoI pooling (the original's DeformRoIPooling and its packs) against a loop restatement of
the original kernel, one bin and one sample point at a time, and gradcheck."""

import itertools
import math

import pytest
import torch


def _c_round(v: float) -> float:
    return math.copysign(math.floor(abs(v) + 0.5), v)


def _reference_deform_pool(data, rois, offset, scale, size, channels, no_trans, group, part, samples, std):
    """The original kernel's loops, one bin and one sample point at a time."""
    out = torch.zeros(len(rois), channels, size, size, dtype=torch.float64)
    height, width = data.shape[2:]
    per_class = channels if no_trans else channels // (offset.shape[1] // 2)
    for n, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        sw, sh = _c_round(x1) * scale - 0.5, _c_round(y1) * scale - 0.5
        rw = max((_c_round(x2) + 1) * scale - 0.5 - sw, 0.1)
        rh = max((_c_round(y2) + 1) * scale - 0.5 - sh, 0.1)
        bw, bh = rw / size, rh / size
        for c, ph, pw in itertools.product(range(channels), range(size), range(size)):
            k, parth, partw = c // per_class, math.floor(ph / size * part), math.floor(pw / size * part)
            tx = 0.0 if no_trans else offset[n, 2 * k, parth, partw].item() * std
            ty = 0.0 if no_trans else offset[n, 2 * k + 1, parth, partw].item() * std
            gw, gh = min(math.floor(pw * group / size), group - 1), min(math.floor(ph * group / size), group - 1)
            plane = data[int(b), (c * group + gh) * group + gw]
            total, count = 0.0, 0
            for ih, iw in itertools.product(range(samples), range(samples)):
                w = pw * bw + sw + tx * rw + iw * bw / samples
                h = ph * bh + sh + ty * rh + ih * bh / samples
                if w < -0.5 or w > width - 0.5 or h < -0.5 or h > height - 0.5:
                    continue
                w, h = min(max(w, 0.0), width - 1.0), min(max(h, 0.0), height - 1.0)
                xa, xb, ya, yb = math.floor(w), math.ceil(w), math.floor(h), math.ceil(h)
                dx, dy = w - xa, h - ya
                total += (1 - dx) * (1 - dy) * plane[ya, xa] + (1 - dx) * dy * plane[yb, xa]
                total += dx * (1 - dy) * plane[ya, xb] + dx * dy * plane[yb, xb]
                count += 1
            out[n, c, ph, pw] = total / count if count else 0.0
    return out


def test_deform_roi_pooling_follows_the_originals_kernel():
    from maskrcnn_benchmark.layers import deform_roi_pooling

    data = torch.randn(2, 16, 9, 11, dtype=torch.float64)
    # half-pixel corners (rounded away from zero), a RoI past the border, one entirely outside
    rois = torch.tensor(
        [[0, 2.5, 1.0, 13.0, 15.5], [1, -3.0, 4.0, 30.0, 9.0], [0, 40.0, 40.0, 60.0, 50.0]], dtype=torch.float64
    )
    offset = torch.randn(3, 4, 2, 2, dtype=torch.float64)  # 2 offset classes, part_size 2
    for no_trans in (True, False):
        args = (0.5, 3, 4, no_trans, 2, 2, 2, 0.3)
        expected = _reference_deform_pool(data, rois, offset, *args)
        torch.testing.assert_close(deform_roi_pooling(data, rois, offset, *args), expected)
    assert deform_roi_pooling(data, rois, offset, *args)[2].abs().sum() == 0

    # gradients of the data and the offsets (a RoI inside the map: no clamped sample)
    small_data = torch.randn(1, 4, 6, 7, dtype=torch.float64, requires_grad=True)
    inner = torch.tensor([[0, 3.0, 2.0, 9.0, 8.0]], dtype=torch.float64)
    small = (0.2 * torch.randn(1, 2, 2, 2, dtype=torch.float64)).requires_grad_(True)
    small_args = (0.5, 2, 1, False, 2, 2, 2, 0.3)
    assert torch.autograd.gradcheck(lambda d, o: deform_roi_pooling(d, inner, o, *small_args), (small_data, small))
    with pytest.raises(ValueError, match="out_channels \\* group_size"):
        deform_roi_pooling(data, rois, offset, 0.5, 3, 5, True)


def test_deform_roi_pooling_packs_start_as_plain_pooling():
    from maskrcnn_benchmark.layers import DeformRoIPooling, DeformRoIPoolingPack, ModulatedDeformRoIPoolingPack

    data = torch.randn(1, 4, 8, 8)
    rois = torch.tensor([[0, 1.0, 1.0, 12.0, 10.0], [0, 4.0, 0.0, 15.0, 15.0]])
    plain = DeformRoIPooling(0.5, 3, 4, True)(data, rois, None)
    pack = DeformRoIPoolingPack(0.5, 3, 4, False, trans_std=0.1, deform_fc_channels=8)
    assert [type(m).__name__ for m in pack.offset_fc] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    torch.testing.assert_close(pack(data, rois), plain)  # zero-initialised offsets
    modulated = ModulatedDeformRoIPoolingPack(0.5, 3, 4, False, trans_std=0.1, deform_fc_channels=8)
    torch.testing.assert_close(modulated(data, rois), 0.5 * plain)  # sigmoid(0) mask
    with torch.no_grad():
        pack.offset_fc[4].bias.fill_(1.0)
    assert not torch.allclose(pack(data, rois), plain)
    with pytest.raises(ValueError, match="out_channels=4"):
        pack(torch.randn(1, 5, 8, 8), rois)
