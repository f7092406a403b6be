"""Tests of maskrcnn_benchmark.layers.nms (nms, batched_nms): CPU kernel, CUDA kernel (when a GPU is
present), fake kernels under torch.compile, and the legacy `_C.nms` entry point."""

import math

import numpy as np
import pytest
import torch

import maskrcnn_benchmark._C as _C
from maskrcnn_benchmark.layers.nms import batched_nms, nms

torchvision = pytest.importorskip("torchvision")

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


# --- plain-Python reference of the greedy algorithm (legacy +1 convention, IoU > thr) -----------


def _legacy_iou(a, b, ftype):
    """IoU of kept box a with box b, rounded like the kernels (in ftype = np.float32/np.float64)."""
    one, zero = ftype(1), ftype(0)
    ax1, ay1, ax2, ay2 = (ftype(v) for v in a)
    bx1, by1, bx2, by2 = (ftype(v) for v in b)
    xx1 = ax1 if ax1 > bx1 else bx1
    yy1 = ay1 if ay1 > by1 else by1
    xx2 = ax2 if ax2 < bx2 else bx2
    yy2 = ay2 if ay2 < by2 else by2
    w = xx2 - xx1 + one
    h = yy2 - yy1 + one
    w = zero if zero > w else w
    h = zero if zero > h else h
    inter = w * h
    area_a = (ax2 - ax1 + one) * (ay2 - ay1 + one)
    area_b = (bx2 - bx1 + one) * (by2 - by1 + one)
    with np.errstate(all="ignore"):
        return inter / (area_a + area_b - inter)


def ref_nms(boxes, scores, thr):
    """Greedy NMS: score descending, ties by index, NaN scores last; returns sorted kept indices."""
    ftype = np.float64 if boxes.dtype == torch.float64 else np.float32
    b = boxes.double().tolist()
    s = scores.double().tolist()
    n = len(s)

    def key(i):
        return (1, 0.0, i) if math.isnan(s[i]) else (0, -s[i], i)

    order = sorted(range(n), key=key)
    removed = [False] * n
    keep = []
    for pos, i in enumerate(order):
        if removed[i]:
            continue
        keep.append(i)
        for j in order[pos + 1 :]:
            if not removed[j] and float(_legacy_iou(b[i], b[j], ftype)) > thr:
                removed[j] = True
    return sorted(keep)


def ref_batched(boxes, scores, idxs, thr):
    out = []
    for g in sorted(set(idxs.tolist())):
        sel = torch.nonzero(idxs == g).view(-1)
        out += sel[torch.tensor(ref_nms(boxes[sel], scores[sel], thr), dtype=torch.long)].tolist()
    return out


# --- inputs ------------------------------------------------------------------------------------


def random_boxes(n, seed, dtype=torch.float32, image=(1088.0, 800.0), min_size=16.0, max_size=400.0):
    g = torch.Generator().manual_seed(seed)
    ctr = torch.rand(n, 2, generator=g, dtype=torch.float64) * torch.tensor(image, dtype=torch.float64)
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * (max_size - min_size) + min_size
    boxes = torch.cat([ctr - wh / 2, ctr + wh / 2], 1).to(dtype)
    scores = torch.rand(n, generator=g, dtype=torch.float64).to(dtype)
    return boxes, scores


def integer_boxes_with_ties(n, seed):
    """Small integer boxes (exact IoUs), tied scores, duplicates, empty and inverted boxes."""
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randint(0, 30, (n,), generator=g)
    y1 = torch.randint(0, 30, (n,), generator=g)
    w = torch.randint(-3, 15, (n,), generator=g)  # w = -1 -> zero legacy width; w < -1 -> x2 < x1 - 1
    h = torch.randint(-3, 15, (n,), generator=g)
    boxes = torch.stack([x1, y1, x1 + w, y1 + h], 1).float()
    boxes[n // 2 : n // 2 + 4] = boxes[0]  # exact duplicates
    scores = torch.randint(0, 5, (n,), generator=g).float() / 4  # many ties
    return boxes, scores


def shifted_torchvision(boxes, scores, thr):
    tv = torchvision.ops.nms(boxes + torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=boxes.dtype), scores, thr)
    return sorted(tv.tolist())


# --- nms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_matches_reference_with_ties(seed, thr):
    boxes, scores = integer_boxes_with_ties(60, seed)
    for dtype in (torch.float32, torch.float64):
        keep = nms(boxes.to(dtype), scores.to(dtype), thr)
        assert keep.tolist() == ref_nms(boxes.to(dtype), scores.to(dtype), thr)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("thr", [0.2, 0.5, 0.7])
def test_nms_matches_reference_random_float(seed, thr):
    boxes, scores = random_boxes(300, seed, image=(300.0, 300.0), min_size=5.0, max_size=120.0)
    assert nms(boxes, scores, thr).tolist() == ref_nms(boxes, scores, thr)


@pytest.mark.parametrize("n,seed", [(500, 0), (3000, 1), (3000, 2)])
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7, 0.9])
def test_nms_matches_shifted_torchvision(n, seed, thr):
    # IoU_legacy(a, b) == IoU(a + [0, 0, 1, 1], b + [0, 0, 1, 1]); random scores have no ties.
    boxes, scores = random_boxes(n, seed)
    assert nms(boxes, scores, thr).tolist() == shifted_torchvision(boxes, scores, thr)
    boxes64, scores64 = random_boxes(n, seed, dtype=torch.float64)
    assert nms(boxes64, scores64, thr).tolist() == shifted_torchvision(boxes64, scores64, thr)


def test_nms_dense_overlap_matches_torchvision():
    g = torch.Generator().manual_seed(3)
    ctr = torch.rand(2000, 2, generator=g) * 60 + 300
    wh = torch.rand(2000, 2, generator=g) * 100 + 100
    boxes = torch.cat([ctr - wh / 2, ctr + wh / 2], 1)
    scores = torch.rand(2000, generator=g)
    for thr in (0.5, 0.7, 0.9):
        assert nms(boxes, scores, thr).tolist() == shifted_torchvision(boxes, scores, thr)


def test_nms_output_dtype_device_order():
    boxes, scores = random_boxes(1000, 7)
    keep = nms(boxes, scores, 0.5)
    assert keep.dtype == torch.int64
    assert keep.device == boxes.device
    assert keep.dim() == 1
    assert torch.all(keep[1:] > keep[:-1])  # ascending, unique
    assert 0 < keep.numel() < 1000


def test_nms_empty_and_single():
    empty = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.dtype == torch.int64 and empty.shape == (0,)
    assert nms(torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([0.3]), 0.5).tolist() == [0]
    assert nms(torch.tensor([[5.0, 5.0, 1.0, 1.0]]), torch.tensor([float("nan")]), 0.0).tolist() == [0]


def test_nms_thresholds_0_and_1():
    boxes = torch.tensor([[0.0, 0.0, 9.0, 9.0], [9.0, 9.0, 20.0, 20.0], [10.0, 10.0, 20.0, 20.0], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    # threshold 0: any overlap suppresses (box 1 touches box 0 at the pixel (9, 9) in the +1 convention).
    assert nms(boxes, scores, 0.0).tolist() == [0, 2, 3]
    # threshold 1: nothing is suppressed, not even exact duplicates (IoU == 1 is not > 1).
    dup = torch.cat([boxes, boxes])
    assert nms(dup, torch.cat([scores, scores]), 1.0).tolist() == list(range(8))
    assert nms(dup, torch.cat([scores, scores]), 0.999).tolist() == [0, 1, 2, 3]


def test_nms_strictly_greater_than_threshold():
    # areas 100 and 50 (+1 convention), intersection 50: IoU is exactly 0.5.
    boxes = torch.tensor([[0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 9.0, 4.0]])
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.4999).tolist() == [0]
    assert nms(boxes.double(), scores.double(), 0.5).tolist() == [0, 1]


def test_nms_threshold_compared_in_double():
    # IoU 1/3 (float32: 0.33333334...) against thresholds around it.
    boxes = torch.tensor([[0.0, 0.0, 9.0, 9.0], [5.0, 0.0, 14.0, 9.0]])  # inter 50, union 150
    scores = torch.tensor([0.9, 0.8])
    iou32 = float(np.float32(50) / np.float32(150))
    assert nms(boxes, scores, iou32).tolist() == [0, 1]
    assert nms(boxes, scores, math.nextafter(iou32, 0.0)).tolist() == [0]


def test_nms_tie_break_by_index_and_signed_zero():
    box = [0.0, 0.0, 10.0, 10.0]
    boxes = torch.tensor([box, box, box])
    assert nms(boxes, torch.tensor([0.5, 0.5, 0.5]), 0.5).tolist() == [0]
    assert nms(boxes, torch.tensor([0.5, 0.7, 0.7]), 0.5).tolist() == [1]
    assert nms(boxes, torch.tensor([0.0, -0.0, 0.0]), 0.5).tolist() == [0]
    assert nms(boxes, torch.tensor([-0.0, 0.0, 0.0]), 0.5).tolist() == [0]


def test_nms_nan_scores_rank_last():
    box = [0.0, 0.0, 10.0, 10.0]
    boxes = torch.tensor([box, box, box, [100.0, 100.0, 110.0, 110.0]])
    nan, inf = float("nan"), float("inf")
    assert nms(boxes, torch.tensor([nan, -inf, nan, nan]), 0.5).tolist() == [1, 3]
    assert nms(boxes, torch.tensor([nan, nan, nan, 1.0]), 0.5).tolist() == [0, 3]
    b, s = integer_boxes_with_ties(50, 11)
    s[::3] = nan
    assert nms(b, s, 0.4).tolist() == ref_nms(b, s, 0.4)


def test_nms_nan_coordinates_neither_suppress_nor_are_suppressed():
    nan = float("nan")
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [nan, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    assert nms(boxes, torch.tensor([0.9, 0.95, 0.8]), 0.5).tolist() == [0, 1]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_nms_half_precision_computes_in_float32(dtype):
    boxes, scores = random_boxes(800, 5, image=(500.0, 500.0))
    boxes_h, scores_h = boxes.to(dtype), scores.to(dtype)
    keep = nms(boxes_h, scores_h, 0.5)
    assert keep.dtype == torch.int64
    assert keep.tolist() == nms(boxes_h.float(), scores_h.float(), 0.5).tolist()
    assert keep.tolist() == ref_nms(boxes_h.float(), scores_h.float(), 0.5)


def test_nms_mixed_score_dtype_orders_in_score_precision():
    box = [0.0, 0.0, 10.0, 10.0]
    boxes = torch.tensor([box, box])
    # Distinct in float64, equal in float32: the float64 order must be used.
    scores = torch.tensor([0.5, 0.5 + 1e-12], dtype=torch.float64)
    assert nms(boxes, scores, 0.5).tolist() == [1]


def test_nms_noncontiguous_inputs():
    boxes, scores = random_boxes(600, 8)
    wide = torch.zeros(600, 8)
    wide[:, ::2] = boxes
    boxes_nc = wide[:, ::2]
    scores_nc = torch.stack([scores, scores], 1)[:, 1]
    assert not boxes_nc.is_contiguous() and not scores_nc.is_contiguous()
    assert nms(boxes_nc, scores_nc, 0.5).tolist() == nms(boxes, scores, 0.5).tolist()


def test_nms_large_parallel_path_is_deterministic():
    # 40,000 boxes: long passes are split across threads; the result must not depend on it.
    boxes, scores = random_boxes(40000, 9)
    keep = nms(boxes, scores, 0.7)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        keep1 = nms(boxes, scores, 0.7)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(keep, keep1)
    # spot check against torchvision on the first 4000 boxes
    sub = slice(0, 4000)
    assert nms(boxes[sub], scores[sub], 0.7).tolist() == shifted_torchvision(boxes[sub], scores[sub], 0.7)


def test_nms_accepts_python_number_thresholds():
    boxes, scores = random_boxes(100, 10)
    assert torch.equal(nms(boxes, scores, 1 / 2), nms(boxes, scores, np.float32(0.5).item()))


def test_legacy_C_entry_point():
    boxes, scores = random_boxes(500, 12)
    assert torch.equal(_C.nms(boxes, scores, 0.5), nms(boxes, scores, 0.5))


@pytest.mark.parametrize(
    "args,match",
    [
        ((torch.zeros(5, 3), torch.zeros(5)), r"dets \(boxes\) must have shape \[N, 4\]"),
        ((torch.zeros(5), torch.zeros(5)), r"dets \(boxes\) must have shape \[N, 4\]"),
        ((torch.zeros(5, 4), torch.zeros(5, 1)), r"scores must have shape \[N\]"),
        ((torch.zeros(5, 4), torch.zeros(4)), r"dets and scores must have the same length, got 5 boxes and 4"),
        ((torch.zeros(5, 4, dtype=torch.int64), torch.zeros(5)), r"dets \(boxes\) must be a floating-point"),
        ((torch.zeros(5, 4), torch.zeros(5, dtype=torch.int32)), r"scores must be a floating-point"),
    ],
)
def test_nms_errors(args, match):
    with pytest.raises(RuntimeError, match="nms: " + match):
        nms(*args, 0.5)


def test_nms_device_mismatch_error():
    # meta tensors dispatch to the fake kernel, which performs the same checks
    with pytest.raises(RuntimeError, match=r"nms: dets and scores must be on the same device"):
        nms(torch.zeros(3, 4, device="meta"), torch.zeros(3), 0.5)


# --- batched_nms -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_batched_nms_matches_reference(seed):
    boxes, scores = integer_boxes_with_ties(90, seed)
    g = torch.Generator().manual_seed(seed)
    idxs = torch.randint(0, 4, (90,), generator=g)
    for thr in (0.0, 0.5, 0.8):
        keep = batched_nms(boxes, scores, idxs, thr)
        assert keep.dtype == torch.int64
        assert keep.tolist() == ref_batched(boxes, scores, idxs, thr)


def test_batched_nms_equals_per_group_nms_and_order():
    boxes, scores = random_boxes(3000, 13)
    g = torch.Generator().manual_seed(13)
    idxs = torch.randint(0, 80, (3000,), generator=g)  # unsorted group ids, many groups (parallel path)
    keep = batched_nms(boxes, scores, idxs, 0.5)
    expected = []
    for c in range(80):
        sel = torch.nonzero(idxs == c).view(-1)
        expected.append(sel[nms(boxes[sel], scores[sel], 0.5)])
    expected = torch.cat(expected)
    assert torch.equal(keep, expected)
    # ordered by idxs ascending, then index ascending
    k_idx = idxs[keep]
    assert torch.all(k_idx[1:] >= k_idx[:-1])
    same = k_idx[1:] == k_idx[:-1]
    assert torch.all(keep[1:][same] > keep[:-1][same])


def test_batched_nms_never_suppresses_across_groups():
    box = [0.0, 0.0, 10.0, 10.0]
    boxes = torch.tensor([box] * 6)
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    idxs = torch.tensor([2, 0, 2, 1, 0, 1])
    # best per group: group 0 -> 4, group 1 -> 5, group 2 -> 2
    assert batched_nms(boxes, scores, idxs, 0.5).tolist() == [4, 5, 2]
    assert nms(boxes, scores, 0.5).tolist() == [5]


@pytest.mark.parametrize(
    "values",
    [[-7, 3, -7, 3, 1000, 0], [2**40, -(2**40), 5, 2**40, 5, -(2**40)], [-(2**63), 2**63 - 1, 0, 0, 2**63 - 1, 1]],
)
def test_batched_nms_negative_and_large_group_ids(values):
    box = [0.0, 0.0, 10.0, 10.0]
    boxes = torch.tensor([box] * 6)
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    idxs = torch.tensor(values, dtype=torch.int64)
    expected = ref_batched(boxes, scores, idxs, 0.5)
    assert batched_nms(boxes, scores, idxs, 0.5).tolist() == expected
    # sparse but bounded ids of a dense range take another code path than huge ones
    boxes2, scores2 = random_boxes(500, 14)
    idxs2 = torch.tensor(values * 100)[:500] // 3
    assert batched_nms(boxes2, scores2, idxs2, 0.6).tolist() == ref_batched(boxes2, scores2, idxs2, 0.6)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8, torch.bool])
def test_batched_nms_idx_dtypes(dtype):
    boxes, scores = random_boxes(400, 15)
    idxs = torch.randint(0, 2, (400,), generator=torch.Generator().manual_seed(15))
    ref = batched_nms(boxes, scores, idxs, 0.5)
    assert torch.equal(batched_nms(boxes, scores, idxs.to(dtype), 0.5), ref)


def test_batched_nms_single_group_and_empty():
    boxes, scores = random_boxes(700, 16)
    idxs = torch.full((700,), 7)
    assert torch.equal(batched_nms(boxes, scores, idxs, 0.5), nms(boxes, scores, 0.5))
    empty = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5)
    assert empty.dtype == torch.int64 and empty.shape == (0,)


def test_batched_nms_large_groups_use_parallel_passes():
    boxes, scores = random_boxes(60000, 17)
    idxs = torch.zeros(60000, dtype=torch.long)
    idxs[30000:] = 1
    idxs[59000:] = 5  # one big group each side, plus a small one
    keep = batched_nms(boxes, scores, idxs, 0.7)
    expected = torch.cat(
        [torch.nonzero(idxs == c).view(-1)[nms(boxes[idxs == c], scores[idxs == c], 0.7)] for c in (0, 1, 5)]
    )
    assert torch.equal(keep, expected)


@pytest.mark.parametrize(
    "idxs,match",
    [
        (torch.zeros(5, 1, dtype=torch.long), r"idxs must have shape \[N\]"),
        (torch.zeros(4, dtype=torch.long), r"idxs and dets must have the same length, got 4 idxs and 5 boxes"),
        (torch.zeros(5), r"idxs must be an integer tensor"),
    ],
)
def test_batched_nms_errors(idxs, match):
    with pytest.raises(RuntimeError, match="batched_nms: " + match):
        batched_nms(torch.zeros(5, 4), torch.zeros(5), idxs, 0.5)
    with pytest.raises(RuntimeError, match=r"batched_nms: dets and scores must have the same length"):
        batched_nms(torch.zeros(5, 4), torch.zeros(3), torch.zeros(5, dtype=torch.long), 0.5)


# --- torch.compile / fake kernels ----------------------------------------------------------------


def test_nms_under_torch_compile_fullgraph():
    def f(boxes, scores, idxs):
        keep = nms(boxes, scores, 0.5)
        keep2 = batched_nms(boxes, scores, idxs, 0.5)
        return boxes[keep] * 2, scores[keep2].sum()

    boxes, scores = random_boxes(300, 18)
    idxs = torch.randint(0, 3, (300,), generator=torch.Generator().manual_seed(18))
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    out, total = compiled(boxes, scores, idxs)
    ref_out, ref_total = f(boxes, scores, idxs)
    assert torch.equal(out, ref_out)
    assert torch.allclose(total, ref_total)


def test_nms_fake_kernel_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    with FakeTensorMode(shape_env=ShapeEnv()):
        boxes = torch.empty(10, 4)
        scores = torch.empty(10)
        keep = torch.ops.maskrcnn_benchmark.nms(boxes, scores, 0.5)
        assert keep.dtype == torch.int64 and keep.dim() == 1
        keep = torch.ops.maskrcnn_benchmark.batched_nms(boxes, scores, torch.empty(10, dtype=torch.long), 0.5)
        assert keep.dtype == torch.int64 and keep.dim() == 1
        with pytest.raises(RuntimeError, match=r"nms: dets \(boxes\) must have shape \[N, 4\]"):
            torch.ops.maskrcnn_benchmark.nms(torch.empty(10, 5), scores, 0.5)


def test_nms_opcheck():
    boxes, scores = random_boxes(200, 19)
    idxs = torch.randint(0, 3, (200,), generator=torch.Generator().manual_seed(19))
    torch.library.opcheck(torch.ops.maskrcnn_benchmark.nms.default, (boxes, scores, 0.5))
    torch.library.opcheck(torch.ops.maskrcnn_benchmark.batched_nms.default, (boxes, scores, idxs, 0.5))


def test_nms_under_torch_compile_dynamic_shapes():
    def f(boxes, scores, idxs):
        return boxes[batched_nms(boxes, scores, idxs, 0.5)].sum(0), nms(boxes, scores, 0.3).numel()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager", dynamic=True)
    for n in (50, 80, 130):
        boxes, scores = random_boxes(n, 20 + n, image=(200.0, 200.0))
        idxs = torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(n))
        got, ref = compiled(boxes, scores, idxs), f(boxes, scores, idxs)
        assert torch.equal(got[0], ref[0]) and got[1] == ref[1]


# --- CUDA ----------------------------------------------------------------------------------------


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_nms_cuda_matches_cpu(dtype):
    for seed in range(3):
        boxes, scores = random_boxes(5000, seed, dtype=dtype)
        for thr in (0.0, 0.5, 0.7, 1.0):
            keep = nms(boxes.cuda(), scores.cuda(), thr)
            assert keep.device.type == "cuda" and keep.dtype == torch.int64
            assert torch.equal(keep.cpu(), nms(boxes, scores, thr))


@needs_gpu
def test_nms_cuda_ties_nan_and_empty():
    for seed in range(5):
        boxes, scores = integer_boxes_with_ties(200, seed)
        scores[::7] = float("nan")
        for thr in (0.0, 0.4, 0.7):
            assert torch.equal(nms(boxes.cuda(), scores.cuda(), thr).cpu(), nms(boxes, scores, thr))
    empty = nms(torch.zeros(0, 4, device="cuda"), torch.zeros(0, device="cuda"), 0.5)
    assert empty.device.type == "cuda" and empty.shape == (0,) and empty.dtype == torch.int64


@needs_gpu
def test_nms_cuda_large_uses_global_scan_memory():
    # > 393,216 boxes: the scan's bitset no longer fits in shared memory (the mask takes 20 GB).
    boxes, scores = random_boxes(400000, 21, image=(4000.0, 4000.0))
    assert torch.equal(nms(boxes.cuda(), scores.cuda(), 0.0).cpu(), nms(boxes, scores, 0.0))


@needs_gpu
def test_batched_nms_cuda_matches_cpu():
    boxes, scores = random_boxes(8000, 22)
    idxs = torch.randint(-3, 90, (8000,), generator=torch.Generator().manual_seed(22))
    for thr in (0.3, 0.5, 0.7):
        keep = batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), thr)
        assert torch.equal(keep.cpu(), batched_nms(boxes, scores, idxs, thr))


@needs_gpu
@pytest.mark.parametrize("case", ["box_head", "ragged", "singletons", "one_big_group"])
def test_batched_nms_cuda_group_layouts_match_cpu(case):
    # The CUDA kernel scans each group in its own block and stores only each row's band of the
    # mask: cover many equal groups (the box head: 80 classes x 1,000 boxes), ragged groups that
    # start and end inside 64-box tiles, one box per group, and a single group.
    g = torch.Generator().manual_seed(23)
    if case == "box_head":
        boxes, scores = random_boxes(80000, 23)
        idxs = torch.arange(80).repeat_interleave(1000)
    elif case == "ragged":
        boxes, scores = random_boxes(6000, 24)
        sizes = torch.randint(1, 300, (60,), generator=g)
        idxs = torch.arange(60).repeat_interleave(sizes)[:6000]
        idxs = torch.cat([idxs, torch.full((6000 - len(idxs),), 99)])[torch.randperm(6000, generator=g)]
    elif case == "singletons":
        boxes, scores = random_boxes(3000, 25)
        idxs = torch.randperm(3000, generator=g)
    else:
        boxes, scores = random_boxes(7000, 26)
        idxs = torch.full((7000,), 5)
    for thr in (0.0, 0.5):
        keep = batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), thr)
        assert torch.equal(keep.cpu(), batched_nms(boxes, scores, idxs, thr))


@needs_gpu
def test_nms_cuda_device_mismatch_error():
    with pytest.raises(RuntimeError, match=r"nms: dets and scores must be on the same device"):
        nms(torch.zeros(3, 4, device="cuda"), torch.zeros(3), 0.5)
    with pytest.raises(RuntimeError, match=r"batched_nms: idxs and dets must be on the same device"):
        batched_nms(torch.zeros(3, 4, device="cuda"), torch.zeros(3, device="cuda"), torch.zeros(3).long(), 0.5)
