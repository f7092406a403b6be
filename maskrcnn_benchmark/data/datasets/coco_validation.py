"""Checks of COCO annotations before they are turned into training targets.

`check_annotations` walks the non-crowd annotations of every image once, when the dataset is built,
and returns the usable ones. A malformed annotation is reported with the annotation file, the image
id, the annotation id, the field and the offending value. With on_bad_input="error" the first
problem raises ValueError; with "skip" the annotation is dropped (a bad polygon alone is removed
from an annotation that still has a valid one) and ONE summary warning gives the count per kind of
problem plus the first few reports in full.

Crowd annotations (iscrowd=1) are not checked: they never become targets; the evaluator reads them
from the untouched `coco` object.

Box convention of the json: `bbox = [x, y, width, height]` in pixels (COCO's).
"""
import logging
import math
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from pycocotools import mask as mask_utils

logger = logging.getLogger(__name__)

ON_BAD_INPUT_CHOICES = ("skip", "error")
NUM_EXAMPLES_LOGGED = 5
NUM_PERSON_KEYPOINTS = 17  # PersonKeypoints.NAMES; each annotation holds 3 numbers per keypoint

# Kinds of problems (the keys of the summary counts).
BBOX_MISSING = "bbox: missing"
BBOX_NOT_NUMBERS = "bbox: not 4 numbers"
BBOX_NON_FINITE = "bbox: non-finite value"
BBOX_EMPTY = "bbox: zero or negative width/height"
CATEGORY_UNKNOWN = "category_id: not in the categories"
SEGM_EMPTY = "segmentation: missing or empty"
SEGM_FEW_POINTS = "segmentation: polygon with fewer than 3 points"
SEGM_ODD = "segmentation: polygon with an odd number of coordinates"
SEGM_NON_FINITE = "segmentation: polygon with a non-finite or non-numeric coordinate"
SEGM_BAD_RLE = "segmentation: malformed RLE"
SEGM_EMPTY_RLE = "segmentation: RLE mask without any pixel"
SEGM_UNKNOWN = "segmentation: neither polygons nor RLE"
KP_LENGTH = "keypoints: wrong length"
KP_NON_FINITE = "keypoints: non-finite or non-numeric value"


def check_on_bad_input(on_bad_input: str) -> str:
    if on_bad_input not in ON_BAD_INPUT_CHOICES:
        raise ValueError(
            f"on_bad_input (DATASETS.ON_BAD_INPUT) must be one of {ON_BAD_INPUT_CHOICES}, got {on_bad_input!r}"
        )
    return on_bad_input


def _show(value: Any, limit: int = 160) -> str:
    """repr of an offending value, shortened (with its length) when long."""
    text = repr(value)
    if len(text) <= limit:
        return text
    length = f" ({len(value)} values)" if hasattr(value, "__len__") else ""
    return text[:limit] + "..." + length


def _all_finite(values: Sequence[Any]) -> bool:
    # math.isfinite raises TypeError on None/str: those count as non-numeric.
    try:
        return all(map(math.isfinite, values))
    except TypeError:
        return False


def _first_non_finite(values: Sequence[Any]) -> str:
    """Where the first non-finite or non-numeric value is (values may be long polygons)."""
    for i, v in enumerate(values):
        if not _all_finite([v]):
            return f"value {i} is {v!r}"
    return "all values finite"


class Problem:
    """One malformed input: its kind (summary key) and a full message."""

    __slots__ = ("kind", "message")

    def __init__(self, kind: str, message: str):
        self.kind = kind
        self.message = message


class CheckedAnnotations:
    """The result of `check_annotations`.

    Attributes:
        per_image: {image id: [usable non-crowd annotations]} (dicts of the json, or shallow copies
            when bad polygons were removed or missing keypoints filled in).
        has_masks / has_keypoints: whether the dataset provides that target field.
        counts: {problem kind: number of occurrences}.
        num_dropped: annotations dropped; num_polygons_removed: polygons removed from kept ones.
    """

    def __init__(self) -> None:
        self.per_image: Dict[int, List[dict]] = {}
        self.has_masks = False
        self.has_keypoints = False
        self.counts: Counter = Counter()
        self.examples: List[str] = []
        self.num_dropped = 0
        self.num_polygons_removed = 0


Issue = Tuple[str, str, Any, str]  # (kind, field, offending value, why)
_KP_LEN = 3 * NUM_PERSON_KEYPOINTS


def _bbox_issues(bbox: Any) -> List[Issue]:
    if bbox is None:
        return [(BBOX_MISSING, "bbox", bbox, "no box")]
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return [(BBOX_NOT_NUMBERS, "bbox", bbox, "expected [x, y, width, height]")]
    if not _all_finite(bbox):
        return [(BBOX_NON_FINITE, "bbox", bbox, f"non-finite or non-numeric: {_first_non_finite(bbox)}")]
    if bbox[2] <= 0 or bbox[3] <= 0:
        return [(BBOX_EMPTY, "bbox", bbox, "width and height must be > 0")]
    return []


def _polygon_issues(segm: Sequence[Any]) -> Tuple[List[Issue], list]:
    """(issues, the valid polygons) of a polygon-list segmentation."""
    issues: List[Issue] = []
    valid = []
    for j, poly in enumerate(segm):
        field = f"segmentation[{j}]"
        if not isinstance(poly, (list, tuple)):
            issues.append((SEGM_NON_FINITE, field, poly, "a polygon is a flat list [x0, y0, x1, y1, ...]"))
        elif len(poly) < 6:
            issues.append((SEGM_FEW_POINTS, field, poly, f"{len(poly)} coordinates, at least 6 needed"))
        elif len(poly) % 2:
            issues.append((SEGM_ODD, field, poly, f"an odd number of coordinates ({len(poly)})"))
        elif not _all_finite(poly):
            issues.append((SEGM_NON_FINITE, field, poly, f"non-finite or non-numeric: {_first_non_finite(poly)}"))
        else:
            valid.append(poly)
    return issues, valid


def _rle_issues(rle: dict, img_info: dict) -> List[Issue]:
    size, counts = rle.get("size"), rle.get("counts")
    expected = [img_info.get("height"), img_info.get("width")]
    if not isinstance(counts, (str, bytes, list)) or not isinstance(size, (list, tuple)) or list(size) != expected:
        why = f"expected {{'size': {expected} (the image's [height, width]), 'counts': ...}}"
        return [(SEGM_BAD_RLE, "segmentation", rle, why)]
    try:
        if isinstance(counts, list):
            compressed = mask_utils.frPyObjects(rle, size[0], size[1])
        else:
            compressed = {"size": list(size), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        area = float(mask_utils.area(compressed))
    except Exception as e:  # pycocotools raises assorted errors on garbage counts
        return [(SEGM_BAD_RLE, "segmentation", rle, f"cannot decode: {e}")]
    if area <= 0:
        return [(SEGM_EMPTY_RLE, "segmentation", rle, "the mask has no pixel")]
    return []


def _keypoint_issues(keypoints: Any) -> List[Issue]:
    if not isinstance(keypoints, (list, tuple)) or len(keypoints) != _KP_LEN:
        length = len(keypoints) if hasattr(keypoints, "__len__") else "no"
        why = f"{length} values, expected {_KP_LEN} (x, y, v of {NUM_PERSON_KEYPOINTS} keypoints)"
        return [(KP_LENGTH, "keypoints", keypoints, why)]
    if not _all_finite(keypoints):
        return [(KP_NON_FINITE, "keypoints", keypoints, f"non-finite or non-numeric: {_first_non_finite(keypoints)}")]
    return []


class _Checker:
    def __init__(self, ann_file: str, category_ids: Set[Any], has_masks: bool, has_keypoints: bool):
        self.ann_file = ann_file
        self.category_ids = category_ids
        self.has_masks = has_masks
        self.has_keypoints = has_keypoints

    def check(self, ann: dict, img_info: dict) -> Tuple[Optional[dict], List[Problem], int]:
        """(the usable annotation or None, problems found, polygons removed)."""
        issues = _bbox_issues(ann.get("bbox"))
        category = ann.get("category_id")
        if category not in self.category_ids:
            ids = sorted(self.category_ids)
            issues.append((CATEGORY_UNKNOWN, "category_id", category, f"not one of the category ids {_show(ids, 80)}"))
        cleaned, removed = ann, 0
        if self.has_masks:
            segm = ann.get("segmentation")
            if not segm:
                issues.append((SEGM_EMPTY, "segmentation", segm, "the dataset has masks, this annotation none"))
            elif isinstance(segm, dict):
                issues += _rle_issues(segm, img_info)
            elif isinstance(segm, (list, tuple)):
                polygon_issues, valid = _polygon_issues(segm)
                issues += polygon_issues
                if len(valid) != len(segm):
                    removed = len(segm) - len(valid)
                    cleaned = dict(cleaned, segmentation=valid)
            else:
                issues.append((SEGM_UNKNOWN, "segmentation", segm, "expected a list of polygons or an RLE dict"))
        if self.has_keypoints:
            if ann.get("keypoints") is None:
                # An object without keypoint annotations: all its points invisible (v = 0).
                cleaned = dict(cleaned, keypoints=[0] * _KP_LEN)
            else:
                issues += _keypoint_issues(ann["keypoints"])
        problems = [
            Problem(kind, f"{self.ann_file}: image id {img_info.get('id')}, annotation id {ann.get('id')}: "
                          f"field {field!r} = {_show(value)}: {why}")
            for kind, field, value, why in issues
        ]
        # The annotation survives only if its problems were confined to polygons it can do without
        # (at least one valid polygon left).
        no_polygon_left = self.has_masks and cleaned.get("segmentation") == []
        if no_polygon_left or any(p.kind not in _POLYGON_KINDS for p in problems):
            return None, problems, 0
        return cleaned, problems, removed


_POLYGON_KINDS = {SEGM_FEW_POINTS, SEGM_ODD, SEGM_NON_FINITE}


def check_annotations(coco, ann_file: str, on_bad_input: str) -> CheckedAnnotations:
    """Check the non-crowd annotations of every image of `coco` (a pycocotools COCO).

    Raises ValueError at the first problem when on_bad_input == "error"; otherwise drops what is
    malformed and logs one summary warning.
    """
    check_on_bad_input(on_bad_input)
    result = CheckedAnnotations()
    non_crowd = {
        img_id: [a for a in anns if not a.get("iscrowd", 0)] for img_id, anns in coco.imgToAnns.items()
        if img_id in coco.imgs
    }
    # The dataset provides masks / keypoints if any usable annotation has them (COCO instances and
    # person_keypoints files have them on every annotation; detection-only sets have none).
    result.has_masks = any(a.get("segmentation") for anns in non_crowd.values() for a in anns)
    result.has_keypoints = any("keypoints" in a for anns in non_crowd.values() for a in anns)
    checker = _Checker(ann_file, set(coco.cats.keys()), result.has_masks, result.has_keypoints)
    for img_id in sorted(non_crowd):
        kept = []
        for ann in non_crowd[img_id]:
            cleaned, problems, removed = checker.check(ann, coco.imgs[img_id])
            if problems and on_bad_input == "error":
                raise ValueError(problems[0].message + " (set DATASETS.ON_BAD_INPUT 'skip' to drop it)")
            for p in problems:
                result.counts[p.kind] += 1
                if len(result.examples) < NUM_EXAMPLES_LOGGED:
                    result.examples.append(p.message)
            if cleaned is None:
                result.num_dropped += 1
            else:
                result.num_polygons_removed += removed
                kept.append(cleaned)
        result.per_image[img_id] = kept
    if result.counts:
        _log_summary(ann_file, result)
    return result


def _log_summary(ann_file: str, result: CheckedAnnotations) -> None:
    lines = [
        f"{ann_file}: {sum(result.counts.values())} malformed annotation input(s) skipped "
        f"(DATASETS.ON_BAD_INPUT 'skip'): {result.num_dropped} annotation(s) dropped, "
        f"{result.num_polygons_removed} bad polygon(s) removed from annotations that were kept."
    ]
    lines += [f"  {kind}: {n}" for kind, n in sorted(result.counts.items())]
    lines.append(f"  first {len(result.examples)} report(s):")
    lines += [f"    {m}" for m in result.examples]
    logger.warning("\n".join(lines))
