"""VOC evaluation: per-class AP against hand-computed values (11-point and area under the curve),
difficult objects, the IoU threshold with the +1 rule, and do_voc_evaluation / evaluate() on a tiny
VOCdevkit tree (result.txt, log)."""

import importlib.util
import logging
import math
import os

import numpy as np
import pytest
import torch

from maskrcnn_benchmark.data.datasets import PascalVOCDataset
from maskrcnn_benchmark.data.datasets.evaluation import evaluate
from maskrcnn_benchmark.data.datasets.evaluation.voc import do_voc_evaluation, eval_detection_voc
from maskrcnn_benchmark.structures.bounding_box import BoxList

# The tiny VOCdevkit tree of tests/data/datasets/test_voc.py (tests are not packages here).
_spec = importlib.util.spec_from_file_location(
    "_voc_tree", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test_voc.py")
)
_voc_tree = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_voc_tree)
IMAGES, write_voc = _voc_tree.IMAGES, _voc_tree.write_voc

SIZE = (100, 100)


def _gt(boxes, labels, difficult=None):
    b = BoxList(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), SIZE)
    b.add_field("labels", torch.tensor(labels, dtype=torch.int64))
    b.add_field("difficult", torch.tensor(difficult or [False] * len(labels), dtype=torch.bool))
    return b


def _pred(boxes, labels, scores, size=SIZE):
    b = BoxList(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), size)
    b.add_field("labels", torch.tensor(labels, dtype=torch.int64))
    b.add_field("scores", torch.tensor(scores, dtype=torch.float32))
    return b


def _box(k):
    """Disjoint boxes, one per k."""
    return [10 * k, 0, 10 * k + 8, 8]


def test_perfect_predictions_give_ap_one():
    gts = [_gt([_box(0), _box(1)], [1, 2]), _gt([_box(3)], [1])]
    preds = [_pred([_box(0), _box(1)], [1, 2], [0.9, 0.8]), _pred([_box(3)], [1], [0.7])]
    for metric in (True, False):
        result = eval_detection_voc(preds, gts, use_07_metric=metric)
        assert math.isnan(result["ap"][0]) and result["ap"][1:].tolist() == [1.0, 1.0]
        assert result["map"] == 1.0


def test_known_curve_11_point_and_area():
    # One class, 4 non-difficult boxes and 1 difficult one over two images. Detections by score:
    #   d1 TP, d2 FP (no overlap), d3 TP, d4 on the difficult box (ignored), d5 FP (a duplicate of
    #   d1's box), d6 TP; the fourth box is never found.
    # precision after each: 1, 1/2, 2/3, 2/3, 1/2, 3/5;   recall: 1/4, 1/4, 2/4, 2/4, 2/4, 3/4
    gts = [
        _gt([_box(0), _box(1), _box(2)], [1, 1, 1]),
        _gt([_box(3), _box(4)], [1, 1], [False, True]),
    ]
    preds = [
        _pred([_box(0), _box(7), _box(1), _box(0)], [1, 1, 1, 1], [0.95, 0.9, 0.85, 0.7]),
        _pred([_box(4), _box(3)], [1, 1], [0.8, 0.6]),
    ]
    # 11 points: t = 0, .1, .2 -> 1;  t = .3, .4, .5 -> 2/3;  t = .6, .7 -> 3/5;  t = .8, .9, 1 -> 0
    ap07 = (3 * 1 + 3 * (2 / 3) + 2 * (3 / 5)) / 11
    # Area: precision made non-increasing from the right is 1 up to recall 1/4, 2/3 up to 2/4,
    # 3/5 up to 3/4 and 0 after.
    auc = 0.25 * 1 + 0.25 * (2 / 3) + 0.25 * (3 / 5)
    assert ap07 == pytest.approx(0.5636363636) and auc == pytest.approx(17 / 30)
    r07 = eval_detection_voc(preds, gts, use_07_metric=True)
    rauc = eval_detection_voc(preds, gts, use_07_metric=False)
    assert r07["ap"][1] == pytest.approx(ap07, abs=1e-12) and r07["map"] == pytest.approx(ap07, abs=1e-12)
    assert rauc["ap"][1] == pytest.approx(auc, abs=1e-12) and rauc["map"] == pytest.approx(auc, abs=1e-12)


def test_eleven_point_thresholds_are_floating_point_tenths():
    # 10 boxes, 3 found (precision 1): recall 0.3 reaches t = 0, 0.1, 0.2 but not 3 * 0.1 in
    # floating point (0.30000000000000004), as in the VOC2007 devkit.
    gts = [_gt([_box(k) for k in range(10)], [1] * 10)]
    preds = [_pred([_box(k) for k in range(3)], [1] * 3, [0.9, 0.8, 0.7])]
    assert eval_detection_voc(preds, gts, use_07_metric=True)["ap"][1] == pytest.approx(3 / 11)
    assert eval_detection_voc(preds, gts, use_07_metric=False)["ap"][1] == pytest.approx(0.3)


def test_iou_threshold_uses_inclusive_pixels():
    gts = [_gt([[0, 0, 9, 9]], [1])]  # 10 x 10 pixels
    # 10 x 5 pixels inside it: IoU exactly 0.5 with the +1 rule (0.44 without) -> a match
    assert eval_detection_voc([_pred([[0, 0, 9, 4]], [1], [0.9])], gts)["map"] == 1.0
    # 10 x 4 pixels: IoU 0.4 -> a false positive
    assert eval_detection_voc([_pred([[0, 0, 9, 3]], [1], [0.9])], gts)["map"] == 0.0
    assert eval_detection_voc([_pred([[0, 0, 9, 3]], [1], [0.9])], gts, iou_thresh=0.4)["map"] == 1.0


def test_classes_without_ground_truth_or_detections():
    gts = [_gt([_box(0)], [2])]
    preds = [_pred([_box(0), _box(5)], [2, 3], [0.9, 0.8])]
    result = eval_detection_voc(preds, gts, num_classes=5)
    ap = result["ap"]
    assert len(ap) == 5 and ap[2] == 1.0
    assert math.isnan(ap[1]) and math.isnan(ap[3]) and math.isnan(ap[4])  # no ground truth: left out
    assert result["map"] == 1.0
    # Ground truth without any detection: AP 0.
    assert eval_detection_voc([_pred([], [], [])], gts)["ap"][2] == 0.0
    with pytest.raises(ValueError):
        eval_detection_voc(preds, gts + gts)
    with pytest.raises(KeyError, match="labels"):
        eval_detection_voc([BoxList(torch.zeros(0, 4), SIZE)], gts)


def _predictions_from_ground_truth(ds, scale=0.5):
    """The dataset's ground truth (difficult ones included), as network outputs at half size."""
    preds = []
    for i in range(len(ds)):
        gt = ds.get_groundtruth(i, use_difficult=True)
        w, h = gt.size
        p = _pred(gt.bbox.tolist(), gt.get_field("labels").tolist(), [0.9] * len(gt), size=(w, h))
        preds.append(p.resize((round(w * scale), round(h * scale))))
    return preds


def test_do_voc_evaluation_on_a_dataset(tmp_path, caplog):
    ds = PascalVOCDataset(write_voc(tmp_path / "VOC2007"), "train")  # built without the difficult objects
    preds = _predictions_from_ground_truth(ds)
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="maskrcnn_benchmark.inference"):
        result = evaluate(ds, preds, str(out))
    # Every object found; the detection on the difficult person is ignored, not a false positive.
    labels = sorted({PascalVOCDataset.CLASSES.index(o[0]) for _, _, objs in IMAGES.values() for o in objs if not o[1]})
    assert len(result["ap"]) == 21 and result["map"] == 1.0
    assert np.nonzero(~np.isnan(result["ap"]))[0].tolist() == labels
    assert "mAP: 1.0000" in caplog.text
    text = (out / "result.txt").read_text().splitlines()
    assert text[0] == "mAP: 1.0000" and len(text) == 21
    assert text[12] == "dog             : 1.0000" and text[1] == "aeroplane       : nan"

    # Dropping the dog detection: the dog's AP is 0 and the mean is over the 4 classes present.
    preds[0] = preds[0][preds[0].get_field("labels") != 12]
    result = do_voc_evaluation(ds, preds, None, use_07_metric=False)
    assert result["ap"][12] == 0.0 and result["map"] == pytest.approx(3 / 4)
    assert not os.path.exists(tmp_path / "none")


def test_box_only_is_not_supported(tmp_path, caplog):
    ds = PascalVOCDataset(write_voc(tmp_path / "VOC2007"), "train")
    with caplog.at_level(logging.WARNING):
        assert evaluate(ds, [], None, box_only=True, iou_types=("bbox",)) is None
    assert "box-only" in caplog.text
