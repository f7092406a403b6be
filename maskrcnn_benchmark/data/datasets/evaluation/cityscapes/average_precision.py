"""Cityscapes instance-level average precision from per-image matches (matching.ImageMatches).

The definition of cityscapesscripts' evalInstanceLevelSemanticLabeling, as the original ports it. For
one class, one overlap threshold t and one minimum region size s, where "area" is the inclusive box
area ("bbox") or the mask pixel count ("segm") and "IoU" the matching overlap:
- ground truth with area < s is ignored (too small); the rest counts;
- a counted ground truth with predictions of IoU > t (strictly) is a true positive scored with the
  highest of their confidences, and each other such prediction is a false positive; one without is
  a missed instance (a false negative at every score);
- a prediction with IoU <= t to every ground truth of its class, ignored ones included, is a false
  positive unless more than a fraction t of its area lies on ignored ground truth;
- precision and recall (true positives / counted ground truth) at every distinct score, plus the
  point (recall 0, precision 1); with these points in order of decreasing recall r_0 >= ... >= r_n = 0,
  AP = sum_j p_j * (r_{j-1} - r_{j+1}) / 2, taking r_{-1} = r_0 and r_{n+1} = 0;
- a class without counted ground truth has AP NaN (left out of the means); one with ground truth
  but no prediction has AP 0.
Crowd regions (the *group labels, instanceIds values < 1000) are never ground truth, and there is
no void-region rule: the dataset gives neither to the evaluation (nor did the original's).
"""

import warnings
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from .matching import ImageMatches

DEFAULT_OVERLAPS = np.arange(0.5, 1.0, 0.05)  # 0.5, 0.55, ..., 0.95
DEFAULT_MIN_REGION_SIZES = np.array([100])  # pixels (box area for "bbox")

# (ground-truth areas [G], prediction areas [P], intersections [G, P], IoU [G, P], scores [P]) of one
# class in one image.
_ClassPairs = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def average_precision(y_true: np.ndarray, y_score: np.ndarray, num_gt: int) -> float:
    """AP of scored detections (y_true [N] bool: true positive or not, y_score [N]) against num_gt
    counted ground-truth instances (see the module docstring for the integration rule)."""
    y_true = np.asarray(y_true, dtype=bool)
    y_score = np.asarray(y_score, dtype=np.float64)
    if num_gt <= 0:
        return float("nan")
    if y_score.size == 0:
        return 0.0
    order = np.argsort(y_score, kind="stable")
    scores, trues = y_score[order], y_true[order]
    true_below = np.concatenate(([0], np.cumsum(trues)))  # true positives below each position
    _, first = np.unique(scores, return_index=True)  # where each distinct score starts
    tp = true_below[-1] - true_below[first]
    precision = np.append(tp / (scores.size - first), 1.0)
    recall = np.append(tp / float(num_gt), 0.0)
    padded = np.concatenate(([recall[0]], recall, [0.0]))
    widths = 0.5 * (padded[:-2] - padded[2:])
    return float(np.dot(precision, widths))


def _class_pairs(matches: Sequence[ImageMatches], kind: str, label: int) -> List[_ClassPairs]:
    pairs = []
    for m in matches:
        gt_area, pred_area, inter = m.measures(kind)
        g, p = m.gt_labels == label, m.pred_labels == label
        if not g.any() and not p.any():
            continue
        it = inter[np.ix_(g, p)].astype(np.float64)
        ga, pa = gt_area[g].astype(np.float64), pred_area[p].astype(np.float64)
        union = ga[:, None] + pa[None, :] - it
        iou = np.divide(it, union, out=np.zeros_like(it), where=union > 0)
        pairs.append((ga, pa, it, iou, m.pred_scores[p]))
    return pairs


def _class_ap(pairs: Sequence[_ClassPairs], overlap: float, min_region_size: float) -> float:
    trues: List[np.ndarray] = []
    scores: List[np.ndarray] = []
    num_gt, have_pred = 0, False
    for ga, pa, it, iou, sc in pairs:
        have_pred = have_pred or sc.size > 0
        counted = ga >= min_region_size
        hit = iou > overlap
        for row in hit[counted]:
            num_gt += 1
            if row.any():  # the best prediction is the true positive, the others are duplicates
                s = np.sort(sc[row])[::-1]
                trues.append(np.arange(s.size) == 0)
                scores.append(s)
        # Unmatched predictions: false positives unless they lie mostly on too-small ground truth.
        on_ignored = it[~counted].sum(axis=0)
        ignored = np.divide(on_ignored, pa, out=np.zeros_like(pa), where=pa > 0) > overlap
        false_pos = ~hit.any(axis=0) & ~ignored
        trues.append(np.zeros(int(false_pos.sum()), dtype=bool))
        scores.append(sc[false_pos])
    if num_gt == 0:
        return float("nan")
    if not have_pred:
        return 0.0
    return average_precision(np.concatenate(trues), np.concatenate(scores), num_gt)


def evaluate_matches(
    matches: Sequence[ImageMatches],
    kind: str,
    labels: Sequence[int],
    overlaps: Sequence[float] = DEFAULT_OVERLAPS,
    min_region_sizes: Sequence[float] = DEFAULT_MIN_REGION_SIZES,
) -> np.ndarray:
    """AP [len(min_region_sizes), len(labels), len(overlaps)] of "bbox" or "segm"."""
    ap = np.zeros((len(min_region_sizes), len(labels), len(overlaps)), dtype=np.float64)
    for li, label in enumerate(labels):
        pairs = _class_pairs(matches, kind, label)
        for di, size in enumerate(min_region_sizes):
            for oi, overlap in enumerate(overlaps):
                ap[di, li, oi] = _class_ap(pairs, float(overlap), float(size))
    return ap


def compute_averages(
    ap: np.ndarray, class_names: Sequence[str], overlaps: Sequence[float], min_region_sizes: Sequence[float]
) -> Dict[str, Any]:
    """The original's summary at the smallest region size: {"allAp", "allAp50%", "allAp75%" (means
    over the classes with ground truth), "classes": {name: {"ap", "ap50%", "ap75%"}}}; NaN where
    undefined."""
    d = int(np.argmin(min_region_sizes))
    o50, o75 = np.isclose(overlaps, 0.5), np.isclose(overlaps, 0.75)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # means of all-NaN or empty slices are NaN
        averages: Dict[str, Any] = {
            "allAp": float(np.nanmean(ap[d])),
            "allAp50%": float(np.nanmean(ap[d][:, o50])),
            "allAp75%": float(np.nanmean(ap[d][:, o75])),
            "classes": {
                name: {
                    "ap": float(np.mean(ap[d, li])),
                    "ap50%": float(np.mean(ap[d, li, o50])),
                    "ap75%": float(np.mean(ap[d, li, o75])),
                }
                for li, name in enumerate(class_names)
            },
        }
    return averages


def results_json(
    averages: Dict[str, Any],
    ap: np.ndarray,
    class_names: Sequence[str],
    overlaps: Sequence[float],
    min_region_sizes: Sequence[float],
) -> Dict[str, Any]:
    """The original's boxResult.json / maskResult.json content."""
    return {
        "averages": averages,
        "overlaps": [float(o) for o in overlaps],
        "minRegionSizes": [float(s) for s in min_region_sizes],
        "instLabels": list(class_names),
        "resultApMatrix": ap.tolist(),
    }


def format_results(averages: Dict[str, Any], class_names: Sequence[str]) -> str:
    """The original's text table (without its terminal colours): AP, AP_50%, AP_75% per class and
    their average."""
    rule = "#" * 65
    lines = ["", rule, f"{'what':<15}{'AP':>15}{'AP_50%':>15}{'AP_75%':>15}", rule]
    for name in class_names:
        c = averages["classes"][name]
        lines.append(f"{name:<15}{c['ap']:>15.3f}{c['ap50%']:>15.3f}{c['ap75%']:>15.3f}")
    lines.append("-" * 65)
    a = averages
    lines.append(f"{'average':<15}{a['allAp']:>15.3f}{a['allAp50%']:>15.3f}{a['allAp75%']:>15.3f}")
    return "\n".join(lines) + "\n"
