"""boxlist_ops: IoU, small-box removal, concatenation, NMS (against plain-Python references)."""

import subprocess
import sys

import pytest
import torch

from maskrcnn_benchmark.structures import boxlist_ops
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import boxlist_iou, boxlist_nms, cat_boxlist, remove_small_boxes
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask


def _random_boxes(n, generator, size=100.0):
    xy = torch.rand(n, 2, generator=generator) * size
    wh = torch.rand(n, 2, generator=generator) * size / 3
    return torch.cat([xy, xy + wh], dim=1)


def _iou_reference(a, b):
    """Plain-Python IoU with inclusive pixels (+1)."""
    out = torch.zeros(len(a), len(b))
    for i, (ax1, ay1, ax2, ay2) in enumerate(a.tolist()):
        for j, (bx1, by1, bx2, by2) in enumerate(b.tolist()):
            iw = max(min(ax2, bx2) - max(ax1, bx1) + 1, 0)
            ih = max(min(ay2, by2) - max(ay1, by1) + 1, 0)
            inter = iw * ih
            union = (ax2 - ax1 + 1) * (ay2 - ay1 + 1) + (bx2 - bx1 + 1) * (by2 - by1 + 1) - inter
            out[i, j] = inter / union
    return out


def _greedy_nms_reference(boxes, scores, thresh):
    """Greedy NMS (suppress IoU > thresh, +1 convention); kept indices in ascending order."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    iou = _iou_reference(boxes, boxes)
    suppressed, keep = set(), []
    for i in order:
        if i in suppressed:
            continue
        keep.append(i)
        for j in order:
            if j not in suppressed and j != i and iou[i, j] > thresh:
                suppressed.add(j)
    return sorted(keep)


# ------------------------------------------------------------------------------------- IoU
def test_boxlist_iou_matches_reference_and_known_values():
    g = torch.Generator().manual_seed(0)
    a, b = _random_boxes(7, g), _random_boxes(5, g)
    iou = boxlist_iou(BoxList(a, (100, 100)), BoxList(b, (100, 100)))
    assert iou.shape == (7, 5)
    torch.testing.assert_close(iou, _iou_reference(a, b))

    one = BoxList(torch.tensor([[0.0, 0.0, 9.0, 9.0]]), (20, 20))
    two = BoxList(torch.tensor([[0.0, 0.0, 9.0, 9.0], [5.0, 0.0, 14.0, 9.0], [10.0, 10.0, 12.0, 12.0]]), (20, 20))
    # 10x10 boxes overlapping on 5x10 pixels: 50 / 150
    torch.testing.assert_close(boxlist_iou(one, two), torch.tensor([[1.0, 1.0 / 3.0, 0.0]]))


def test_boxlist_iou_converts_xywh_and_handles_empty():
    a = BoxList(torch.tensor([[0.0, 0.0, 9.0, 9.0]]), (20, 20))
    torch.testing.assert_close(boxlist_iou(a, a.convert("xywh")), torch.ones(1, 1))
    empty = BoxList(torch.zeros(0, 4), (20, 20))
    assert boxlist_iou(empty, a).shape == (0, 1) and boxlist_iou(a, empty).shape == (1, 0)


def test_boxlist_iou_rejects_different_image_sizes_naming_both():
    a = BoxList(torch.zeros(1, 4), (20, 30))
    b = BoxList(torch.zeros(2, 4), (40, 50))
    with pytest.raises(RuntimeError, match=r"image_width=20.*image_width=40"):
        boxlist_iou(a, b)
    boxlist_iou(a, BoxList(torch.zeros(1, 4), [20, 30]))  # list vs tuple size is the same size


# ------------------------------------------------------------------------------------- small boxes
def test_remove_small_boxes_counts_plus_one_widths():
    boxes = torch.tensor([[0.0, 0.0, 1.0, 9.0], [0.0, 0.0, 2.0, 9.0], [0.0, 0.0, 9.0, 1.0], [5.0, 5.0, 4.0, 9.0]])
    b = BoxList(boxes, (20, 20))
    b.add_field("labels", torch.tensor([1, 2, 3, 4]))
    kept = remove_small_boxes(b, 3)  # widths 2, 3, 10, 0 ; heights 10, 10, 2, 5
    assert kept.get_field("labels").tolist() == [2]
    assert remove_small_boxes(b, 1).get_field("labels").tolist() == [1, 2, 3]
    assert remove_small_boxes(b, 0).get_field("labels").tolist() == [1, 2, 3, 4]  # MIN_SIZE=0 keeps all
    assert kept.mode == "xyxy" and remove_small_boxes(b.convert("xywh"), 3).mode == "xywh"
    assert len(remove_small_boxes(BoxList(torch.zeros(0, 4), (5, 5)), 1)) == 0


# ------------------------------------------------------------------------------------- cat
def test_cat_boxlist_concatenates_boxes_and_fields():
    a = BoxList(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), (10, 10))
    a.add_field("scores", torch.tensor([0.5]))
    b = BoxList(torch.tensor([[2.0, 2.0, 3.0, 3.0], [4.0, 4.0, 5.0, 5.0]]), (10, 10))
    b.add_field("scores", torch.tensor([0.1, 0.2]))
    c = cat_boxlist([a, b])
    assert c.bbox.tolist() == [[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]]
    torch.testing.assert_close(c.get_field("scores"), torch.tensor([0.5, 0.1, 0.2]))
    assert c.size == (10, 10) and c.mode == "xyxy"
    single = cat_boxlist((a,))
    assert single.bbox is a.bbox and single.get_field("scores") is a.get_field("scores")
    empty = cat_boxlist([BoxList(torch.zeros(0, 4), (10, 10)), BoxList(torch.zeros(0, 4), (10, 10))])
    assert len(empty) == 0


def test_cat_boxlist_concatenates_masks_and_keypoints_fields():
    def make(n, offset):
        b = BoxList(torch.zeros(n, 4), (20, 20))
        polys = [[[offset + i, 0, offset + i + 5, 0, offset + i + 5, 5]] for i in range(n)]
        b.add_field("masks", SegmentationMask(polys, (20, 20)))
        kp = PersonKeypoints(torch.full((n, 17, 3), float(offset)), (20, 20))
        kp.add_field("logits", torch.full((n, 17), float(offset)))
        b.add_field("keypoints", kp)
        return b

    c = cat_boxlist([make(2, 0), make(1, 10)])
    masks = c.get_field("masks")
    assert len(masks) == 3 and masks.mode == "poly"
    assert masks.instances.polygons[2].polygons[0][0].item() == 10.0
    kp = c.get_field("keypoints")
    assert isinstance(kp, PersonKeypoints) and kp.keypoints.shape == (3, 17, 3)
    assert kp.get_field("logits")[:, 0].tolist() == [0.0, 0.0, 10.0]

    m = [BoxList(torch.zeros(1, 4), (4, 4)) for _ in range(2)]
    for i, b in enumerate(m):
        b.add_field("masks", SegmentationMask(torch.full((1, 4, 4), i, dtype=torch.uint8), (4, 4), mode="mask"))
    assert cat_boxlist(m).get_field("masks").get_mask_tensor().sum(dim=(1, 2)).tolist() == [0, 16]


def test_cat_boxlist_errors_say_what_differs():
    a = BoxList(torch.zeros(1, 4), (10, 10))
    with pytest.raises(ValueError, match="sizes differ"):
        cat_boxlist([a, BoxList(torch.zeros(1, 4), (10, 11))])
    with pytest.raises(ValueError, match="modes differ"):
        cat_boxlist([a, BoxList(torch.zeros(1, 4), (10, 10), mode="xywh")])
    b = BoxList(torch.zeros(1, 4), (10, 10))
    b.add_field("labels", torch.ones(1))
    with pytest.raises(ValueError, match="fields differ.*labels"):
        cat_boxlist([a, b])
    with pytest.raises(ValueError, match="at least one"):
        cat_boxlist([])
    with pytest.raises(TypeError):
        cat_boxlist(a)
    with pytest.raises(TypeError, match="element 1"):
        cat_boxlist([a, torch.zeros(1, 4)])
    c, d = BoxList(torch.zeros(1, 4), (10, 10)), BoxList(torch.zeros(1, 4), (10, 10))
    c.add_field("x", "a string")
    d.add_field("x", "another")
    with pytest.raises(TypeError, match="field 'x'"):
        cat_boxlist([c, d])


# ------------------------------------------------------------------------------------- NMS
def test_structures_import_without_the_compiled_extension():
    code = (
        "import sys\n"
        "import maskrcnn_benchmark.structures.boxlist_ops, maskrcnn_benchmark.structures.segmentation_mask\n"
        "import maskrcnn_benchmark.structures.keypoint, maskrcnn_benchmark.structures.image_list\n"
        "assert 'maskrcnn_benchmark._C' not in sys.modules, 'compiled extension imported eagerly'\n"
        "assert 'maskrcnn_benchmark.layers' not in sys.modules, 'layers imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_boxlist_nms_wrapper_logic_with_a_python_op(monkeypatch):
    calls = []

    def fake_nms(boxes, scores, thresh):
        calls.append((boxes.requires_grad, thresh))
        return torch.tensor(_greedy_nms_reference(boxes, scores, thresh), dtype=torch.int64)

    monkeypatch.setattr(boxlist_ops, "_compiled_nms", lambda: fake_nms)
    boxes = torch.tensor([[0.0, 0.0, 9.0, 9.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 29.0, 29.0], [0.0, 0.0, 8.0, 9.0]])
    b = BoxList(boxes.clone().requires_grad_(), (40, 40)).convert("xywh")
    b.add_field("objectness", torch.tensor([0.9, 0.8, 0.7, 0.95]))
    b.add_field("labels", torch.tensor([1, 2, 3, 4]))
    kept = boxlist_nms(b, 0.5, score_field="objectness")
    assert kept.mode == "xywh" and kept.get_field("labels").tolist() == [3, 4]
    assert calls == [(False, 0.5)]  # the op gets detached xyxy boxes
    assert boxlist_nms(b, 0.5, max_proposals=1, score_field="objectness").get_field("labels").tolist() == [3]
    assert boxlist_nms(b, 0.0) is b and boxlist_nms(b, -1.0, max_proposals=1) is b
    empty = BoxList(torch.zeros(0, 4), (40, 40))
    empty.add_field("scores", torch.zeros(0))
    assert len(boxlist_nms(empty, 0.5)) == 0 and len(calls) == 2  # empty: op not called


def _compiled_nms_or_skip():
    try:
        from maskrcnn_benchmark.layers.nms import nms  # noqa: F401
    except Exception as e:  # ImportError of the module or of maskrcnn_benchmark._C
        pytest.skip(
            "maskrcnn_benchmark.layers.nms (compiled maskrcnn_benchmark._C) is not importable yet: {!r}".format(e)
        )


@pytest.mark.parametrize("thresh", [0.3, 0.5, 0.7])
def test_boxlist_nms_with_compiled_op_matches_greedy_reference(thresh):
    _compiled_nms_or_skip()
    g = torch.Generator().manual_seed(int(thresh * 10))
    boxes = _random_boxes(60, g)
    scores = torch.rand(60, generator=g)
    b = BoxList(boxes, (100, 100))
    b.add_field("scores", scores)
    b.add_field("index", torch.arange(60))
    kept = boxlist_nms(b, thresh)
    assert kept.get_field("index").tolist() == _greedy_nms_reference(boxes, scores, thresh)
    kept_max = boxlist_nms(b, thresh, max_proposals=5)
    assert kept_max.get_field("index").tolist() == kept.get_field("index").tolist()[:5]
