"""PASCAL VOC detection evaluation: per-class average precision at an IoU threshold (0.5).

Per class, over the whole dataset:
- detections are sorted by score, descending; each is matched to the ground-truth box of its class
  (same image) with which its IoU is largest; a match needs IoU >= `iou_thresh`;
- a match to a difficult box is ignored (neither true nor false positive); a match to a box not
  matched before is a true positive, to one already matched (or no match) a false positive;
- precision = TP / (TP + FP) and recall = TP / (number of non-difficult boxes) after each detection.

AP from that curve (`use_07_metric`):
- True, the VOC2007 11-point metric: the mean over t = 0, 0.1, ..., 1.0 of the largest precision
  at a recall >= t (0 if that recall is never reached). The thresholds are `k * 0.1` in floating
  point, as in the VOC2007 devkit, so t = 0.3 is 0.30000000000000004 and a recall of exactly 3/10
  does not reach it.
- False, the area under the curve (VOC2010 onwards): precision made monotonically non-increasing
  from the right, summed over the recall steps.
A class with no non-difficult ground truth gets NaN (left out of the mean AP); one with ground truth
but no detection gets 0.

IoU uses the inclusive-pixel +1 rule (docs/CONVENTIONS.md#inclusive-pixels), as the VOC devkit does
on its 1-based boxes. **Differs from the original:** it added 1 to x2 and y2 before an IoU that adds
1 again, so its boxes counted one pixel wider and taller than they are.
"""

import logging
import os
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .....structures.bounding_box import BoxList

_ELEVEN_POINTS = [k * 0.1 for k in range(11)]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, M] IoU of xyxy boxes, inclusive pixels (+1)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt + 1, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _field(boxlist: BoxList, name: str, what: str, i: int) -> np.ndarray:
    if not boxlist.has_field(name):
        raise KeyError(f"{what} {i} has no {name!r} field (fields: {boxlist.fields()})")
    return boxlist.get_field(name).detach().cpu().numpy()


def calc_detection_voc_prec_rec(
    gt_boxlists: Sequence[BoxList], pred_boxlists: Sequence[BoxList], iou_thresh: float = 0.5
):
    """Per-class precision and recall arrays (index = label), in descending score order.

    `gt_boxlists[i]` has "labels" and "difficult" (optional: none difficult), `pred_boxlists[i]`
    "labels" and "scores", both xyxy in the same image size. Entries of labels absent from both are
    None; recall is None for a class without non-difficult ground truth.
    """
    n_pos: Dict[int, int] = defaultdict(int)
    scores: Dict[int, List[float]] = defaultdict(list)
    matches: Dict[int, List[int]] = defaultdict(list)  # 1 TP, 0 FP, -1 ignored
    for i, (gt, pred) in enumerate(zip(gt_boxlists, pred_boxlists)):
        pred_bbox = pred.convert("xyxy").bbox.detach().cpu().numpy().astype(np.float64)
        pred_label = _field(pred, "labels", "prediction", i)
        pred_score = _field(pred, "scores", "prediction", i)
        gt_bbox = gt.convert("xyxy").bbox.detach().cpu().numpy().astype(np.float64)
        gt_label = _field(gt, "labels", "ground truth", i)
        if gt.has_field("difficult"):
            gt_difficult = gt.get_field("difficult").detach().cpu().numpy().astype(bool)
        else:
            gt_difficult = np.zeros(len(gt_label), dtype=bool)

        for label in np.unique(np.concatenate((pred_label, gt_label)).astype(np.int64)).tolist():
            sel = pred_label == label
            order = np.argsort(-pred_score[sel], kind="stable")
            p_bbox, p_score = pred_bbox[sel][order], pred_score[sel][order]
            g_sel = gt_label == label
            g_bbox, g_difficult = gt_bbox[g_sel], gt_difficult[g_sel]

            n_pos[label] += int(np.logical_not(g_difficult).sum())
            scores[label].extend(p_score.tolist())
            if len(p_bbox) == 0:
                continue
            if len(g_bbox) == 0:
                matches[label].extend([0] * len(p_bbox))
                continue
            iou = _iou(p_bbox, g_bbox)
            best = iou.argmax(axis=1)
            best[iou.max(axis=1) < iou_thresh] = -1
            taken = np.zeros(len(g_bbox), dtype=bool)
            for g in best.tolist():
                if g < 0:
                    matches[label].append(0)
                elif g_difficult[g]:
                    matches[label].append(-1)
                else:
                    matches[label].append(0 if taken[g] else 1)
                    taken[g] = True

    n_classes = max(n_pos.keys()) + 1 if n_pos else 0
    prec: List[Optional[np.ndarray]] = [None] * n_classes
    rec: List[Optional[np.ndarray]] = [None] * n_classes
    for label in n_pos:
        order = np.argsort(-np.asarray(scores[label], dtype=np.float64), kind="stable")
        match = np.asarray(matches[label], dtype=np.int8)[order]
        tp = np.cumsum(match == 1)
        fp = np.cumsum(match == 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec[label] = tp / (fp + tp)  # NaN before the first counted detection
        if n_pos[label] > 0:
            rec[label] = tp / n_pos[label]
    return prec, rec


def calc_detection_voc_ap(
    prec: Sequence[Optional[np.ndarray]], rec: Sequence[Optional[np.ndarray]], use_07_metric: bool = False
) -> np.ndarray:
    """Per-class AP from `calc_detection_voc_prec_rec`'s curves (NaN where either is None)."""
    ap = np.full(len(prec), np.nan)
    for label, (p, r) in enumerate(zip(prec, rec)):
        if p is None or r is None:
            continue
        p = np.nan_to_num(p)
        if use_07_metric:
            ap[label] = sum(p[r >= t].max() if (r >= t).any() else 0.0 for t in _ELEVEN_POINTS) / 11
        else:
            mrec = np.concatenate(([0.0], r, [1.0]))
            mpre = np.concatenate(([0.0], p, [0.0]))
            mpre = np.maximum.accumulate(mpre[::-1])[::-1]
            steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
            ap[label] = float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
    return ap


def eval_detection_voc(
    pred_boxlists: Sequence[BoxList],
    gt_boxlists: Sequence[BoxList],
    iou_thresh: float = 0.5,
    use_07_metric: bool = False,
    num_classes: Optional[int] = None,
) -> Dict[str, Any]:
    """{"ap": per-class AP array (index = label; NaN for classes without ground truth), "map": the
    mean over the non-NaN entries}. `num_classes` (background included) pads or fixes the length of
    "ap"; by default it ends at the largest label seen."""
    if len(gt_boxlists) != len(pred_boxlists):
        raise ValueError(f"{len(pred_boxlists)} predictions for {len(gt_boxlists)} ground-truth images")
    prec, rec = calc_detection_voc_prec_rec(gt_boxlists, pred_boxlists, iou_thresh=iou_thresh)
    ap = calc_detection_voc_ap(prec, rec, use_07_metric=use_07_metric)
    if num_classes is not None:
        if len(ap) > num_classes:
            raise ValueError(f"a label {len(ap) - 1} is beyond the {num_classes} classes of the dataset")
        ap = np.concatenate((ap, np.full(num_classes - len(ap), np.nan)))
    valid = ~np.isnan(ap)
    mean_ap = float(ap[valid].mean()) if valid.any() else float("nan")
    return {"ap": ap, "map": mean_ap}


def do_voc_evaluation(
    dataset: Any,
    predictions: Sequence[BoxList],
    output_folder: Optional[str],
    logger: Optional[logging.Logger] = None,
    use_07_metric: bool = True,
    iou_thresh: float = 0.5,
) -> Dict[str, Any]:
    """Evaluate `predictions` (one BoxList per dataset index, network input size, with "labels"
    and "scores") on a PascalVOCDataset: resized to each image's annotated size, against the ground
    truth with its difficult objects (ignored). Logs the mean AP and per-class APs and writes them to
    `output_folder/result.txt` when a folder is given. Returns eval_detection_voc's dict."""
    logger = logger or logging.getLogger("maskrcnn_benchmark.inference")
    if len(predictions) != len(dataset):
        raise ValueError(f"{len(predictions)} predictions for a dataset of {len(dataset)} images")
    pred_boxlists, gt_boxlists = [], []
    for index, prediction in enumerate(predictions):
        info = dataset.get_img_info(index)
        pred_boxlists.append(prediction.resize((info["width"], info["height"])))
        gt_boxlists.append(dataset.get_groundtruth(index, use_difficult=True))
    num_classes = len(getattr(dataset, "CLASSES", ())) or None
    result = eval_detection_voc(
        pred_boxlists, gt_boxlists, iou_thresh=iou_thresh, use_07_metric=use_07_metric, num_classes=num_classes
    )
    lines = ["mAP: {:.4f}".format(result["map"])]
    for label, ap in enumerate(result["ap"]):
        if label == 0:  # the background
            continue
        lines.append("{:<16}: {:.4f}".format(dataset.map_class_id_to_class_name(label), ap))
    text = "\n".join(lines) + "\n"
    logger.info("VOC evaluation (%s, IoU %.2f):\n%s", "11-point AP" if use_07_metric else "AP", iou_thresh, text)
    if output_folder:
        os.makedirs(output_folder, exist_ok=True)
        with open(os.path.join(output_folder, "result.txt"), "w") as f:
            f.write(text)
    return result
