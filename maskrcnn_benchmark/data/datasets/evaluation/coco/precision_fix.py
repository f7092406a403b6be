"""pycocotools' precision values for faster-coco-eval's accumulation (exactly, so that stats are identical).

pycocotools computes the precision after each detection as `tp / (tp + fp + eps)` with `eps =
np.spacing(1)`, faster-coco-eval (1.8.0) as `tp / (tp + fp)`. For `tp + fp >= 2` adding eps does not
change the float64 sum; for `tp + fp == 1` pycocotools gets `1 / (1 + eps) = 1 - 2**-52` where
faster-coco-eval gets 1. After the precision curve's running maximum (from the right), an entry of
`eval["precision"]` therefore differs exactly where faster-coco-eval has 1.0 and the curve's leading
run of true positives is one detection long: in score order, the first detection that is not ignored
is a true positive and the next one a false positive (or there is none). Otherwise a later all-true
prefix gives pycocotools 1.0 as well. The stats are means of these arrays and can differ in their
last bit (found by tests/data/datasets/evaluation/coco/test_backends.py).

Which curves have such a run is decided here with pycocotools' own per-image matching
(`COCOeval.evaluateImg`) of only the images that hold the top detections of the affected categories,
taken in pycocotools' accumulation order (score, then image id, then rank in the image).
"""

import contextlib
import io
from collections import defaultdict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

ONE_MINUS = 1.0 / (1.0 + np.spacing(1))  # pycocotools' precision after one true positive


def _order(anns: List[Dict[str, Any]], img_ids: List[int], max_det: int) -> Dict[int, List[Tuple[int, int]]]:
    """category -> its detections as (image id, rank in that image), in pycocotools' accumulation order;
    only ranks below max_det (pycocotools keeps the top maxDets[-1] per image and category)."""
    position = {img: i for i, img in enumerate(img_ids)}
    per_pair: Dict[Tuple[int, int], List[float]] = defaultdict(list)
    for ann in anns:
        per_pair[ann["image_id"], ann["category_id"]].append(ann["score"])
    out: Dict[int, List[Tuple[float, int, int, int]]] = defaultdict(list)
    for (img, cat), scores in per_pair.items():
        ranked = sorted(scores, key=lambda s: -s)  # stable, as argsort(-scores, kind="mergesort")
        out[cat].extend((-s, position[img], rank, img) for rank, s in enumerate(ranked[:max_det]))
    return {cat: [(img, rank) for _, _, rank, img in sorted(items)] for cat, items in out.items()}


def _subset_coco(source: Any, img_ids: List[int], anns: List[Dict[str, Any]]) -> Any:
    """A pycocotools COCO of `img_ids` only, over shallow copies of the annotations (in their order)."""
    from pycocotools.coco import COCO

    keep = set(img_ids)
    coco = COCO()
    coco.dataset = {
        "images": [dict(img) for img in source.dataset["images"] if img["id"] in keep],
        "annotations": [dict(a) for a in anns if a["image_id"] in keep],
        "categories": [dict(c) for c in source.dataset.get("categories", [])],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _evaluated_images(coco_eval: Any, gt: Any, dt: Any, pairs: List[Tuple[int, int]]) -> Dict[Tuple[int, int], list]:
    """(image, category) -> pycocotools' evaluateImg result of each area range (maxDets[-1])."""
    from pycocotools.cocoeval import COCOeval

    params = coco_eval.params
    images = sorted({img for img, _ in pairs})
    gt_sub = _subset_coco(gt, images, gt.dataset["annotations"])
    dt_sub = _subset_coco(gt, images, dt.dataset["annotations"])
    ref = COCOeval(gt_sub, dt_sub, params.iouType)
    ref.params.imgIds = images
    ref.params.catIds = sorted({cat for _, cat in pairs})
    ref.params.iouThrs, ref.params.maxDets, ref.params.areaRng = params.iouThrs, params.maxDets, params.areaRng
    if params.iouType == "keypoints":
        ref.params.kpt_oks_sigmas = params.kpt_oks_sigmas
    with contextlib.redirect_stdout(io.StringIO()):
        ref._prepare()
    compute = ref.computeOks if params.iouType == "keypoints" else ref.computeIoU
    out = {}
    for img, cat in pairs:
        ref.ious[img, cat] = compute(img, cat)
        out[img, cat] = [ref.evaluateImg(img, cat, rng, params.maxDets[-1]) for rng in params.areaRng]
    return out


def _leading_run_is_one(order, per_image, t: int, a: int, max_det: int, upto: int) -> Optional[bool]:
    """For one curve (IoU threshold t, area range a, maxDets max_det): whether the leading run of true
    positives among the detections not ignored is one long; None when the first `upto` detections of
    `order` do not decide it. per_image: image -> evaluateImg result of each area range."""
    found = 0
    for img, rank in order[:upto]:
        if rank >= max_det:
            continue
        e = per_image[img][a]
        if e is None or e["dtIgnore"][t, rank]:
            continue
        if e["dtMatches"][t, rank] > 0:
            found += 1
            if found == 2:
                return False
        else:
            return found == 1
    return (found == 1) if upto >= len(order) else None


def fix_precision(coco_eval: Any, gt: Any, dt: Any) -> int:
    """Make an accumulated faster-coco-eval COCOeval's `eval["precision"]` pycocotools' (see the module
    docstring), before summarize(); `gt` / `dt` are the COCO objects it evaluated (faster-coco-eval's).
    Returns the number of precision curves changed."""
    params = coco_eval.params
    precision = coco_eval.eval["precision"]  # [T, R, K, A, M]
    candidates = np.argwhere(precision[:, 0] == 1.0)  # (t, k, a, m): a leading true positive
    if len(candidates) == 0:
        return 0
    cat_ids = list(params.catIds)
    orders = _order(dt.dataset["annotations"], list(params.imgIds), params.maxDets[-1])
    todo: Dict[int, List[Tuple[int, int, int]]] = defaultdict(list)
    for t, k, a, m in candidates.tolist():
        todo[k].append((t, a, m))
    changed = 0
    upto = 16
    while todo:
        pairs = sorted({(img, cat_ids[k]) for k in todo for img, _ in orders.get(cat_ids[k], [])[:upto]})
        results = _evaluated_images(coco_eval, gt, dt, pairs)
        unresolved: Dict[int, List[Tuple[int, int, int]]] = defaultdict(list)
        for k, curves in todo.items():
            order = orders.get(cat_ids[k], [])
            per_img = {img: results[img, cat_ids[k]] for img, _ in order[:upto]}
            for t, a, m in curves:
                one = _leading_run_is_one(order, per_img, t, a, params.maxDets[m], upto)
                if one is None:
                    unresolved[k].append((t, a, m))
                elif one:
                    curve = precision[t, :, k, a, m]
                    curve[curve == 1.0] = ONE_MINUS
                    changed += 1
        todo, upto = unresolved, upto * 4
    return changed
