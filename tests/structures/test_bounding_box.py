"""BoxList, method by method, with the original's "+1" pixel conventions."""

import pytest
import torch

from maskrcnn_benchmark.structures.bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM, BoxList


class _RecordingField(object):
    """A non-tensor field that records the geometric calls BoxList forwards to it."""

    def __init__(self, calls=None):
        self.calls = [] if calls is None else calls

    def _record(self, *call):
        self.calls.append(call)
        return _RecordingField(self.calls)

    def resize(self, size, *args, **kwargs):
        return self._record("resize", tuple(size), args, kwargs)

    def transpose(self, method):
        return self._record("transpose", method)

    def crop(self, box):
        return self._record("crop", tuple(float(b) for b in box))

    def to(self, device):
        return self._record("to", str(device))

    def __getitem__(self, item):
        return self._record("getitem")


def _boxes():
    return BoxList(torch.tensor([[0.0, 0.0, 9.0, 9.0], [5.0, 10.0, 24.0, 19.0]]), (100, 50))


# ------------------------------------------------------------------------------------- construction
def test_init_stores_float32_and_keeps_size_and_mode():
    b = BoxList([[1, 2, 3, 4]], (10, 20))
    assert b.bbox.dtype == torch.float32 and b.bbox.shape == (1, 4)
    assert b.size == (10, 20) and b.mode == "xyxy" and b.extra_fields == {}
    assert BoxList(torch.tensor([[1, 2, 3, 4]]), (10, 20)).bbox.dtype == torch.float32
    assert BoxList(torch.zeros(2, 4, dtype=torch.int64), (10, 20)).bbox.dtype == torch.float32


def test_init_keeps_other_floating_dtypes_and_shares_float_tensors():
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        assert BoxList(torch.zeros(3, 4, dtype=dtype), (5, 5)).bbox.dtype == dtype
    t = torch.zeros(3, 4)
    assert BoxList(t, (5, 5)).bbox is t


def test_init_keeps_device():
    b = BoxList(torch.zeros(2, 4, device="cpu"), (5, 5))
    assert b.bbox.device.type == "cpu"
    assert b.to("cpu").bbox.device.type == "cpu"


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 4, 1), (0,)])
def test_init_rejects_bad_shapes_naming_the_shape(shape):
    with pytest.raises(ValueError, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        BoxList(torch.zeros(shape), (10, 10))


def test_init_rejects_unknown_mode():
    with pytest.raises(ValueError, match="xyxy"):
        BoxList(torch.zeros(1, 4), (10, 10), mode="cxcywh")


# ------------------------------------------------------------------------------------- fields
def test_fields():
    b = _boxes()
    labels = torch.tensor([3, 7])
    b.add_field("labels", labels)
    assert b.has_field("labels") and not b.has_field("scores")
    assert b.get_field("labels") is labels
    assert b.fields() == ["labels"]
    with pytest.raises(KeyError):
        b.get_field("scores")
    other = BoxList(torch.zeros(2, 4), (100, 50))
    other._copy_extra_fields(b)
    assert other.get_field("labels") is labels


def test_copy_with_fields():
    b = _boxes()
    b.add_field("labels", torch.tensor([1, 2]))
    b.add_field("scores", torch.tensor([0.5, 0.6]))
    c = b.copy_with_fields(["labels"])
    assert c.fields() == ["labels"] and c.bbox is b.bbox and c.mode == b.mode and c.size == b.size
    assert b.copy_with_fields("scores").fields() == ["scores"]
    with pytest.raises(KeyError, match="masks"):
        b.copy_with_fields(["labels", "masks"])
    assert b.copy_with_fields(["labels", "masks"], skip_missing=True).fields() == ["labels"]


# ------------------------------------------------------------------------------------- modes
def test_convert_uses_plus_one_widths_and_round_trips():
    b = _boxes()
    b.add_field("labels", torch.tensor([1, 2]))
    xywh = b.convert("xywh")
    torch.testing.assert_close(xywh.bbox, torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 10.0, 20.0, 10.0]]))
    assert xywh.mode == "xywh" and xywh.get_field("labels") is b.get_field("labels")
    torch.testing.assert_close(xywh.convert("xyxy").bbox, b.bbox)
    assert b.convert("xyxy") is b
    with pytest.raises(ValueError):
        b.convert("polar")


def test_split_into_xyxy_clamps_small_widths():
    b = BoxList(torch.tensor([[2.0, 3.0, 0.0, 0.5]]), (10, 10), mode="xywh")  # w=0 -> x2 == x1
    x1, y1, x2, y2 = b._split_into_xyxy()
    assert (x1.item(), y1.item(), x2.item(), y2.item()) == (2.0, 3.0, 2.0, 3.0)


def test_area_both_modes_and_degenerate_boxes():
    b = BoxList(torch.tensor([[0.0, 0.0, 9.0, 4.0], [3.0, 3.0, 3.0, 3.0], [5.0, 5.0, 4.0, 9.0]]), (20, 20))
    torch.testing.assert_close(b.area(), torch.tensor([50.0, 1.0, 0.0]))
    torch.testing.assert_close(b[:2].convert("xywh").area(), torch.tensor([50.0, 1.0]))


# ------------------------------------------------------------------------------------- resize
def test_resize_equal_ratios_scales_all_coordinates_in_current_mode():
    b = _boxes().convert("xywh")
    r = b.resize((200, 100))
    assert r.mode == "xywh" and r.size == (200, 100)
    torch.testing.assert_close(r.bbox, b.bbox * 2)


def test_resize_unequal_ratios_scales_x_and_y_separately():
    b = _boxes()
    r = b.resize((50, 100))  # x * 0.5, y * 2
    torch.testing.assert_close(r.bbox, torch.tensor([[0.0, 0.0, 4.5, 18.0], [2.5, 20.0, 12.0, 38.0]]))
    rx = b.convert("xywh").resize((50, 100))
    assert rx.mode == "xywh"
    torch.testing.assert_close(rx.convert("xyxy").bbox, r.bbox)


def test_resize_forwards_to_non_tensor_fields_and_keeps_tensor_fields():
    b = _boxes()
    labels = torch.tensor([1, 2])
    b.add_field("labels", labels)
    b.add_field("rec", _RecordingField())
    r = b.resize((50, 100), "extra", flag=True)
    assert r.get_field("labels") is labels
    assert r.get_field("rec").calls == [("resize", (50, 100), ("extra",), {"flag": True})]


def test_resize_is_differentiable():
    boxes = torch.tensor([[1.0, 2.0, 3.0, 4.0]], requires_grad=True)
    BoxList(boxes, (10, 10)).resize((20, 40)).bbox.sum().backward()
    torch.testing.assert_close(boxes.grad, torch.tensor([[2.0, 4.0, 2.0, 4.0]]))


# ------------------------------------------------------------------------------------- transpose
def test_transpose_left_right_minus_one():
    b = _boxes()
    t = b.transpose(FLIP_LEFT_RIGHT)
    torch.testing.assert_close(t.bbox, torch.tensor([[90.0, 0.0, 99.0, 9.0], [75.0, 10.0, 94.0, 19.0]]))
    torch.testing.assert_close(t.transpose(FLIP_LEFT_RIGHT).bbox, b.bbox)
    torch.testing.assert_close(t.area(), b.area())


def test_transpose_top_bottom_has_no_minus_one():
    t = _boxes().transpose(FLIP_TOP_BOTTOM)  # the original's quirk: y' = H - y
    torch.testing.assert_close(t.bbox, torch.tensor([[0.0, 41.0, 9.0, 50.0], [5.0, 31.0, 24.0, 40.0]]))


def test_transpose_xywh_and_fields_and_bad_method():
    b = _boxes()
    b.add_field("rec", _RecordingField())
    t = b.convert("xywh").transpose(FLIP_LEFT_RIGHT)
    assert t.mode == "xywh"
    torch.testing.assert_close(t.convert("xyxy").bbox, b.transpose(FLIP_LEFT_RIGHT).bbox)
    assert t.get_field("rec").calls[0] == ("transpose", FLIP_LEFT_RIGHT)
    with pytest.raises(NotImplementedError):
        b.transpose(2)


# ------------------------------------------------------------------------------------- crop
def test_crop_shifts_clamps_and_sets_size():
    b = _boxes()
    b.add_field("rec", _RecordingField())
    c = b.crop([3, 5, 13, 25])
    assert c.size == (10, 20) and repr(c) == "BoxList(num_boxes=2, image_width=10, image_height=20, mode=xyxy)"
    torch.testing.assert_close(c.bbox, torch.tensor([[0.0, 0.0, 6.0, 4.0], [2.0, 5.0, 10.0, 14.0]]))
    assert c.get_field("rec").calls == [("crop", (3.0, 5.0, 13.0, 25.0))]
    ct = b.convert("xywh").crop(torch.tensor([3.0, 5.0, 13.0, 25.0]))
    assert ct.mode == "xywh" and ct.size == (10.0, 20.0)
    torch.testing.assert_close(ct.convert("xyxy").bbox, c.bbox)


def test_crop_keeps_boxes_outside_as_empty():
    c = _boxes().crop([50, 40, 60, 45])
    assert len(c) == 2
    torch.testing.assert_close(c.bbox, torch.zeros(2, 4))


# ------------------------------------------------------------------------------------- clip
def test_clip_to_image_clamps_to_w_minus_1_and_removes_empty():
    b = BoxList(
        torch.tensor(
            [[-5.0, -5.0, 120.0, 70.0], [10.0, 10.0, 5.0, 20.0], [100.0, 0.0, 120.0, 10.0], [3.0, 3.0, 3.0, 8.0]]
        ),
        (100, 50),
    )
    b.add_field("labels", torch.tensor([1, 2, 3, 4]))
    kept = b.clip_to_image()
    torch.testing.assert_close(kept.bbox, torch.tensor([[0.0, 0.0, 99.0, 49.0]]))
    assert kept.get_field("labels").tolist() == [1]


def test_clip_to_image_without_removal_returns_self_updated():
    b = BoxList(torch.tensor([[-5.0, 2.0, 120.0, 70.0], [10.0, 10.0, 5.0, 20.0]]), (100, 50))
    same = b.clip_to_image(remove_empty=False)
    assert same is b and len(b) == 2
    torch.testing.assert_close(b.bbox, torch.tensor([[0.0, 2.0, 99.0, 49.0], [10.0, 10.0, 5.0, 20.0]]))


def test_clip_to_image_xywh_clips_the_described_boxes():
    b = BoxList(torch.tensor([[-5.0, 2.0, 200.0, 10.0]]), (100, 50), mode="xywh")
    c = b.clip_to_image()
    assert c.mode == "xywh"
    torch.testing.assert_close(c.convert("xyxy").bbox, torch.tensor([[0.0, 2.0, 99.0, 11.0]]))


def test_clip_to_image_works_under_autograd():
    boxes = torch.tensor([[-5.0, 2.0, 50.0, 70.0], [1.0, 1.0, 8.0, 8.0]], requires_grad=True)
    out = BoxList(boxes * 1.0, (100, 50)).clip_to_image(remove_empty=True)
    out.bbox.sum().backward()
    torch.testing.assert_close(boxes.grad, torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
    leaf = torch.tensor([[-1.0, 0.0, 5.0, 5.0]], requires_grad=True)
    BoxList(leaf, (10, 10)).clip_to_image(remove_empty=False)  # a leaf that requires grad: no in-place error


# ------------------------------------------------------------------------------------- indexing
def test_getitem_indexes_boxes_and_fields():
    b = BoxList(torch.arange(12.0).reshape(3, 4), (100, 100))
    b.add_field("labels", torch.tensor([10, 11, 12]))
    for item, expected in [
        (torch.tensor([True, False, True]), [10, 12]),
        (torch.tensor([1, 0, 1], dtype=torch.uint8), [10, 12]),
        (torch.tensor([2, 0]), [12, 10]),
        (slice(1, None), [11, 12]),
        ([1], [11]),
        (1, [11]),
    ]:
        s = b[item]
        assert s.get_field("labels").tolist() == expected
        assert s.bbox.shape == (len(expected), 4) and s.size == b.size and s.mode == b.mode
    assert b[torch.tensor([2, 0])].bbox[0].tolist() == [8.0, 9.0, 10.0, 11.0]


def test_getitem_calls_non_tensor_fields():
    b = _boxes()
    b.add_field("rec", _RecordingField())
    assert b[[0]].get_field("rec").calls == [("getitem",)]


def test_to_moves_fields_with_to():
    b = _boxes()
    b.add_field("rec", _RecordingField())
    b.add_field("name", "not movable")
    m = b.to("cpu")
    assert m.get_field("rec").calls == [("to", "cpu")] and m.get_field("name") == "not movable"


def test_len_and_repr():
    b = _boxes()
    assert len(b) == 2
    assert repr(b) == "BoxList(num_boxes=2, image_width=100, image_height=50, mode=xyxy)"


# ------------------------------------------------------------------------------------- empty
def test_empty_boxlist_supports_every_method():
    b = BoxList(torch.zeros(0, 4), (30, 20))
    b.add_field("labels", torch.zeros(0, dtype=torch.int64))
    assert len(b) == 0 and b.area().shape == (0,)
    for out in (
        b.convert("xywh"),
        b.resize((60, 40)),
        b.resize((10, 40)),
        b.transpose(FLIP_LEFT_RIGHT),
        b.transpose(FLIP_TOP_BOTTOM),
        b.crop([0, 0, 10, 10]),
        b.clip_to_image(),
        b[torch.zeros(0, dtype=torch.bool)],
        b.copy_with_fields("labels"),
    ):
        assert len(out) == 0 and out.bbox.shape == (0, 4)
    assert repr(b) == "BoxList(num_boxes=0, image_width=30, image_height=20, mode=xyxy)"


def test_zero_dim_tensor_index_keeps_one_box():
    boxes = BoxList(torch.tensor([[0.0, 0.0, 5.0, 5.0], [1.0, 1.0, 9.0, 9.0]]), (10, 10))
    boxes.add_field("scores", torch.tensor([0.2, 0.9]))
    best = boxes[boxes.get_field("scores").argmax()]
    assert len(best) == 1 and best.bbox.tolist() == [[1.0, 1.0, 9.0, 9.0]]
    assert best.get_field("scores").tolist() == pytest.approx([0.9])
