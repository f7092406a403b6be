"""Keypoints / PersonKeypoints and the keypoint-head heatmap targets (docs/CONVENTIONS.md#keypoints)."""

import pytest
import torch

from maskrcnn_benchmark.structures.bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM, BoxList
from maskrcnn_benchmark.structures.keypoint import (
    Keypoints,
    PersonKeypoints,
    _create_flip_indices,
    keypoints_to_heat_map,
    kp_connections,
)


def _person(n=2, seed=0, size=(100, 80)):
    g = torch.Generator().manual_seed(seed)
    kp = torch.rand(n, 17, 3, generator=g) * torch.tensor([size[0] - 1, size[1] - 1, 1.0])
    kp[..., 2] = (torch.arange(17) % 3 != 0).float() * 2  # every third point invisible
    kp[kp[..., 2] == 0] = 0
    return PersonKeypoints(kp, size)


# ------------------------------------------------------------------------------------- class data
def test_person_keypoint_names_flip_inds_and_connections():
    assert len(PersonKeypoints.NAMES) == 17 and PersonKeypoints.NAMES[0] == "nose"
    assert PersonKeypoints.FLIP_INDS.tolist() == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    assert _create_flip_indices(["a", "l", "r"], {"l": "r"}).tolist() == [0, 2, 1]
    assert PersonKeypoints.CONNECTIONS == kp_connections(PersonKeypoints.NAMES)
    assert len(PersonKeypoints.CONNECTIONS) == 15
    assert PersonKeypoints.CONNECTIONS[0] == [1, 2] and PersonKeypoints.CONNECTIONS[-1] == [12, 11]


# ------------------------------------------------------------------------------------- construction
def test_init_reshapes_to_n_k_3_float32():
    kp = PersonKeypoints([[float(i) for i in range(51)]], (10, 20))
    assert kp.keypoints.shape == (1, 17, 3) and kp.keypoints.dtype == torch.float32
    assert kp.keypoints[0, 1].tolist() == [3.0, 4.0, 5.0]
    assert kp.size == (10, 20) and kp.mode is None and kp.extra_fields == {}
    assert PersonKeypoints(torch.zeros(2, 17, 3, dtype=torch.float64), (1, 1)).keypoints.dtype == torch.float32
    assert PersonKeypoints(torch.zeros(0, 17, 3), (1, 1)).keypoints.shape == (0, 17, 3)
    with pytest.raises(ValueError, match=r"\(2, 50\)"):
        PersonKeypoints(torch.zeros(2, 50), (10, 10))


def test_fields_to_getitem_and_repr():
    kp = _person(3)
    logits = torch.arange(3.0)[:, None].expand(3, 17)
    kp.add_field("logits", logits)
    assert kp.get_field("logits") is logits and kp.has_field("logits") and kp.fields() == ["logits"]
    sel = kp[torch.tensor([True, False, True])]
    assert isinstance(sel, PersonKeypoints) and sel.keypoints.shape == (2, 17, 3)
    assert sel.get_field("logits")[:, 0].tolist() == [0.0, 2.0]
    assert kp[torch.tensor([0, 1, 1], dtype=torch.uint8)].get_field("logits")[:, 0].tolist() == [1.0, 2.0]
    assert torch.equal(kp[[2, 0]].keypoints, kp.keypoints[[2, 0]])
    moved = kp.to("cpu")
    assert torch.equal(moved.keypoints, kp.keypoints) and torch.equal(moved.get_field("logits"), logits)
    assert repr(kp) == "PersonKeypoints(num_instances=3, image_width=100, image_height=80)"


# ------------------------------------------------------------------------------------- geometry
def test_transpose_flips_x_reorders_and_zeroes_invisible():
    kp = _person(2)
    kp.add_field("logits", torch.ones(2, 17))
    f = kp.transpose(FLIP_LEFT_RIGHT)
    src = kp.keypoints
    for j, fj in enumerate(PersonKeypoints.FLIP_INDS.tolist()):
        visible = src[:, fj, 2] > 0
        expected_x = torch.where(visible, 100 - src[:, fj, 0] - 1, torch.zeros(2))
        torch.testing.assert_close(f.keypoints[:, j, 0], expected_x)
        torch.testing.assert_close(f.keypoints[:, j, 1], torch.where(visible, src[:, fj, 1], torch.zeros(2)))
        torch.testing.assert_close(f.keypoints[:, j, 2], src[:, fj, 2])
    assert f.get_field("logits") is kp.get_field("logits") and f.size == kp.size
    torch.testing.assert_close(f.transpose(FLIP_LEFT_RIGHT).keypoints, src)
    with pytest.raises(NotImplementedError):
        kp.transpose(FLIP_TOP_BOTTOM)
    assert PersonKeypoints(torch.zeros(0, 17, 3), (5, 5)).transpose(FLIP_LEFT_RIGHT).keypoints.shape == (0, 17, 3)


def test_transpose_specific_point():
    kp = torch.zeros(1, 17, 3)
    kp[0, 1] = torch.tensor([10.0, 20.0, 2.0])  # left_eye
    f = PersonKeypoints(kp, (100, 50)).transpose(FLIP_LEFT_RIGHT)
    assert f.keypoints[0, 2].tolist() == [89.0, 20.0, 2.0]  # now right_eye, x = W - x - 1
    assert f.keypoints[0, 1].tolist() == [0.0, 0.0, 0.0]


def test_resize_scales_x_and_y_and_crop_is_not_implemented():
    kp = _person(2)
    kp.add_field("logits", torch.ones(2, 17))
    r = kp.resize((50, 160))
    torch.testing.assert_close(r.keypoints[..., 0], kp.keypoints[..., 0] * 0.5)
    torch.testing.assert_close(r.keypoints[..., 1], kp.keypoints[..., 1] * 2)
    torch.testing.assert_close(r.keypoints[..., 2], kp.keypoints[..., 2])
    assert r.size == (50, 160) and r.get_field("logits") is kp.get_field("logits")
    with pytest.raises(NotImplementedError):
        kp.crop([0, 0, 10, 10])


def test_base_class_without_flip_inds():
    with pytest.raises(NotImplementedError, match="FLIP_INDS"):
        Keypoints(torch.zeros(1, 2, 3), (5, 5)).transpose(FLIP_LEFT_RIGHT)


def test_cat():
    a, b = _person(2, seed=1), _person(1, seed=2)
    a.add_field("logits", torch.zeros(2, 17))
    b.add_field("logits", torch.ones(1, 17))
    c = PersonKeypoints.cat([a, b])
    assert c.keypoints.shape == (3, 17, 3) and c.get_field("logits")[:, 0].tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="sizes differ"):
        PersonKeypoints.cat([a, _person(1, size=(10, 10))])


def test_in_a_boxlist():
    b = BoxList(torch.tensor([[0.0, 0.0, 50.0, 40.0], [10.0, 10.0, 60.0, 70.0]]), (100, 80))
    b.add_field("keypoints", _person(2))
    f = b.transpose(FLIP_LEFT_RIGHT)
    torch.testing.assert_close(f.get_field("keypoints").keypoints, _person(2).transpose(FLIP_LEFT_RIGHT).keypoints)
    assert b.resize((200, 160)).get_field("keypoints").size == (200, 160)
    assert b[torch.tensor([1])].get_field("keypoints").keypoints.shape == (1, 17, 3)
    with pytest.raises(NotImplementedError):
        b.transpose(FLIP_TOP_BOTTOM)


# ------------------------------------------------------------------------------------- heatmaps
def test_keypoints_to_heat_map_hand_computed():
    rois = torch.tensor([[10.0, 20.0, 66.0, 76.0], [0.0, 0.0, 28.0, 28.0]])  # scales 1 and 2
    kp = torch.zeros(2, 6, 3)
    kp[0, :, 2] = 1
    kp[1, :, 2] = 2
    kp[0, 0, :2] = torch.tensor([10.0, 20.0])  # top-left corner -> (0, 0)
    kp[0, 1, :2] = torch.tensor([65.9, 75.5])  # floor(55.9), floor(55.5) -> (55, 55)
    kp[0, 2, :2] = torch.tensor([66.0, 76.0])  # exactly on the right/bottom edge -> (55, 55)
    kp[0, 3, :2] = torch.tensor([66.5, 30.0])  # beyond the right edge -> invalid
    kp[0, 4, :2] = torch.tensor([9.5, 30.0])  # left of the box -> invalid
    kp[0, 5] = torch.tensor([30.0, 30.0, 0.0])  # inside but not visible -> invalid
    kp[1, 0, :2] = torch.tensor([13.7, 5.2])  # x = floor(27.4) = 27, y = floor(10.4) = 10
    kp[1, 1, :2] = torch.tensor([28.0, 3.0])  # right edge -> x 55, y = 6
    kp[1, 2, :2] = torch.tensor([0.0, 27.99])  # y = floor(55.98) = 55
    kp[1, 3, :2] = torch.tensor([14.0, 28.0])  # bottom edge: y 55, x 28
    kp[1, 4, :2] = torch.tensor([-0.01, 3.0])  # invalid
    kp[1, 5, :2] = torch.tensor([3.0, 28.01])  # invalid
    heatmaps, valid = keypoints_to_heat_map(kp, rois, 56)
    assert heatmaps.dtype == torch.int64 and valid.dtype == torch.int64 and heatmaps.shape == (2, 6)
    assert valid.tolist() == [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0]]
    s = 56
    assert heatmaps.tolist() == [
        [0, 55 * s + 55, 55 * s + 55, 0, 0, 0],
        [10 * s + 27, 6 * s + 55, 55 * s + 0, 55 * s + 28, 0, 0],
    ]
    h2, v2 = keypoints_to_heat_map(PersonKeypoints(kp[:, :3].repeat(1, 6, 1)[:, :17], (100, 100)), rois, 56)
    assert h2.shape == (2, 17) and h2[:, :3].tolist() == heatmaps[:, :3].tolist()


def test_keypoints_to_heat_map_empty_and_degenerate_rois():
    h, v = keypoints_to_heat_map(torch.zeros(0, 17, 3), torch.zeros(0, 4), 56)
    assert h.shape == (0, 17) and v.shape == (0, 17) and h.dtype == torch.int64
    kp = torch.tensor([[[5.0, 5.0, 1.0]]])
    h, v = keypoints_to_heat_map(kp, torch.tensor([[5.0, 0.0, 5.0, 10.0]]), 56)  # zero width
    assert v.tolist() == [[0]] and h.tolist() == [[0]]
