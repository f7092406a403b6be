"""Cell anchors equal the values measured on the original library (docs/CONVENTIONS.md#anchors)."""

import pytest
import torch

from maskrcnn_benchmark.modeling.rpn.anchor_generator import generate_anchors

FPN_CELL_ANCHORS = {
    (4, 32): [[-22, -10, 25, 13], [-14, -14, 17, 17], [-10, -22, 13, 25]],
    (8, 64): [[-40, -20, 47, 27], [-28, -28, 35, 35], [-20, -44, 27, 51]],
    (16, 128): [[-84, -40, 99, 55], [-56, -56, 71, 71], [-36, -80, 51, 95]],
    (32, 256): [[-164, -72, 195, 103], [-112, -112, 143, 143], [-76, -168, 107, 199]],
    (64, 512): [[-332, -152, 395, 215], [-224, -224, 287, 287], [-148, -328, 211, 391]],
}


@pytest.mark.parametrize("stride,size", list(FPN_CELL_ANCHORS))
def test_fpn_cell_anchors(stride, size):
    anchors = generate_anchors(stride, (size,), (0.5, 1.0, 2.0))
    assert anchors.dtype == torch.float32
    assert anchors.tolist() == FPN_CELL_ANCHORS[(stride, size)]


def test_c4_anchors_order_is_ratio_major():
    anchors = generate_anchors(16, (32, 64, 128, 256, 512), (0.5, 1.0, 2.0))
    assert anchors.shape == (15, 4)
    assert anchors[0].tolist() == [-15, -4, 30, 19]
    # Ratio-major: the first five share ratio 0.5 (width about twice the height).
    w = anchors[:, 2] - anchors[:, 0] + 1
    h = anchors[:, 3] - anchors[:, 1] + 1
    assert (w[:5] > h[:5]).all() and torch.equal(w[5:10], h[5:10]) and (w[10:] < h[10:]).all()
    # All anchors of one location share the cell centre (7.5, 7.5).
    torch.testing.assert_close((anchors[:, 0] + anchors[:, 2]) / 2, torch.full((15,), 7.5))
