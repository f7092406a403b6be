"""COCOeval backends: faster-coco-eval (a C++ COCOeval, the default) and pycocotools (the reference).

Both give the same numbers (`stats`, `eval["precision"]`, per-class AP) on what this library evaluates:
tests/data/datasets/evaluation/coco/test_backends.py compares them on crowd regions, images without
ground truth or without detections, more detections than maxDets, tied scores, all area ranges and
bbox / segm / keypoints. Where faster-coco-eval differs, this module makes it follow pycocotools
(docs/EVALUATION.md#backends): keypoint evaluation covers every category of the ground truth (it takes
only those with annotations), and the ground truth it is given is a shallow copy, as its evaluation
adds keys ("ignore", "rle") to the annotation dicts.

The results of the faster backend are indexed from arrays without per-detection calls when the masks'
areas and boxes are known (`ImageResults` from compact.py); the dicts are those `loadRes` builds.
"""

import contextlib
import copy
import io
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from .....utils.gc_pause import gc_paused
from .compact import ImageResults
from .precision_fix import fix_precision

BACKENDS = ("faster_coco_eval", "pycocotools")
DEFAULT_BACKEND = "faster_coco_eval"
CONFIG_KEY = "TEST.COCO_EVAL_BACKEND"


def check_backend(backend: str) -> str:
    """`backend` if known, else a ValueError naming the config key and the allowed values."""
    if backend not in BACKENDS:
        raise ValueError(f"{CONFIG_KEY} is {backend!r}; allowed: {', '.join(repr(b) for b in BACKENDS)}")
    return backend


def _faster_gt(coco_gt: Any) -> Any:
    """A faster-coco-eval COCO of a pycocotools COCO's dataset, over shallow copies of its dicts."""
    from faster_coco_eval import COCO

    src = coco_gt.dataset
    gt = COCO()
    gt.dataset = {key: value for key, value in src.items() if key not in ("images", "annotations", "categories")}
    for key in ("images", "annotations", "categories"):
        gt.dataset[key] = [dict(item) for item in src.get(key, [])]
    gt.createIndex()
    return gt


def _result_anns(
    results: List[Dict[str, Any]], iou_type: str, images: Optional[Sequence[ImageResults]]
) -> List[Dict[str, Any]]:
    """Copies of `results` with what loadRes adds (id, iscrowd, area, and bbox for segm / keypoints)."""
    anns = [dict(r) for r in results]
    if iou_type == "bbox":
        # loadRes also adds a polygon of the box as "segmentation", which the bbox evaluation never reads.
        for ann in anns:
            ann["area"] = ann["bbox"][2] * ann["bbox"][3]
    elif iou_type == "segm":
        known = [im.masks for im in images or () if len(im)]
        areas = np.concatenate([m.areas for m in known]) if known else np.zeros(0, np.int64)
        if images is not None and len(areas) == len(anns):  # the results were made from `images`
            boxes = np.concatenate([m.boxes for m in known]) if known else np.zeros((0, 4))
            for ann, area, box in zip(anns, areas.tolist(), boxes):
                ann["area"] = area
                ann.setdefault("bbox", box)
        else:
            from faster_coco_eval.core import mask as mask_util

            for ann in anns:
                ann["area"] = mask_util.area(ann["segmentation"])
                ann.setdefault("bbox", mask_util.toBbox(ann["segmentation"]))
    elif iou_type == "keypoints":
        if anns:
            kps = np.asarray([ann["keypoints"] for ann in anns], dtype=np.float64)
            x, y = kps[:, 0::3], kps[:, 1::3]
            x0, x1, y0, y1 = x.min(1), x.max(1), y.min(1), y.max(1)
            for k, ann in enumerate(anns):
                ann["area"] = (x1[k] - x0[k]) * (y1[k] - y0[k])
                ann["bbox"] = [x0[k], y0[k], x1[k] - x0[k], y1[k] - y0[k]]
    for ann_id, ann in enumerate(anns, 1):
        ann["id"] = ann_id
        if iou_type != "keypoints":
            ann["iscrowd"] = 0
    return anns


def _faster_results(gt: Any, anns: List[Dict[str, Any]]) -> Any:
    from faster_coco_eval import COCO

    unknown = {a["image_id"] for a in anns} - set(gt.imgs)
    if unknown:
        raise ValueError(f"results for image ids {sorted(unknown)[:5]} which the ground truth does not have")
    res = COCO()
    res.dataset = {
        "info": copy.deepcopy(gt.dataset.get("info", {})),
        "images": list(gt.dataset["images"]),
        "categories": copy.deepcopy(gt.dataset.get("categories", [])),
        "annotations": anns,
    }
    res.createIndex()
    return res


def _pycocotools_results(coco_gt: Any, results: List[Dict[str, Any]]) -> Any:
    from pycocotools.coco import COCO

    if results:
        return coco_gt.loadRes([dict(r) for r in results])  # loadRes adds keys to the dicts it gets
    # loadRes([]) fails (it looks at the first result): no results evaluate to AP 0 instead.
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(coco_gt.dataset.get("images", [])),
        "categories": copy.deepcopy(coco_gt.dataset.get("categories", [])),
        "annotations": [],
    }
    coco_dt.createIndex()
    return coco_dt


def _count_pairs(coco_eval: Any, bar: Any) -> None:
    """Tick `bar` once per (image, category) pair whose IoUs COCOeval computes (its slow part)."""
    name = "computeOks" if coco_eval.params.iouType == "keypoints" else "computeIoU"
    compute = getattr(coco_eval, name)

    def counted(img_id: Any, cat_id: Any) -> Any:
        out = compute(img_id, cat_id)
        bar.update(1)
        return out

    setattr(coco_eval, name, counted)


def _faster_cocoeval(
    coco_gt: Any, results: List[Dict[str, Any]], iou_type: str, images: Any, bar: Any, lines: List[str]
):
    from faster_coco_eval import COCOeval_faster

    gt = _faster_gt(coco_gt)
    dt = _faster_results(gt, _result_anns(results, iou_type, images))
    coco_eval = COCOeval_faster(gt, dt, iou_type, print_function=lambda *a: lines.append(" ".join(map(str, a))))
    # pycocotools evaluates every category of the ground truth; faster-coco-eval's keypoint evaluation
    # only those with annotations (the same stats, but the per-class arrays would differ).
    coco_eval.params.catIds = sorted(gt.getCatIds())
    prepare = coco_eval._prepare

    def prepared() -> None:  # the pairs it computes are known once the annotations are indexed
        prepare()
        bar.reset(total=len(coco_eval._nonempty_iou_pairs))

    coco_eval._prepare = prepared
    return coco_eval


def _pycocotools_cocoeval(
    coco_gt: Any, results: List[Dict[str, Any]], iou_type: str, images: Any, bar: Any, lines: List[str]
):
    from pycocotools.cocoeval import COCOeval

    coco_eval = COCOeval(coco_gt, _pycocotools_results(coco_gt, results), iou_type)
    bar.reset(total=len(set(coco_eval.params.imgIds)) * len(set(coco_eval.params.catIds)))
    return coco_eval


def run_cocoeval(
    coco_gt: Any,
    results: List[Dict[str, Any]],
    iou_type: str,
    backend: str = DEFAULT_BACKEND,
    images: Optional[Sequence[ImageResults]] = None,
    progress: bool = False,
    log: Optional[Callable[[str], None]] = None,
) -> Any:
    """Evaluate, accumulate and summarize `results` (COCO result dicts) against `coco_gt` (a pycocotools
    COCO). `images`: the ImageResults the segm results were made from, in the same order (their mask
    areas and boxes spare recomputing them). Returns the backend's COCOeval (`.stats`, `.eval`,
    `.params`); what it prints (progress, the summary table) goes to `log` (default: the
    maskrcnn_benchmark.inference logger's info)."""
    from tqdm import tqdm

    check_backend(backend)
    log = log or logging.getLogger("maskrcnn_benchmark.inference").info
    make = _faster_cocoeval if backend == "faster_coco_eval" else _pycocotools_cocoeval
    lines: List[str] = []
    bar = tqdm(desc=f"COCOeval {iou_type}", unit="pair", disable=not progress, mininterval=2.0)
    buf = io.StringIO()
    try:
        # gc_paused: the result and annotation dicts form no cycles, and collections would traverse them all
        with contextlib.redirect_stdout(buf), gc_paused():  # pycocotools prints: keep it out of other consoles
            coco_eval = make(coco_gt, results, iou_type, images, bar, lines)
            _count_pairs(coco_eval, bar)
            coco_eval.evaluate()
            coco_eval.accumulate()
            if backend == "faster_coco_eval":  # its precision differs from pycocotools' in the last bit
                fix_precision(coco_eval, coco_eval.cocoGt, coco_eval.cocoDt)
            coco_eval.summarize()
    finally:  # also when it fails: what it printed helps to see why
        bar.close()
        text = "\n".join(part for part in [buf.getvalue().strip()] + lines if part)
        if text:
            log(text)
    return coco_eval
