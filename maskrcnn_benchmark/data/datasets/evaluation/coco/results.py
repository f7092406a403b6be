"""COCO metrics container (`COCOResults`), per-class AP and the expected-results sanity check.

All values are fractions in [0, 1] as pycocotools reports them; -1 means "undefined" (pycocotools'
convention, e.g. no ground truth in an area range) or "not computed".
"""

import logging
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

LOGGER_NAME = "maskrcnn_benchmark.inference"


class COCOResults(object):
    """The headline COCO numbers of each evaluated task.

    `results[task][metric]` holds the first `len(METRICS[task])` entries of `COCOeval.stats`
    (their order is pycocotools'), or the box-proposal ARs. `per_class[task]` maps category name
    to AP (filled only when per-class AP was asked for).
    """

    METRICS: Dict[str, List[str]] = {
        "bbox": ["AP", "AP50", "AP75", "APs", "APm", "APl"],
        "segm": ["AP", "AP50", "AP75", "APs", "APm", "APl"],
        "box_proposal": [
            "AR@100",
            "ARs@100",
            "ARm@100",
            "ARl@100",
            "AR@1000",
            "ARs@1000",
            "ARm@1000",
            "ARl@1000",
        ],
        # pycocotools' keypoint stats have no "small" entry: keypoints are not annotated on them.
        "keypoints": ["AP", "AP50", "AP75", "APm", "APl"],
    }

    def __init__(self, *iou_types: str) -> None:
        unknown = [t for t in iou_types if t not in self.METRICS]
        if unknown:
            raise ValueError("unknown COCO task(s) {}; allowed: {}".format(unknown, sorted(self.METRICS)))
        self.results: "OrderedDict[str, OrderedDict[str, float]]" = OrderedDict(
            (t, OrderedDict((m, -1) for m in self.METRICS[t])) for t in iou_types
        )
        self.per_class: "OrderedDict[str, OrderedDict[str, float]]" = OrderedDict()

    def update(self, coco_eval: Any) -> None:
        """Copy the stats of a summarized `COCOeval` into the entry of its iouType."""
        if coco_eval is None:
            return
        iou_type = coco_eval.params.iouType
        stats = coco_eval.stats
        for idx, metric in enumerate(self.METRICS[iou_type]):
            self.results[iou_type][metric] = float(stats[idx])

    def __repr__(self) -> str:
        # Same layout as the original ("Task: x", names line, values line) so logs stay parseable.
        lines = [""]
        for task, metrics in self.results.items():
            lines.append("Task: {}".format(task))
            lines.append(", ".join(metrics.keys()))
            lines.append(", ".join("{:.4f}".format(v) for v in metrics.values()))
        return "\n".join(lines) + "\n"


def compute_per_class_ap(coco_eval: Any) -> "OrderedDict[str, float]":
    """AP (IoU 0.50:0.95, all areas, the largest maxDets) of every category of a COCOeval.

    Read from `coco_eval.eval["precision"]` (shape [T, R, K, A, M]) after `accumulate()`;
    entries of -1 (no ground truth) are left out of the mean, and a category without any ground
    truth gets -1, like pycocotools' own summary.
    """
    precision = coco_eval.eval["precision"]
    area_idx = list(coco_eval.params.areaRngLbl).index("all")
    coco_gt = coco_eval.cocoGt
    out: "OrderedDict[str, float]" = OrderedDict()
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p = precision[:, :, k, area_idx, -1]
        p = p[p > -1]
        name = coco_gt.cats[cat_id].get("name", str(cat_id)) if cat_id in coco_gt.cats else str(cat_id)
        if name in out:  # keep both when two categories share a name
            name = "{} ({})".format(name, cat_id)
        out[name] = float(np.mean(p)) if p.size else -1.0
    return out


def format_per_class_ap(task: str, aps: "OrderedDict[str, float]", columns: int = 3) -> str:
    """A plain-text table of per-category AP (in %, like the model zoo), `columns` pairs a row."""
    if not aps:
        return "Per-category {} AP: (no categories)".format(task)
    width = max(len("category"), max(len(n) for n in aps))
    cells = [
        "{:<{w}} | {:>6}".format(n, "{:.2f}".format(100 * v) if v >= 0 else "nan", w=width) for n, v in aps.items()
    ]
    header = " || ".join(["{:<{w}} | {:>6}".format("category", "AP", w=width)] * min(columns, len(cells)))
    rows = [" || ".join(cells[i : i + columns]) for i in range(0, len(cells), columns)]
    rule = "-" * len(header)
    return "\n".join(["Per-category {} AP:".format(task), header, rule] + rows)


def _parse_expectation(entry: Sequence[Any]) -> Tuple[str, str, float, float]:
    """[task, metric, mean, std] (the config's form) or [task, metric, (mean, std)] (the
    original code's unpacking); both are accepted."""
    if len(entry) == 4:
        task, metric, mean, std = entry
    elif len(entry) == 3:
        task, metric, (mean, std) = entry
    else:
        raise ValueError("an expected result is [task, metric, mean, std], got {!r}".format(entry))
    return str(task), str(metric), float(mean), float(std)


def check_expected_results(
    results: COCOResults, expected_results: Optional[Iterable[Sequence[Any]]], sigma_tol: float
) -> bool:
    """Check each `[task, metric, mean, std]` against `results`: PASS when the value lies strictly
    inside `mean +- sigma_tol * std`. Logs one line per entry ("PASS: ..." as info, "FAIL: ..." as
    error, like the original) and returns True when all passed (True for none)."""
    if not expected_results:
        return True
    logger = logging.getLogger(LOGGER_NAME)
    all_ok = True
    for entry in expected_results:
        task, metric, mean, std = _parse_expectation(entry)
        actual = results.results[task][metric]
        lo, hi = mean - sigma_tol * std, mean + sigma_tol * std
        ok = lo < actual < hi
        msg = (
            "{} > {} sanity check (actual vs. expected): {:.3f} vs. mean={:.4f}, std={:.4}, range=({:.4f}, {:.4f})"
        ).format(task, metric, actual, mean, std, lo, hi)
        if ok:
            logger.info("PASS: " + msg)
        else:
            all_ok = False
            logger.error("FAIL: " + msg)
    return all_ok
