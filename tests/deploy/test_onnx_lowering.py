"""The ONNX lowerings of the library's ops (deploy/onnx_lowering.py) run by onnxruntime against the
ops themselves: NMS with the legacy +1 IoU (ties, exact thresholds, groups, no boxes), ROIAlign
(the original's non-aligned one and the aligned one, fixed and adaptive sampling), the stable sort."""

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

import maskrcnn_benchmark.layers  # noqa: F401  (registers the ops and their fake kernels)
from maskrcnn_benchmark.deploy.onnx_lowering import float32_threshold, translation_table

ops = torch.ops.maskrcnn_benchmark
THRESHOLDS = (0.3, 0.5, 0.7)  # 0.3 rounds up in float32, 0.7 down, 0.5 is exact
ROI_ALIGNS = ((0.25, 7, 2, False), (1 / 16, 14, 0, False), (0.5, 5, 2, True))


class _Ops(nn.Module):
    def forward(self, boxes, scores, idxs, values, features, rois):
        kept = tuple(ops.batched_nms(boxes, scores, idxs, t) for t in THRESHOLDS)
        pooled = tuple(ops.roi_align_forward(features, rois, s, n, n, r, a) for s, n, r, a in ROI_ALIGNS)
        ascending = torch.sort(values, stable=True).indices
        descending = torch.sort(values, stable=True, descending=True).indices
        return (*kept, *pooled, ascending, descending)


def _example(n_boxes: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n_boxes, 2, generator=g) * 60
    wh = torch.rand(n_boxes, 2, generator=g) * 30
    boxes = torch.cat((xy, xy + wh), 1)
    scores = torch.rand(n_boxes, generator=g)
    idxs = torch.randint(-2, 3, (n_boxes,), generator=g)
    values = torch.randint(0, 4, (n_boxes,), generator=g).float()  # many ties
    features = torch.randn(2, 3, 24, 32, generator=g)
    rois = torch.cat((torch.randint(0, 2, (n_boxes, 1), generator=g).float(), boxes * 1.5 - 10), 1)
    return boxes, scores, idxs, values, features, rois


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    n, c = torch.export.Dim("n", min=0, max=4096), torch.export.Dim("c", min=1, max=64)
    shapes = ({0: n}, {0: n}, {0: n}, {0: n}, {1: c}, {0: n})
    program = torch.export.export(_Ops(), _example(50, 0), dynamic_shapes=shapes, strict=False)
    path = str(tmp_path_factory.mktemp("lowering") / "ops.onnx")
    torch.onnx.export(program, dynamo=True, custom_translation_table=translation_table(), opset_version=18).save(path)
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


def _run(session, inputs):
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
    got = [torch.from_numpy(v) for v in session.run(None, feed)]
    with torch.no_grad():
        expected = _Ops()(*inputs)
    return got, expected


def _check(got, expected):
    for i in range(len(THRESHOLDS)):
        assert got[i].tolist() == expected[i].tolist(), f"NMS at {THRESHOLDS[i]}"
    for i in range(len(ROI_ALIGNS)):
        torch.testing.assert_close(got[3 + i], expected[3 + i], atol=1e-5, rtol=1e-5)
    assert got[-2].tolist() == expected[-2].tolist() and got[-1].tolist() == expected[-1].tolist()


@pytest.mark.parametrize("n_boxes, seed", [(2000, 1), (300, 2), (1, 3)])
def test_random_boxes(session, n_boxes, seed):
    got, expected = _run(session, _example(n_boxes, seed))
    assert len(expected[0]) < n_boxes or n_boxes == 1  # something was suppressed
    _check(got, expected)


def test_exact_ties_and_thresholds(session):
    # Integer boxes: +1 IoUs of exactly 0.5 (area 50 inside 100) and 30 / 100 (float32 0.30000001,
    # above 0.3: suppressed at 0.3 as a float64 comparison says), and equal scores.
    boxes = torch.tensor(
        [[0, 0, 9, 9], [0, 0, 9, 4], [20, 20, 29, 29], [20, 20, 29, 29], [40, 40, 49, 49], [40, 40, 42, 49]],
        dtype=torch.float32,
    )
    scores = torch.tensor([0.9, 0.8, 0.5, 0.5, 0.7, 0.7])
    idxs = torch.zeros(6, dtype=torch.int64)
    _, _, _, values, features, rois = _example(6, 4)
    got, expected = _run(session, (boxes, scores, idxs, values, features, rois))
    assert expected[1].tolist() == [0, 1, 2, 4, 5]  # IoU 0.5 is not > 0.5; the tie keeps index 2
    assert expected[0].tolist() == [0, 2, 4]
    _check(got, expected)


def test_no_boxes(session):
    got, expected = _run(session, _example(0, 5))
    assert all(len(g) == 0 for g in got[:3])
    _check(got, expected)


def test_float32_threshold_matches_a_float64_comparison():
    for threshold in (0.3, 0.5, 0.7, 0.1, 1 / 3):
        t = np.float32(float32_threshold(threshold))
        around = [np.nextafter(t, np.float32(d)) for d in (-1, 1)] + [t, np.float32(threshold)]
        for v in around:
            assert (v > t) == (float(v) > threshold), (threshold, v)
