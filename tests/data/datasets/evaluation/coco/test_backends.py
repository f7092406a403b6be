"""coco/backends.py: faster-coco-eval gives pycocotools' numbers exactly (stats, the precision and recall
arrays, per-class AP) on crowd regions, images without ground truth or detections, categories without
either, more detections than maxDets, tied scores, every area range, bbox / segm / keypoints; it does so
thanks to precision_fix.py; neither backend changes the results or the ground truth it is given."""

import copy
import os
import sys

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.config.checks import check_config
from maskrcnn_benchmark.config.config_file import ConfigValueError
from maskrcnn_benchmark.data.datasets.evaluation.coco import backends
from maskrcnn_benchmark.data.datasets.evaluation.coco.backends import run_cocoeval
from maskrcnn_benchmark.data.datasets.evaluation.coco.compact import encode_predictions, result_dicts
from maskrcnn_benchmark.data.datasets.evaluation.coco.results import compute_per_class_ap

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 5, "benchmarks")
sys.path.insert(0, os.path.abspath(BENCHMARKS))
import synthetic_coco  # noqa: E402


def _add_crowd(gt, image_index, category_id):
    image = gt["images"][image_index]
    h, w = image["height"], image["width"]
    pixels = np.zeros((h, w), dtype=np.uint8, order="F")
    pixels[h // 4 : h // 2, w // 4 : w // 2] = 1
    rle = mask_util.encode(pixels)
    ann = {"image_id": image["id"], "category_id": category_id, "iscrowd": 1, "area": float(mask_util.area(rle))}
    ann.update(
        {"bbox": [float(v) for v in mask_util.toBbox(rle)], "num_keypoints": 0, "id": len(gt["annotations"]) + 1}
    )
    ann["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode()}
    if "keypoints" in gt["categories"][0]:
        ann["keypoints"] = [0] * 51
    gt["annotations"].append(ann)


def _scenario(keypoints: bool):
    """(dataset, {iou_type: results}, ImageResults) with the edge cases of the module docstring."""
    n = 10
    gt = synthetic_coco.make_ground_truth(n, seed=11, keypoints=keypoints)
    first_cat = gt["categories"][0]["id"]
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] != gt["images"][1]["id"]]  # no ground truth
    _add_crowd(gt, 0, gt["annotations"][0]["category_id"])
    _add_crowd(gt, 3, first_cat)
    dataset = synthetic_coco.COCODataset(gt)
    preds = list(synthetic_coco.iter_predictions(gt, range(n), seed=11, dets_per_image=40, masks=not keypoints))
    preds[4] = preds[4][:0]  # an image without detections
    many = preds[2]  # 130 detections of one category: more than maxDets (100 / 20)
    preds[2] = many[torch.arange(130) % len(many)]
    preds[2].add_field("labels", torch.full((130,), int(many.get_field("labels")[0])))
    for p in preds[5:8]:  # tied scores, across and within images
        p.add_field("scores", torch.round(p.get_field("scores") * 4) / 4)
    iou_types = ("bbox", "keypoints") if keypoints else ("bbox", "segm")
    images = encode_predictions(preds, dataset, iou_types)
    return dataset, {t: result_dicts(images, t) for t in iou_types}, images


@pytest.fixture(scope="module")
def scenarios():
    return {False: _scenario(False), True: _scenario(True)}


@pytest.mark.parametrize("keypoints, iou_type", [(False, "bbox"), (False, "segm"), (True, "keypoints")])
def test_faster_coco_eval_gives_pycocotools_numbers(scenarios, keypoints, iou_type):
    dataset, results, images = scenarios[keypoints]
    kept_results = copy.deepcopy(results[iou_type])
    kept_gt = copy.deepcopy(dataset.coco.dataset)
    faster = run_cocoeval(dataset.coco, results[iou_type], iou_type, "faster_coco_eval", images=images)
    assert results[iou_type] == kept_results and dataset.coco.dataset == kept_gt  # nothing changed in place
    plain = run_cocoeval(dataset.coco, results[iou_type], iou_type, "pycocotools")
    assert 0.05 < plain.stats[0] < 0.95  # imperfect detections: not a degenerate case
    assert len(faster.stats) == (10 if iou_type == "keypoints" else 12)
    np.testing.assert_array_equal(faster.stats, plain.stats)
    np.testing.assert_array_equal(faster.eval["precision"], plain.eval["precision"])
    np.testing.assert_array_equal(faster.eval["recall"], plain.eval["recall"])
    assert compute_per_class_ap(faster) == compute_per_class_ap(plain)
    # without the segm ImageResults (areas and boxes recomputed from the RLEs): the same
    np.testing.assert_array_equal(run_cocoeval(dataset.coco, results[iou_type], iou_type).stats, plain.stats)


def test_without_the_precision_fix_the_arrays_differ(scenarios, monkeypatch):
    dataset, results, images = scenarios[False]
    plain = run_cocoeval(dataset.coco, results["bbox"], "bbox", "pycocotools")
    monkeypatch.setattr(backends, "fix_precision", lambda *args: 0)
    raw = run_cocoeval(dataset.coco, results["bbox"], "bbox", "faster_coco_eval", images=images)
    differ = raw.eval["precision"] != plain.eval["precision"]
    assert differ.any()
    assert set(raw.eval["precision"][differ].tolist()) == {1.0}  # 1.0 where pycocotools has 1 - 2**-52
    assert set(plain.eval["precision"][differ].tolist()) == {1.0 / (1.0 + np.spacing(1))}


@pytest.mark.parametrize("backend", ["faster_coco_eval", "pycocotools"])
def test_no_results_give_zero_ap(scenarios, backend):
    dataset, _, _ = scenarios[False]
    coco_eval = run_cocoeval(dataset.coco, [], "segm", backend)
    assert coco_eval.stats[0] == 0.0 and coco_eval.stats[1] == 0.0


def test_unknown_backend_fails_naming_the_config_key(scenarios):
    dataset, results, _ = scenarios[False]
    with pytest.raises(
        ValueError, match="TEST.COCO_EVAL_BACKEND is 'cocoapi'; allowed: 'faster_coco_eval', 'pycocotools'"
    ):
        run_cocoeval(dataset.coco, results["bbox"], "bbox", "cocoapi")
    cfg = default_cfg.clone()
    assert cfg.TEST.COCO_EVAL_BACKEND == "faster_coco_eval"
    cfg.MODEL.DEVICE = "cpu"
    check_config(cfg)
    cfg.TEST.COCO_EVAL_BACKEND = "cocoapi"
    with pytest.raises(ConfigValueError, match="TEST.COCO_EVAL_BACKEND is 'cocoapi'"):
        check_config(cfg)


def test_results_of_unknown_images_fail(scenarios):
    dataset, results, _ = scenarios[False]
    bad = [dict(results["bbox"][0], image_id=-5)]
    with pytest.raises(ValueError, match=r"image ids \[-5\]"):
        run_cocoeval(dataset.coco, bad, "bbox", "faster_coco_eval")
