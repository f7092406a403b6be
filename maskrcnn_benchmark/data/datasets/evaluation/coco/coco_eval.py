"""COCO evaluation of a model's predictions (bbox, segm, keypoints, proposals), with faster-coco-eval or
pycocotools (backends.py; `TEST.COCO_EVAL_BACKEND`, docs/EVALUATION.md).

`predictions[i]` is the BoxList of dataset index i, in the network's input size (see prepare.py
for the box conventions of the written results: COCO xywh with the legacy `w = x2 - x1 + 1`), or
an `EncodedPredictions` (results encoded during inference, compact.py).
"""

import json
import logging
import os
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from .backends import DEFAULT_BACKEND, check_backend, run_cocoeval
from .compact import IOU_TYPES, EncodedPredictions, encode_predictions, result_dicts
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


def evaluate_predictions_on_coco(
    coco_gt: Any,
    coco_results: List[Dict[str, Any]],
    json_result_file: Optional[str] = None,
    iou_type: str = "bbox",
    backend: str = DEFAULT_BACKEND,
) -> Any:
    """Evaluate, accumulate and summarize `coco_results` against `coco_gt` (a pycocotools COCO).

    When `json_result_file` is given the results are also written there (the original wrote them and
    loaded them back; evaluating the dicts in memory gives the same numbers). `backend`:
    "faster_coco_eval" or "pycocotools". Returns the backend's summarized COCOeval (`.stats`,
    `.eval["precision"]`, `.params`); `coco_results` is not modified.
    """
    check_backend(backend)
    if json_result_file:
        with open(json_result_file, "w") as f:
            json.dump(coco_results, f)
    return run_cocoeval(coco_gt, coco_results, iou_type, backend)


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
    coco_eval_backend: str = DEFAULT_BACKEND,
    progress: bool = False,
) -> Optional[Tuple[COCOResults, Dict[str, List[Dict[str, Any]]]]]:
    """Evaluate `predictions` (list of BoxList in dataset order, or EncodedPredictions) on `dataset.coco`.

    `dataset.coco` holds the validated ground truth (COCODataset); what validation dropped from the
    annotation file is logged first and not evaluated.

    box_only (RPN-only models): AR@100/1000 for all/small/medium/large areas, saved as
    `box_proposals.pth`; returns None like the original (the numbers are logged and saved).
    Otherwise, for each iou_type in ("bbox", "segm", "keypoints"): converts the predictions (unless
    they come encoded), writes `<iou_type>.json` into output_folder (if given), runs COCOeval with
    `coco_eval_backend` ("faster_coco_eval" or "pycocotools", the same numbers), and collects the stats
    into a COCOResults (saved as `coco_results.pth`); with `per_class_ap` also the AP of each category
    (logged as a table, stored in `results.per_class[iou_type]`). Checks `expected_results` and returns
    `(results, {iou_type: list of result dicts})`. `progress`: tqdm bars for the encoding and COCOeval.
    """
    logger = logging.getLogger(LOGGER_NAME)
    log_validated_ground_truth(dataset, logger)
    check_backend(coco_eval_backend)
    if box_only:
        if isinstance(predictions, EncodedPredictions):
            raise ValueError("box_only (proposal) evaluation needs the predicted BoxLists, not EncodedPredictions")
        _evaluate_proposals(predictions, dataset, output_folder, expected_results, expected_results_sigma_tol)
        return None

    unknown = [t for t in iou_types if t not in IOU_TYPES]
    if unknown:
        raise ValueError("unknown iou_types {}; allowed: {}".format(unknown, list(IOU_TYPES)))

    if isinstance(predictions, EncodedPredictions):
        missing = [t for t in iou_types if t not in predictions.iou_types]
        if missing:
            raise ValueError(f"iou_types {missing} were not encoded (EncodedPredictions has {predictions.iou_types})")
        images = predictions.images
    else:
        logger.info("Preparing results for COCO format")
        start = time.perf_counter()
        images = encode_predictions(predictions, dataset, iou_types, progress=progress)
        logger.info("Encoding results: %.1f s (%d images)", time.perf_counter() - start, len(images))
    coco_results: Dict[str, List[Dict[str, Any]]] = OrderedDict((t, result_dicts(images, t)) for t in iou_types)

    results = COCOResults(*iou_types)
    logger.info("Evaluating predictions with %s", coco_eval_backend)
    for iou_type in iou_types:
        start = time.perf_counter()
        if output_folder:
            with open(os.path.join(output_folder, iou_type + ".json"), "w") as f:
                json.dump(coco_results[iou_type], f)
        coco_eval = run_cocoeval(
            dataset.coco, coco_results[iou_type], iou_type, coco_eval_backend, images=images, progress=progress
        )
        results.update(coco_eval)
        if per_class_ap:
            results.per_class[iou_type] = _per_class(coco_eval, iou_type, logger)
        logger.info("COCO evaluation (%s): %.1f s", iou_type, time.perf_counter() - start)
    logger.info(results)
    check_expected_results(results, expected_results, expected_results_sigma_tol)
    if output_folder:
        torch.save(results, os.path.join(output_folder, "coco_results.pth"))
        # The same numbers as plain JSON, readable without unpickling a Python object.
        with open(os.path.join(output_folder, "coco_results.json"), "w") as f:
            json.dump({"results": results.results, "per_class": results.per_class}, f, indent=1)
    return results, coco_results


def _per_class(coco_eval: Any, iou_type: str, logger: logging.Logger) -> "OrderedDict[str, float]":
    aps = compute_per_class_ap(coco_eval)
    logger.info(format_per_class_ap(iou_type, aps))
    return aps
