"""SegmentationMask / PolygonList / PolygonInstance / BinaryMaskList and cv2_util.findContours."""

import random

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.structures.bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM, BoxList
from maskrcnn_benchmark.structures.segmentation_mask import (
    BinaryMaskList,
    PolygonInstance,
    PolygonList,
    SegmentationMask,
)
from maskrcnn_benchmark.utils import cv2_util

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools+numpy 2

W, H = 640, 480
POLY = [
    [
        [
            423.0,
            306.5,
            406.5,
            277.0,
            400.0,
            271.5,
            389.5,
            277.0,
            387.5,
            292.0,
            384.5,
            295.0,
            374.5,
            220.0,
            378.5,
            210.0,
            391.0,
            200.5,
            404.0,
            199.5,
            414.0,
            203.5,
            425.5,
            221.0,
            438.5,
            297.0,
            423.0,
            306.5,
        ],
        [100, 100, 200, 100, 200, 200, 100, 200],
    ]
]


def _coco_raster(polygons, width, height):
    """Direct pycocotools rasterisation of one instance (list of flat polygons)."""
    rles = mask_utils.frPyObjects([np.asarray(p, dtype=np.float64) for p in polygons], height, width)
    return torch.from_numpy(mask_utils.decode(mask_utils.merge(rles)))


def _l1(a, b):
    return (a.get_mask_tensor().int() - b.get_mask_tensor().int()).abs().sum().item()


@pytest.fixture
def pm():
    p = SegmentationMask(POLY, (W, H), "poly")
    return p, p.convert("mask")


# ------------------------------------------------------------------------------------- construction
def test_modes_sizes_and_reprs(pm):
    p, m = pm
    assert isinstance(p.instances, PolygonList) and isinstance(m.instances, BinaryMaskList)
    assert p.size == (W, H) and m.size == (W, H) and len(p) == len(m) == 1
    assert repr(p) == "SegmentationMask(num_instances=1, image_width=640, image_height=480, mode=poly)"
    assert repr(m.instances) == "BinaryMaskList(num_instances=1, image_width=640, image_height=480)"
    assert repr(p.instances) == "PolygonList(num_instances=1, image_width=640, image_height=480)"
    assert repr(p.instances.polygons[0]) == "PolygonInstance(num_groups=2, image_width=640, image_height=480)"
    assert SegmentationMask(POLY, (torch.tensor(W), torch.tensor(H))).size == (W, H)
    assert p.to("cpu") is p and m.to("cpu") is m
    assert p.instances.to("cpu") is p.instances and m.instances.to(torch.float16) is m.instances


def test_cat_checks_modes_and_sizes(pm):
    p, m = pm
    both = SegmentationMask.cat([p, p])
    assert len(both) == 2 and both.mode == "poly" and both.size == (W, H)
    assert len(SegmentationMask.cat([m, m, m])) == 3
    with pytest.raises(ValueError, match="modes differ"):
        SegmentationMask.cat([p, m])
    with pytest.raises(ValueError, match="sizes differ"):
        SegmentationMask.cat([p, p.resize((10, 10))])
    with pytest.raises(ValueError, match="sizes differ"):
        SegmentationMask.cat([m, m.resize((10, 10))])


def test_unknown_mode_and_bad_sizes():
    with pytest.raises(NotImplementedError, match="Unknown mode"):
        SegmentationMask(POLY, (W, H), mode="rle")
    with pytest.raises(NotImplementedError, match="Unknown mode"):
        SegmentationMask(POLY, (W, H)).convert("rle")
    with pytest.raises(TypeError, match="width, height"):
        SegmentationMask(POLY, (W, H, 3))
    with pytest.raises(ValueError, match="do not match size"):
        SegmentationMask(torch.zeros(1, 10, 20), (10, 20), mode="mask")


def test_polygon_instance_drops_short_polygons_and_rejects_odd_ones():
    inst = PolygonInstance([[0, 0, 1, 1], [0, 0, 5, 0, 5, 5], torch.tensor([1.0, 1, 4, 1, 4, 4, 1, 4])], (10, 10))
    assert len(inst) == 2 and inst.polygons[0].dtype == torch.float32
    with pytest.raises(ValueError, match="polygon 1 has an odd number of coordinates"):
        PolygonInstance([[0, 0, 5, 0, 5, 5], [0, 0, 5, 0, 5, 5, 1]], (10, 10))
    with pytest.raises(ValueError, match="instance 2: polygon 0 has an odd"):
        PolygonList([[[0, 0, 5, 0, 5, 5]], [[0, 0, 5, 0, 5, 5]], [[0, 0, 5, 0, 5, 5, 6]]], (10, 10))
    with pytest.raises(ValueError, match="instance 1 should be a list of polygons"):
        PolygonList([[[0, 0, 5, 0, 5, 5]], [0, 0, 5, 0, 5, 5]], (10, 10))
    with pytest.raises(TypeError):
        PolygonList("polygons", (10, 10))


def test_polygon_list_drops_instances_without_valid_polygons():
    pl = PolygonList([[[0, 0, 5, 0, 5, 5]], [[1, 2]], []], (10, 10))
    assert len(pl) == 1
    assert len(PolygonList([], (10, 10))) == 0
    assert len(PolygonList(pl, (99, 99))) == 1 and PolygonList(pl, (99, 99)).size == (10, 10)


# ------------------------------------------------------------------------------------- conversion
def test_poly_to_mask_is_the_pycocotools_rasterisation(pm):
    p, m = pm
    assert m.instances.masks.dtype == torch.uint8 and m.instances.masks.shape == (1, H, W)
    assert torch.equal(p.get_mask_tensor(), _coco_raster(POLY[0], W, H))
    assert torch.equal(m.get_mask_tensor(), _coco_raster(POLY[0], W, H))


def test_convert_round_trips_consistently(pm):
    p, m = pm
    m_hat = m.convert("poly").convert("mask")
    p_hat = p.convert("mask").convert("poly")
    assert m.convert("mask") is m and p.convert("poly") is p
    assert _l1(m, m_hat) == _l1(p, p_hat)
    assert _l1(m, m_hat) < 0.05 * m.get_mask_tensor().sum().item()
    again = m_hat.convert("poly").convert("mask")
    assert _l1(m_hat, again) < 0.05 * m.get_mask_tensor().sum().item()


def test_mask_to_poly_keeps_one_instance_per_mask_even_empty_ones():
    masks = torch.zeros(3, 20, 30, dtype=torch.uint8)
    masks[0, 2:8, 3:12] = 1
    masks[2, 10:18, 5:9] = 1
    masks[2, 1:4, 20:25] = 1  # second component of the same instance
    m = SegmentationMask(masks, (30, 20), mode="mask")
    p = m.convert("poly")
    assert len(p) == 3 and [len(i) for i in p.instances.polygons] == [1, 0, 2]
    back = p.convert("mask").get_mask_tensor()
    assert back.shape == (3, 20, 30) and back[1].sum() == 0
    assert ((back.int() - masks.int()).abs().sum(dim=(1, 2)) <= masks.sum(dim=(1, 2)) * 0.5).all()


def test_get_mask_tensor_squeezes_only_single_instances(pm):
    p, m = pm
    assert p.get_mask_tensor().shape == (H, W)
    two = SegmentationMask(POLY * 2, (W, H))
    assert two.get_mask_tensor().shape == (2, H, W) and two.convert("mask").get_mask_tensor().shape == (2, H, W)
    assert SegmentationMask([], (W, H)).get_mask_tensor().shape == (0, H, W)


# ------------------------------------------------------------------------------------- transpose
def test_polygon_transpose_formulas():
    inst = PolygonInstance([[1.0, 2.0, 5.0, 2.0, 5.0, 7.0]], (10, 20))
    assert inst.transpose(FLIP_LEFT_RIGHT).polygons[0].tolist() == [8.0, 2.0, 4.0, 2.0, 4.0, 7.0]
    assert inst.transpose(FLIP_TOP_BOTTOM).polygons[0].tolist() == [1.0, 17.0, 5.0, 17.0, 5.0, 12.0]
    with pytest.raises(NotImplementedError):
        inst.transpose(5)
    with pytest.raises(NotImplementedError):
        BinaryMaskList(torch.zeros(1, 2, 2), (2, 2)).transpose(5)


def test_transpose_poly_and_mask_agree(pm):
    p, m = pm
    mt = m.transpose(FLIP_LEFT_RIGHT).get_mask_tensor()
    assert torch.equal(mt, m.get_mask_tensor().flip(1))
    assert torch.equal(m.transpose(FLIP_TOP_BOTTOM).get_mask_tensor(), m.get_mask_tensor().flip(0))
    area = m.get_mask_tensor().sum().item()
    # polygons flip around (W - 1) / 2, pixels around W / 2: they differ by about one column
    assert _l1(m.transpose(FLIP_LEFT_RIGHT), p.transpose(FLIP_LEFT_RIGHT)) < 0.1 * area
    assert _l1(m.transpose(FLIP_TOP_BOTTOM), p.transpose(FLIP_TOP_BOTTOM)) < 0.1 * area
    assert p.transpose(FLIP_LEFT_RIGHT).size == (W, H)


# ------------------------------------------------------------------------------------- crop / resize
def test_polygon_crop_shifts_without_clipping():
    pl = PolygonList([[[0.0, 0.0, 50.0, 0.0, 50.0, 40.0]]], (100, 100))
    c = pl.crop([10, 5, 30, 25])
    assert c.size == (20, 20)
    assert c.polygons[0].polygons[0].tolist() == [-10.0, -5.0, 40.0, -5.0, 40.0, 35.0]
    assert c.polygons[0].size == (20, 20)
    ct = pl.crop(torch.tensor([10.0, 5.0, 30.5, 25.0]))
    assert ct.size == (20.5, 20.0)
    with pytest.raises(ValueError, match="x2 < x1"):
        pl.crop([30, 5, 10, 25])
    # the original's quirk for a box reaching out of the image: the shift uses the corner clamped
    # into the image, the list's size the box as given
    out = pl.crop([-10, 0, 30, 20])
    assert out.size == (40, 20) and out.polygons[0].polygons[0].tolist()[:2] == [0.0, 0.0]


def test_binary_mask_crop_rounds_and_clamps():
    masks = torch.arange(2 * 10 * 12, dtype=torch.float32).reshape(2, 10, 12)
    bm = BinaryMaskList(masks, (12, 10))
    c = bm.crop([2.4, 1.6, 7.5, 20.0])  # round() -> 2, 2, 8 (half to even), 20 -> clamped to 10
    assert c.size == (6, 8) and torch.equal(c.masks, masks[:, 2:10, 2:8])
    c = bm.crop([-3.0, -1.0, 0.2, 0.0])  # at least one pixel
    assert c.size == (1, 1) and torch.equal(c.masks, masks[:, 0:1, 0:1])


def test_crop_poly_and_mask_agree(pm):
    p, m = pm
    box = [400, 250, 500, 300]
    assert p.crop(box).size == m.crop(box).size == (100, 50)
    assert _l1(m.crop(box), p.crop(box)) <= 1


def test_resize_poly_and_mask(pm):
    p, m = pm
    pr, mr = p.resize((50, 25)), m.resize((50, 25))
    assert pr.size == mr.size == (50, 25) and mr.get_mask_tensor().shape == (25, 50)
    assert _l1(mr, pr) <= 20
    inst = PolygonInstance([[2.0, 4.0, 6.0, 4.0, 6.0, 8.0]], (10, 20))
    assert inst.resize((20, 40)).polygons[0].tolist() == [4.0, 8.0, 12.0, 8.0, 12.0, 16.0]
    assert inst.resize((5, 40)).polygons[0].tolist() == [1.0, 8.0, 3.0, 8.0, 3.0, 16.0]
    assert SegmentationMask([[[2.0, 4.0, 6.0, 4.0, 6.0, 8.0]]], (10, 10)).resize(20).size == (20, 20)
    with pytest.raises(ValueError):
        m.resize((0, 10))


def test_binary_mask_resize_is_bilinear_cast_back_to_dtype():
    g = torch.Generator().manual_seed(3)
    masks = (torch.rand(2, 13, 17, generator=g) > 0.4).to(torch.uint8)
    r = BinaryMaskList(masks, (17, 13)).resize((9.7, 30))  # sizes truncated to ints
    expected = F.interpolate(masks[None].float(), size=(30, 9), mode="bilinear", align_corners=False)[0]
    assert r.masks.dtype == torch.uint8 and r.size == (9, 30)
    assert torch.equal(r.masks, expected.to(torch.uint8))  # only exact 1.0 survives for uint8
    fm = BinaryMaskList(masks.float(), (17, 13)).resize((9, 30))
    torch.testing.assert_close(fm.masks, expected)


def test_mask_targets_match_direct_rasterisation():
    """docs/CONVENTIONS.md#mask-targets: crop a polygon mask with a float proposal, resize to M x M, rasterise; the
    same as rasterising `(x - x1) * M / (x2 - x1)`, `(y - y1) * M / (y2 - y1)` directly."""
    rng = random.Random(0)
    M = 28
    partial = 0
    for _ in range(40):
        polys = []
        cx, cy = rng.uniform(50, 150), rng.uniform(40, 110)
        for _ in range(rng.randint(1, 2)):
            ox, oy, r = cx + rng.uniform(-10, 10), cy + rng.uniform(-10, 10), rng.uniform(5, 30)
            n = rng.randint(3, 9)
            angles = sorted(rng.uniform(0, 2 * np.pi) for _ in range(n))
            polys.append([v for a in angles for v in (ox + r * np.cos(a), oy + r * np.sin(a))])
        # a proposal around the object, inside the 200 x 150 image (as proposals are clipped)
        x1, x2 = cx - rng.uniform(3, 45), cx + rng.uniform(3, 45)
        y1, y2 = cy - rng.uniform(3, 35), cy + rng.uniform(3, 35)
        proposal = torch.tensor([x1, y1, x2, y2])
        target = SegmentationMask([polys], (200, 150)).crop(proposal).resize((M, M)).get_mask_tensor()

        x1f, y1f, x2f, y2f = [float(v) for v in proposal]
        sx, sy = M / (x2f - x1f), M / (y2f - y1f)
        if float(np.float32(sx)) == float(np.float32(sy)):
            continue  # (vanishingly rare) single-ratio path, scaled by one factor in float32
        direct = []
        for p in polys:
            t = torch.tensor(p, dtype=torch.float32)
            t[0::2] = (t[0::2] - x1f) * sx
            t[1::2] = (t[1::2] - y1f) * sy
            direct.append(t.numpy())
        assert target.shape == (M, M) and target.dtype == torch.uint8
        assert torch.equal(target, _coco_raster(direct, M, M))
        partial += 0 < int(target.sum()) < M * M
    assert partial >= 30  # the targets are mostly neither empty nor full


def test_binary_mask_targets_crop_rounded_and_resize_bilinear():
    g = torch.Generator().manual_seed(4)
    masks = (torch.rand(1, 60, 80, generator=g) > 0.3).to(torch.uint8)
    target = SegmentationMask(masks, (80, 60), mode="mask").crop(torch.tensor([10.4, 5.6, 50.5, 45.2])).resize((28, 28))
    crop = masks[:, 6:45, 10:50].float()  # round(10.4)=10, round(5.6)=6, round(50.5)=50, round(45.2)=45
    expected = F.interpolate(crop[None], size=(28, 28), mode="bilinear", align_corners=False)[0, 0].to(torch.uint8)
    assert torch.equal(target.get_mask_tensor(), expected)


# ------------------------------------------------------------------------------------- RLE
def test_rle_inputs_compressed_uncompressed_and_resized():
    g = torch.Generator().manual_seed(5)
    masks = (torch.rand(2, 12, 16, generator=g) > 0.5).to(torch.uint8)
    np_masks = np.asfortranarray(masks.permute(1, 2, 0).numpy())
    compressed = mask_utils.encode(np_masks)  # counts: bytes
    as_str = [{"size": r["size"], "counts": r["counts"].decode("ascii")} for r in compressed]
    for rles in (compressed, as_str):
        bm = BinaryMaskList(rles, (16, 12))
        assert bm.masks.dtype == torch.uint8 and torch.equal(bm.masks, masks)

    uncompressed = []
    for m in masks:  # column-major run lengths starting with zeros
        flat = m.t().reshape(-1).tolist()
        counts, current, run = [], 0, 0
        for v in flat:
            if v != current:
                counts.append(run)
                current, run = v, 0
            run += 1
        counts.append(run)
        uncompressed.append({"size": [12, 16], "counts": counts})
    sm = SegmentationMask(uncompressed, (16, 12), mode="mask")
    assert torch.equal(sm.instances.masks, masks)
    assert torch.equal(BinaryMaskList(uncompressed[0], (16, 12)).masks, masks[:1])

    big = BinaryMaskList(compressed, (32, 24))  # RLE size != size: bilinear resize, cast back
    expected = F.interpolate(masks[None].float(), size=(24, 32), mode="bilinear", align_corners=False)[0]
    assert torch.equal(big.masks, expected.to(torch.uint8))
    with pytest.raises(ValueError, match="same"):
        BinaryMaskList([compressed[0], mask_utils.encode(np.zeros((5, 5, 1), np.uint8, order="F"))[0]], (16, 12))


# ------------------------------------------------------------------------------------- BinaryMaskList input
def test_binary_mask_list_inputs_and_copies():
    t = torch.zeros(2, 4, 5, dtype=torch.uint8)
    bm = BinaryMaskList(t, (5, 4))
    assert bm.masks is not t and torch.equal(bm.masks, t)
    assert BinaryMaskList(torch.ones(4, 5), (5, 4)).masks.shape == (1, 4, 5)
    assert BinaryMaskList([torch.ones(4, 5), torch.zeros(4, 5)], (5, 4)).masks.shape == (2, 4, 5)
    assert BinaryMaskList(np.ones((3, 4, 5), np.uint8), (5, 4)).masks.shape == (3, 4, 5)
    assert BinaryMaskList(bm, (5, 4)).masks is not bm.masks
    assert BinaryMaskList([], (5, 4)).masks.shape == (0, 4, 5)
    with pytest.raises(TypeError):
        BinaryMaskList(["not a mask"], (5, 4))
    with pytest.raises(TypeError):
        BinaryMaskList(3, (5, 4))
    with pytest.raises(ValueError, match="N, H, W"):
        BinaryMaskList(torch.zeros(1, 1, 4, 5), (5, 4))


# ------------------------------------------------------------------------------------- indexing / iteration
@pytest.mark.parametrize("mode", ["poly", "mask"])
def test_getitem_variants(mode):
    polys = [[[i, 0, i + 5, 0, i + 5, 5, i, 5]] for i in range(4)]
    sm = SegmentationMask(polys, (20, 10)).convert(mode)
    sums_x = lambda s: [int(torch.nonzero(m.get_mask_tensor())[:, 1].min()) for m in s]  # noqa: E731
    assert sums_x(sm) == [0, 1, 2, 3]
    for item, expected in [
        (2, [2]),
        (slice(1, 3), [1, 2]),
        ([3, 0], [3, 0]),
        (torch.tensor([3, 1]), [3, 1]),
        (torch.tensor([True, False, True, False]), [0, 2]),
        (torch.tensor([0, 1, 1, 0], dtype=torch.uint8), [1, 2]),
        (np.array([1, 3]), [1, 3]),
    ]:
        sel = sm[item]
        assert isinstance(sel, SegmentationMask) and sel.mode == mode and sums_x(sel) == expected
    assert len(sm[torch.zeros(4, dtype=torch.bool)]) == 0
    assert len(sm[torch.zeros(0, dtype=torch.int64)]) == 0


@pytest.mark.parametrize("mode", ["poly", "mask"])
def test_iteration_yields_single_instances_and_nests(mode):
    sm = SegmentationMask(POLY * 3, (W, H)).convert(mode)
    items = list(sm)
    assert len(items) == 3 and all(isinstance(s, SegmentationMask) and len(s) == 1 for s in items)
    assert sum(1 for _ in sm for _ in sm) == 9
    assert len(next(sm)) == 1  # the original's object-as-iterator protocol
    assert len(list(iter(sm.instances))) == 3


# ------------------------------------------------------------------------------------- empty
@pytest.mark.parametrize("mode", ["poly", "mask"])
def test_empty_masks_support_every_method(mode):
    sm = SegmentationMask([], (30, 20), mode=mode)
    assert len(sm) == 0
    for out in (
        sm.transpose(FLIP_LEFT_RIGHT),
        sm.transpose(FLIP_TOP_BOTTOM),
        sm.crop([2, 3, 12, 13]),
        sm.resize((28, 28)),
        sm.convert("poly"),
        sm.convert("mask"),
        sm[torch.zeros(0, dtype=torch.bool)],
    ):
        assert len(out) == 0
    assert sm.resize((28, 14)).get_mask_tensor().shape == (0, 14, 28)
    assert sm.crop([2, 3, 12, 13]).get_mask_tensor().shape == (0, 10, 10)
    assert list(sm) == []


def test_polygon_instance_without_polygons_rasterises_to_zeros():
    inst = PolygonInstance([], (7, 5))
    assert torch.equal(inst.convert_to_binarymask(), torch.zeros(5, 7, dtype=torch.uint8))


# ------------------------------------------------------------------------------------- in a BoxList
def test_boxlist_forwards_transforms_to_masks(pm):
    p, _ = pm
    b = BoxList(torch.tensor([[374.0, 199.0, 439.0, 307.0], [100.0, 100.0, 200.0, 200.0]]), (W, H))
    b.add_field("masks", SegmentationMask(POLY * 2, (W, H)))
    r = b.resize((320, 240))
    assert r.get_field("masks").size == (320, 240)
    f = b.transpose(FLIP_LEFT_RIGHT)
    assert torch.equal(f.get_field("masks")[0].get_mask_tensor(), p.transpose(FLIP_LEFT_RIGHT).get_mask_tensor())
    c = b.crop([100, 100, 300, 300])
    assert c.get_field("masks").size == (200, 200)
    kept = BoxList(torch.tensor([[0.0, 0.0, 5.0, 5.0], [9.0, 9.0, 2.0, 2.0]]), (W, H))
    kept.add_field("masks", SegmentationMask(POLY * 2, (W, H)).convert("mask"))
    assert len(kept.clip_to_image().get_field("masks")) == 1


# ------------------------------------------------------------------------------------- cv2_util
def test_find_contours_returns_numpy_for_arrays_and_umats(monkeypatch):
    img = np.zeros((10, 10), np.uint8)
    img[2:5, 3:8] = 1
    for source in (img, cv2.UMat(img)):
        contours, hierarchy = cv2_util.findContours(source, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        assert len(contours) == 1 and isinstance(contours[0], np.ndarray) and isinstance(hierarchy, np.ndarray)
        assert sorted(map(tuple, contours[0].reshape(-1, 2).tolist())) == [(3, 2), (3, 4), (7, 2), (7, 4)]

    real = cv2.findContours
    monkeypatch.setattr(cv2, "findContours", lambda *a, **k: (a[0],) + tuple(real(*a, **k)))  # OpenCV 3 shape
    contours, hierarchy = cv2_util.findContours(img, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    assert len(contours) == 1 and hierarchy.shape[-1] == 4
    monkeypatch.setattr(cv2, "findContours", lambda *a, **k: (1, 2, 3, 4))
    with pytest.raises(RuntimeError, match="returned 4 values"):
        cv2_util.findContours(img, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
