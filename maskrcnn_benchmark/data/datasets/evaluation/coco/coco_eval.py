"""COCO evaluation of a model's predictions with pycocotools (bbox, segm, keypoints, proposals).

`predictions[i]` is the BoxList of dataset index i, in the network's input size (see prepare.py
for the box conventions of the written results: COCO xywh with the legacy `w = x2 - x1 + 1`).
"""

import contextlib
import copy
import io
import json
import logging
import os
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .prepare import (  # noqa: F401  (re-exported: the original's module held them all)
    prepare_for_coco_detection,
    prepare_for_coco_keypoint,
    prepare_for_coco_segmentation,
)
from .proposals import evaluate_box_proposals  # noqa: F401
from .results import (  # noqa: F401
    LOGGER_NAME,
    COCOResults,
    check_expected_results,
    compute_per_class_ap,
    format_per_class_ap,
)

_PREPARE = {
    "bbox": prepare_for_coco_detection,
    "segm": prepare_for_coco_segmentation,
    "keypoints": prepare_for_coco_keypoint,
}


@contextlib.contextmanager
def _stdout_to_log(logger: logging.Logger):
    """pycocotools prints its progress and summary table; send them to the log instead so they
    also land in log files (and stay out of other processes' consoles)."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:  # also when pycocotools fails: what it printed helps to see why
        text = buf.getvalue().strip()
        if text:
            logger.info(text)


def _empty_results(coco_gt: COCO) -> COCO:
    """A detections COCO with no annotations: `loadRes([])` fails in pycocotools (it looks at
    the first result), and an empty result set must evaluate to AP 0, not crash."""
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(coco_gt.dataset.get("images", [])),
        "categories": copy.deepcopy(coco_gt.dataset.get("categories", [])),
        "annotations": [],
    }
    coco_dt.createIndex()
    return coco_dt


def evaluate_predictions_on_coco(
    coco_gt: COCO,
    coco_results: List[Dict[str, Any]],
    json_result_file: Optional[str] = None,
    iou_type: str = "bbox",
) -> COCOeval:
    """Run pycocotools' COCOeval (evaluate, accumulate, summarize) on `coco_results`.

    When `json_result_file` is given the results are written there and loaded back from it (the
    original's behaviour); otherwise a copy is loaded (loadRes adds keys to the dicts it gets).
    Returns the summarized COCOeval (`.stats`, `.eval["precision"]`).
    """
    logger = logging.getLogger(LOGGER_NAME)
    if json_result_file:
        with open(json_result_file, "w") as f:
            json.dump(coco_results, f)
    with _stdout_to_log(logger):
        if not coco_results:
            coco_dt = _empty_results(coco_gt)
        elif json_result_file:
            coco_dt = coco_gt.loadRes(str(json_result_file))
        else:
            coco_dt = coco_gt.loadRes(copy.deepcopy(coco_results))
        coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def _evaluate_proposals(
    predictions: Sequence[Any],
    dataset: Any,
    output_folder: Optional[str],
    expected_results: Sequence[Any],
    expected_results_sigma_tol: float,
) -> COCOResults:
    logger = logging.getLogger(LOGGER_NAME)
    logger.info("Evaluating bbox proposals")
    areas = {"all": "", "small": "s", "medium": "m", "large": "l"}
    res = COCOResults("box_proposal")
    for limit in (100, 1000):
        for area, suffix in areas.items():
            stats = evaluate_box_proposals(predictions, dataset, area=area, limit=limit)
            res.results["box_proposal"]["AR{}@{:d}".format(suffix, limit)] = float(stats["ar"])
    logger.info(res)
    check_expected_results(res, expected_results, expected_results_sigma_tol)
    if output_folder:
        torch.save(res, os.path.join(output_folder, "box_proposals.pth"))
    return res


def log_validated_ground_truth(dataset: Any, logger: logging.Logger) -> None:
    """Say so when the ground truth (`dataset.coco`, the validated annotation file) lacks entries
    of the file that validation dropped (DATASETS.ON_BAD_INPUT "skip")."""
    report = getattr(dataset, "validation_report", None)
    if report is not None and report.dropped_anything:
        logger.warning(report.evaluation_note())


def do_coco_evaluation(
    dataset: Any,
    predictions: Sequence[Any],
    box_only: bool,
    output_folder: Optional[str],
    iou_types: Sequence[str],
    expected_results: Sequence[Any],
    expected_results_sigma_tol: float,
    per_class_ap: bool = False,
) -> Optional[Tuple[COCOResults, Dict[str, List[Dict[str, Any]]]]]:
    """Evaluate `predictions` (list of BoxList, dataset order) on `dataset.coco`.

    `dataset.coco` holds the validated ground truth (COCODataset); what validation dropped from the
    annotation file is logged first and not evaluated.

    box_only (RPN-only models): AR@100/1000 for all/small/medium/large areas, saved as
    `box_proposals.pth`; returns None like the original (the numbers are logged and saved).
    Otherwise, for each iou_type in ("bbox", "segm", "keypoints"): converts the predictions,
    writes `<iou_type>.json` into output_folder (if given), runs COCOeval, and collects the
    stats into a COCOResults (saved as `coco_results.pth`); with `per_class_ap` also the AP of
    each category (logged as a table, stored in `results.per_class[iou_type]`). Checks
    `expected_results` and returns `(results, {iou_type: list of result dicts})`.
    """
    logger = logging.getLogger(LOGGER_NAME)
    log_validated_ground_truth(dataset, logger)
    if box_only:
        _evaluate_proposals(predictions, dataset, output_folder, expected_results, expected_results_sigma_tol)
        return None

    unknown = [t for t in iou_types if t not in _PREPARE]
    if unknown:
        raise ValueError("unknown iou_types {}; allowed: {}".format(unknown, list(_PREPARE)))

    logger.info("Preparing results for COCO format")
    coco_results: Dict[str, List[Dict[str, Any]]] = OrderedDict()
    for iou_type in iou_types:
        logger.info("Preparing {} results".format(iou_type))
        coco_results[iou_type] = _PREPARE[iou_type](predictions, dataset)

    results = COCOResults(*iou_types)
    logger.info("Evaluating predictions")
    for iou_type in iou_types:
        json_file = os.path.join(output_folder, iou_type + ".json") if output_folder else None
        coco_eval = evaluate_predictions_on_coco(dataset.coco, coco_results[iou_type], json_file, iou_type)
        results.update(coco_eval)
        if per_class_ap:
            results.per_class[iou_type] = _per_class(coco_eval, iou_type, logger)
    logger.info(results)
    check_expected_results(results, expected_results, expected_results_sigma_tol)
    if output_folder:
        torch.save(results, os.path.join(output_folder, "coco_results.pth"))
        # The same numbers as plain JSON, readable without unpickling a Python object.
        with open(os.path.join(output_folder, "coco_results.json"), "w") as f:
            json.dump({"results": results.results, "per_class": results.per_class}, f, indent=1)
    return results, coco_results


def _per_class(coco_eval: COCOeval, iou_type: str, logger: logging.Logger) -> "OrderedDict[str, float]":
    aps = compute_per_class_ap(coco_eval)
    logger.info(format_per_class_ap(iou_type, aps))
    return aps
