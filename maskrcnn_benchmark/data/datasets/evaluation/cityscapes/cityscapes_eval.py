"""Cityscapes instance-level evaluation of a CityScapesDataset: box and mask AP over IoU 0.5:0.95
(step 0.05), AP50 and AP75, per class and averaged (average_precision.py has the definition).

Every class of the dataset but the background is evaluated, caravan and trailer included (the
official benchmark leaves those two out, the original did not). With an output folder the original's
files are written to `<output_folder>/evaluationResults/`: matches.json (the per-image overlaps),
boxResult.json and maskResult.json (`{"averages", "overlaps", "minRegionSizes", "instLabels",
"resultApMatrix"}`).
"""

import json
import logging
import os
from collections import OrderedDict
from typing import Any, Dict, Optional, Sequence, Tuple

from ..coco.results import check_expected_results
from .average_precision import (
    DEFAULT_MIN_REGION_SIZES,
    DEFAULT_OVERLAPS,
    compute_averages,
    evaluate_matches,
    format_results,
    results_json,
)
from .matching import KINDS, match_dataset

LOGGER_NAME = "maskrcnn_benchmark.inference"
_TITLES = {"bbox": "BBox", "segm": "Mask"}
_FILES = {"bbox": "boxResult.json", "segm": "maskResult.json"}


class CityscapesResults:
    """The headline numbers of each evaluated task, as fractions in [0, 1] (NaN: no ground truth).

    `results[task]` is {"AP", "AP50", "AP75"} (task "bbox" or "segm"), the layout COCOResults uses,
    so that the expected-results check and the training-time validation log read both alike;
    `per_class[task]` maps class name to AP.
    """

    METRICS = ("AP", "AP50", "AP75")

    def __init__(self) -> None:
        self.results: "OrderedDict[str, OrderedDict[str, float]]" = OrderedDict()
        self.per_class: "OrderedDict[str, OrderedDict[str, float]]" = OrderedDict()

    def add(self, task: str, averages: Dict[str, Any]) -> None:
        values = (averages["allAp"], averages["allAp50%"], averages["allAp75%"])
        self.results[task] = OrderedDict(zip(self.METRICS, values))
        self.per_class[task] = OrderedDict((name, c["ap"]) for name, c in averages["classes"].items())

    def __repr__(self) -> str:
        lines = [""]
        for task, metrics in self.results.items():
            lines += [f"Task: {task}", ", ".join(metrics), ", ".join(f"{v:.4f}" for v in metrics.values())]
        return "\n".join(lines) + "\n"


def _has_masks(predictions: Sequence[Any]) -> bool:
    return all("mask" in p.fields() for p in predictions if len(p) > 0)


def _write_json(data: Any, path: str) -> None:
    with open(path, "w") as f:
        json.dump(data, f)


def do_cityscapes_evaluation(
    dataset: Any,
    predictions: Sequence[Any],
    box_only: bool,
    output_folder: Optional[str],
    iou_types: Sequence[str],
    expected_results: Sequence[Any] = (),
    expected_results_sigma_tol: float = 4,
    overlaps: Sequence[float] = DEFAULT_OVERLAPS,
    min_region_sizes: Sequence[float] = DEFAULT_MIN_REGION_SIZES,
) -> Optional[Tuple[CityscapesResults, Dict[str, Dict[str, Any]]]]:
    """Evaluate `predictions` (one BoxList per dataset index, network input size, with "labels",
    "scores" and for "segm" a "mask" field) on `dataset` (CLASSES, get_img_info, get_groundtruth).

    Returns (CityscapesResults, {task: the task's result json}) for the tasks of `iou_types` among
    "bbox" and "segm"; None for box_only (proposals have no class to evaluate).
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.info(f"CityScapes evaluation on [{getattr(dataset, 'name', type(dataset).__name__)}]:")
    if box_only:
        logger.warning("Cityscapes evaluation has no box-only (proposal) mode; nothing evaluated")
        return None
    tasks = [t for t in KINDS if t in iou_types]
    ignored = [t for t in iou_types if t not in KINDS]
    if ignored:
        logger.warning(f"Cityscapes evaluation covers {KINDS}; not evaluated: {ignored}")
    if "segm" in tasks and not _has_masks(predictions):
        logger.warning("the predictions have no 'mask' field: mask AP not evaluated")
        tasks.remove("segm")

    class_names = list(dataset.CLASSES[1:])
    labels = list(range(1, len(dataset.CLASSES)))
    logger.info("Matching ground-truth instances with predictions")
    matches = match_dataset(dataset, predictions, with_masks="segm" in tasks)

    results = CityscapesResults()
    details: Dict[str, Dict[str, Any]] = {}
    report = ""
    for task in tasks:
        ap = evaluate_matches(matches, task, labels, overlaps, min_region_sizes)
        averages = compute_averages(ap, class_names, overlaps, min_region_sizes)
        details[task] = results_json(averages, ap, class_names, overlaps, min_region_sizes)
        results.add(task, averages)
        report += "\n" + _TITLES[task] + "\n" + format_results(averages, class_names)
    logger.info(report)

    if output_folder:
        folder = os.path.join(output_folder, "evaluationResults")
        os.makedirs(folder, exist_ok=True)
        _write_json([m.to_json(dataset.CLASSES) for m in matches], os.path.join(folder, "matches.json"))
        for task in tasks:
            _write_json(details[task], os.path.join(folder, _FILES[task]))
    check_expected_results(results, expected_results, expected_results_sigma_tol)
    return results, details
