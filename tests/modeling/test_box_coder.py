"""BoxCoder against the legacy formulas (docs/CONVENTIONS.md#box-coder), written out per box."""

import math

import pytest
import torch

from maskrcnn_benchmark.modeling.box_coder import BoxCoder


def _encode_one(gt, ex, weights):
    wx, wy, ww, wh = weights
    ew, eh = ex[2] - ex[0] + 1, ex[3] - ex[1] + 1
    gw, gh = gt[2] - gt[0] + 1, gt[3] - gt[1] + 1
    ecx, ecy = ex[0] + 0.5 * ew, ex[1] + 0.5 * eh
    gcx, gcy = gt[0] + 0.5 * gw, gt[1] + 0.5 * gh
    return [wx * (gcx - ecx) / ew, wy * (gcy - ecy) / eh, ww * math.log(gw / ew), wh * math.log(gh / eh)]


def test_encode_matches_formula():
    weights = (10.0, 10.0, 5.0, 5.0)
    gt = torch.tensor([[10.0, 20.0, 50.0, 80.0], [0.0, 0.0, 5.0, 5.0]])
    ex = torch.tensor([[12.0, 18.0, 40.0, 90.0], [1.0, 2.0, 9.0, 3.0]])
    codes = BoxCoder(weights).encode(gt, ex)
    expected = torch.tensor([_encode_one(g.tolist(), e.tolist(), weights) for g, e in zip(gt, ex)])
    torch.testing.assert_close(codes, expected)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_decode_inverts_encode(weights):
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(100, 2, generator=g) * 500
    wh = torch.rand(100, 2, generator=g) * 200 + 1
    ex = torch.cat([xy, xy + wh], 1)
    xy2 = xy + torch.randn(100, 2, generator=g) * 10
    gt = torch.cat([xy2, xy2 + wh * (torch.rand(100, 2, generator=g) + 0.5)], 1)
    coder = BoxCoder(weights)
    torch.testing.assert_close(coder.decode(coder.encode(gt, ex), ex), gt, rtol=1e-4, atol=1e-3)


def test_decode_zero_codes_returns_the_box_and_uses_minus_one_on_x2():
    boxes = torch.tensor([[0.0, 0.0, 9.0, 19.0]])
    out = BoxCoder((1, 1, 1, 1)).decode(torch.zeros(1, 4), boxes)
    torch.testing.assert_close(out, boxes)


def test_decode_several_boxes_per_reference_and_clip():
    boxes = torch.tensor([[0.0, 0.0, 15.0, 15.0]])
    codes = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 100.0, 100.0]])
    out = BoxCoder((1, 1, 1, 1)).decode(codes, boxes)
    assert out.shape == (1, 8)
    torch.testing.assert_close(out[:, :4], boxes)
    # dw is clipped to log(1000/16): width 16 * 1000/16 = 1000, centred on 8.
    torch.testing.assert_close(out[0, 4:], torch.tensor([8 - 500.0, 8 - 500.0, 8 + 500.0 - 1, 8 + 500.0 - 1]))


def test_decode_empty_and_dtype():
    coder = BoxCoder((10, 10, 5, 5))
    assert coder.decode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    out = coder.decode(torch.zeros(2, 4, dtype=torch.float64), torch.ones(2, 4))
    assert out.dtype == torch.float64


def test_bad_weights():
    with pytest.raises(ValueError, match="4 numbers"):
        BoxCoder((1.0, 1.0))
