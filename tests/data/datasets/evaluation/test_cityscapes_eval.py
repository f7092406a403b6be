"""Cityscapes instance evaluation: the AP integration against hand-computed values, a partial case
computed by hand (threshold-dependent match, a missed and an ignored small instance, a false
positive, a prediction of another class), empty predictions, and a plain-Python re-implementation
of the definition in this file (brute-force matching of rectangles by their exact IoU, precision
and recall at each score) that the evaluator must agree with on a random scene. pycocotools'
COCOeval is not used as the reference: it interpolates precision over 101 recall points, so its AP
differs from the Cityscapes integration except in trivial cases. Also evaluate() on a tiny
CityScapesDataset tree (dispatch, result files, log) and the original's entry point."""

import importlib.util
import inspect
import json
import logging
import math
import os

import numpy as np
import pytest
import torch

from maskrcnn_benchmark.data.datasets import CityScapesDataset
from maskrcnn_benchmark.data.datasets.evaluation import evaluate
from maskrcnn_benchmark.data.datasets.evaluation.cityscapes import (
    abs_cityscapes_evaluation,
    average_precision,
    do_cityscapes_evaluation,
)
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

# The tiny Cityscapes tree of tests/data/datasets/test_cityscapes.py (tests are not packages here).
_spec = importlib.util.spec_from_file_location(
    "_cityscapes_tree",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test_cityscapes.py"),
)
_tree = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tree)

SIZE = (100, 100)  # (width, height)
PERSON, CAR = 1, 3
OVERLAPS = np.arange(0.5, 1.0, 0.05)


def _rect_masks(rects, size=SIZE):
    masks = torch.zeros((len(rects), size[1], size[0]), dtype=torch.uint8)
    for k, (x1, y1, x2, y2) in enumerate(rects):
        masks[k, y1 : y2 + 1, x1 : x2 + 1] = 1
    return masks


class RectDataset:
    """A stand-in for CityScapesDataset: images of SIZE whose instances are (label, (x1, y1, x2, y2))
    rectangles, inclusive pixels; the mask is the box."""

    CLASSES = CityScapesDataset.CLASSES

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def get_img_info(self, index):
        return {"width": SIZE[0], "height": SIZE[1]}

    def get_groundtruth(self, index):
        rects = [r for _, r in self.images[index]]
        target = BoxList(torch.tensor(rects, dtype=torch.float32).reshape(-1, 4), SIZE)
        target.add_field("labels", torch.tensor([lab for lab, _ in self.images[index]], dtype=torch.int64))
        target.add_field("masks", SegmentationMask(_rect_masks(rects), SIZE, mode="mask"))
        return target


def _prediction(dets, size=SIZE):
    """dets: [(label, (x1, y1, x2, y2), score)]; full-image masks [N, 1, H, W], as POSTPROCESS_MASKS gives."""
    rects = [r for _, r, _ in dets]
    p = BoxList(torch.tensor(rects, dtype=torch.float32).reshape(-1, 4), size)
    p.add_field("labels", torch.tensor([lab for lab, _, _ in dets], dtype=torch.int64))
    p.add_field("scores", torch.tensor([s for _, _, s in dets], dtype=torch.float32))
    p.add_field("mask", _rect_masks(rects, size)[:, None].float())
    return p


def _evaluate(images, dets, **kwargs):
    results, details = do_cityscapes_evaluation(
        RectDataset(images), [_prediction(d) for d in dets], False, None, ("bbox", "segm"), **kwargs
    )
    return results, details


# --------------------------------------------------------------------------- the AP integration


def test_average_precision_hand_computed():
    # Scores 0.9 (tp), 0.8 (fp), 0.7 (tp). Points (precision, recall) from the lowest score up:
    # (2/3, 1), (1/2, 1/2), (1, 1/2), then (1, 0). Widths (r_prev - r_next) / 2: 1/4 each.
    assert average_precision([True, False, True], [0.9, 0.8, 0.7], 2) == pytest.approx(19 / 24)
    # A third instance never found: every recall times 2/3.
    assert average_precision([True, False, True], [0.9, 0.8, 0.7], 3) == pytest.approx(19 / 36)
    assert average_precision([True], [0.3], 1) == pytest.approx(1.0)
    # Equal scores form one point: (1/2, 1), then (1, 0).
    assert average_precision([True, False], [0.5, 0.5], 1) == pytest.approx(0.5 * 0.5 + 1 * 0.5)
    assert average_precision([], [], 2) == 0.0
    assert math.isnan(average_precision([], [], 0))


# --------------------------------------------------------------------------- hand-computed cases

A, B, C = (0, 0, 19, 19), (40, 0, 59, 19), (0, 50, 19, 69)  # cars of 400 pixels
B_SHIFTED = (45, 0, 64, 19)  # IoU with B: 300 / 500 = 0.6 exactly
SMALL = (80, 80, 84, 84)  # 25 pixels: below the 100-pixel minimum region size, ignored
PARTIAL_GT = [[(CAR, A), (CAR, B)], [(CAR, C), (CAR, SMALL)]]
PARTIAL_DETS = [
    [(CAR, A, 0.9), (CAR, (70, 70, 89, 89), 0.8), (CAR, B_SHIFTED, 0.6), (PERSON, A, 0.99)],
    [(CAR, C, 0.7), (CAR, SMALL, 0.95)],
]


def test_partial_case_hand_computed():
    results, details = _evaluate(PARTIAL_GT, PARTIAL_DETS)
    # IoU > t is strict: the shifted prediction matches B at t = 0.5 and 0.55 only.
    # t <= 0.55: 0.9 tp, 0.8 fp, 0.7 tp, 0.6 tp, 3 cars -> points (3/4, 1), (2/3, 2/3), (1/2, 1/3),
    #   (1, 1/3), (1, 0) with widths 1/6, 1/3, 1/6, 1/6, 1/6: AP = 55/72.
    # t >= 0.6: 0.6 becomes a false positive and B is missed: AP = 19/36 (as in the test above).
    # The 0.95 prediction on the small car is ignored, not a false positive; the person prediction
    # on car A is not matched to it (matching is per class) and there is no person ground truth.
    expected = np.array([55 / 72] * 2 + [19 / 36] * 8)
    for task in ("bbox", "segm"):
        ap = np.array(details[task]["resultApMatrix"])  # [region sizes, classes, overlaps]
        assert ap.shape == (1, 10, 10)
        np.testing.assert_allclose(ap[0, CAR - 1], expected)
        assert np.isnan(ap[0, PERSON - 1]).all() and np.isnan(ap[0, 4]).all()
        assert results.results[task]["AP"] == pytest.approx(expected.mean())
        assert results.results[task]["AP50"] == pytest.approx(55 / 72)
        assert results.results[task]["AP75"] == pytest.approx(19 / 36)
        averages = details[task]["averages"]
        assert averages["classes"]["car"]["ap50%"] == pytest.approx(55 / 72)
        assert math.isnan(averages["classes"]["person"]["ap"])
        assert details[task]["instLabels"][CAR - 1] == "car" and "__background__" not in details[task]["instLabels"]


def test_min_region_size_and_duplicates():
    # The small car counts once the minimum region size allows it; a duplicate is a false positive.
    gt = [[(CAR, A), (CAR, SMALL)]]
    dets = [[(CAR, A, 0.9), (CAR, A, 0.5), (CAR, SMALL, 0.7)]]
    _, details = _evaluate(gt, dets, min_region_sizes=np.array([10]))
    # 0.9 tp, 0.7 tp, 0.5 fp, 2 cars: points (2/3, 1), (1, 1), (1, 1/2), (1, 0) with widths
    # (1 - 1)/2 = 0, (1 - 1/2)/2 = 1/4, (1 - 0)/2 = 1/2, (1/2 - 0)/2 = 1/4: AP = 1 (the false
    # positive scores below every true positive).
    np.testing.assert_allclose(details["segm"]["resultApMatrix"][0][CAR - 1], 1.0)
    _, details = _evaluate(gt, dets)  # default 100 pixels: the small car is ignored, so is its prediction
    np.testing.assert_allclose(details["segm"]["resultApMatrix"][0][CAR - 1], 1.0)


def test_perfect_and_empty_predictions():
    gt = [[(CAR, A), (PERSON, B)], [(CAR, C)]]
    perfect = [[(lab, r, 0.8) for lab, r in img] for img in gt]
    results, _ = _evaluate(gt, perfect)
    for task in ("bbox", "segm"):
        assert results.results[task] == {"AP": 1.0, "AP50": 1.0, "AP75": 1.0}
        assert results.per_class[task]["car"] == 1.0 and math.isnan(results.per_class[task]["bus"])
    results, details = _evaluate(gt, [[], []])
    for task in ("bbox", "segm"):
        assert results.results[task] == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
        ap = np.array(details[task]["resultApMatrix"])[0]
        assert (ap[[PERSON - 1, CAR - 1]] == 0).all() and np.isnan(np.delete(ap, [PERSON - 1, CAR - 1], axis=0)).all()


# --------------------------------------------------------------------------- independent re-implementation


def _area(r):
    return (r[2] - r[0] + 1) * (r[3] - r[1] + 1)


def _inter(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    return max(w, 0) * max(h, 0)


def _iou(a, b):
    i = _inter(a, b)
    return i / (_area(a) + _area(b) - i)


def reference_ap(gt, dets, label, t, min_size=100):
    """The Cityscapes AP of one class, written out directly from its definition."""
    tps, fps, num_gt, any_pred = [], [], 0, False
    for g_img, d_img in zip(gt, dets):
        gts = [r for lab, r in g_img if lab == label]
        preds = [(r, s) for lab, r, s in d_img if lab == label]
        any_pred = any_pred or bool(preds)
        for g in gts:
            if _area(g) < min_size:
                continue
            num_gt += 1
            found = sorted((s for r, s in preds if _iou(g, r) > t), reverse=True)
            tps += found[:1]
            fps += found[1:]
        for r, s in preds:
            if any(_iou(g, r) > t for g in gts):
                continue
            if sum(_inter(g, r) for g in gts if _area(g) < min_size) / _area(r) > t:
                continue
            fps.append(s)
    if num_gt == 0:
        return float("nan")
    if not any_pred:
        return 0.0
    # (precision, recall) at each distinct score from the highest down, after the point (1, 0).
    curve = [(1.0, 0.0)]
    for s in sorted(set(tps + fps), reverse=True):
        tp, fp = sum(x >= s for x in tps), sum(x >= s for x in fps)
        curve.append((tp / (tp + fp), tp / num_gt))
    total = 0.0
    for k, (p, _) in enumerate(curve):
        before = curve[k - 1][1] if k > 0 else 0.0
        after = curve[k + 1][1] if k + 1 < len(curve) else curve[k][1]
        total += p * (after - before) / 2
    return total


def _random_scene(seed, num_images=4):
    rng = np.random.RandomState(seed)
    gt, dets = [], []
    for _ in range(num_images):
        g_img, d_img = [], []
        for _ in range(rng.randint(0, 5)):
            w, h = rng.randint(4, 30, size=2)
            x, y = rng.randint(0, SIZE[0] - w), rng.randint(0, SIZE[1] - h)
            label = int(rng.choice([PERSON, CAR]))
            g_img.append((label, (int(x), int(y), int(x + w - 1), int(y + h - 1))))
            for _ in range(rng.randint(0, 3)):  # jittered copies: matches at some thresholds, duplicates
                dx, dy = rng.randint(-3, 4, size=2)
                r = (
                    int(max(x + dx, 0)),
                    int(max(y + dy, 0)),
                    int(min(x + w - 1 + dx, 99)),
                    int(min(y + h - 1 + dy, 99)),
                )
                d_img.append((label, r, float(rng.randint(1, 10)) / 10))  # tenths: tied scores happen
        for _ in range(rng.randint(0, 3)):  # background detections
            x, y = rng.randint(0, 80, size=2)
            d_img.append((int(rng.choice([PERSON, CAR])), (int(x), int(y), int(x + 15), int(y + 12)), 0.35))
        gt.append(g_img)
        dets.append(d_img)
    return gt, dets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_a_direct_reimplementation(seed):
    gt, dets = _random_scene(seed)
    _, details = _evaluate(gt, dets)
    for task in ("bbox", "segm"):  # rectangles: the mask IoU equals the inclusive box IoU
        ap = np.array(details[task]["resultApMatrix"])[0]
        for label in (PERSON, CAR):
            expected = [reference_ap(gt, dets, label, t) for t in OVERLAPS]
            np.testing.assert_allclose(ap[label - 1], expected, err_msg=f"{task} class {label}")


# --------------------------------------------------------------------------- on a CityScapesDataset


def _perfect_predictions(ds, scale=1):
    preds = []
    for i in range(len(ds)):
        gt = ds.get_groundtruth(i)
        w, h = gt.size
        p = BoxList(gt.bbox.clone(), gt.size)
        p.add_field("labels", gt.get_field("labels"))
        p.add_field("scores", torch.full((len(gt),), 0.9))
        p.add_field("mask", gt.get_field("masks").get_mask_tensor().reshape(len(gt), 1, h, w).float())
        preds.append(p.resize((w * scale, h * scale)) if scale != 1 else p)
    return preds


def test_evaluate_on_the_dataset(tmp_path, caplog):
    img_root, ann_root = _tree.write_cityscapes(str(tmp_path))
    ds = CityScapesDataset(img_root, ann_root, "train", mode="poly")
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="maskrcnn_benchmark.inference"):
        results, details = evaluate(ds, _perfect_predictions(ds), str(out), iou_types=("bbox", "segm"))
    for task in ("bbox", "segm"):
        assert results.results[task]["AP"] == 1.0
    # The bicycle (4 x 3 pixels) is below the minimum region size: no counted ground truth, NaN.
    assert math.isnan(results.per_class["segm"]["bicycle"]) and results.per_class["segm"]["caravan"] == 1.0
    assert "Mask" in caplog.text and "average" in caplog.text and "car" in caplog.text
    folder = out / "evaluationResults"
    assert json.loads((folder / "maskResult.json").read_text())["averages"]["allAp"] == 1.0
    assert set(json.loads((folder / "boxResult.json").read_text())) == {
        "averages",
        "overlaps",
        "minRegionSizes",
        "instLabels",
        "resultApMatrix",
    }
    matches = json.loads((folder / "matches.json").read_text())
    car = matches[0]["groundTruth"]["car"][0]
    assert car["pixelCount"] == 160 and car["matchedPred"] == [
        {"predID": 0, "boxIntersection": 17.0 * 11, "maskIntersection": 160}
    ]


def test_mask_mode_predictions_at_input_size_and_options(tmp_path, caplog):
    img_root, ann_root = _tree.write_cityscapes(str(tmp_path))
    ds = CityScapesDataset(img_root, ann_root, "train", mode="mask")
    results, _ = abs_cityscapes_evaluation(ds, _perfect_predictions(ds, scale=2), False, None, ("segm",), (), 4)
    assert list(results.results) == ["segm"] and results.results["segm"]["AP"] == 1.0
    with caplog.at_level(logging.WARNING):
        assert evaluate(ds, [], None, box_only=True, iou_types=("bbox",)) is None
    assert "box-only" in caplog.text
    with pytest.raises(ValueError, match="2 predictions for a dataset of 3"):
        evaluate(ds, _perfect_predictions(ds)[:2], None, iou_types=("bbox",))


def test_the_original_entry_point():
    params = list(inspect.signature(abs_cityscapes_evaluation).parameters)
    assert params[:7] == [
        "dataset",
        "predictions",
        "box_only",
        "output_folder",
        "iou_types",
        "expected_results",
        "expected_results_sigma_tol",
    ]
