"""Checks of the annotation entries of a COCO file, crowd ones included.

`AnnotationChecker.run` reports the problems of each entry (coco_problems kinds) and returns the
usable entries; an entry with a problem is dropped, except that bad polygons are removed from an
annotation that keeps a valid one. Annotations of dropped image entries are dropped silently (their
image was reported). `complete_annotations` then applies the rules that depend on the whole
dataset (a dataset with masks needs a segmentation on every annotation) and fills in the fields
pycocotools' COCOeval needs but files may leave out. The annotations are walked in chunks: box and
polygon checks run vectorised over a chunk, and problems are still reported in file order.
"""

from collections import Counter
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np
from pycocotools import mask as mask_utils

from .coco_geometry import (
    KEYPOINT_VALUES,
    bbox_value_problem,
    boxes_outside,
    is_finite_number,
    keypoints_problem,
    polygon_array,
    polygons_outside,
)
from .coco_integrity import is_id
from .coco_problems import (
    ANN_DUPLICATE_ID,
    ANN_ID,
    ANN_IMAGE_UNKNOWN,
    ANN_NOT_DICT,
    AREA,
    BBOX_FAR,
    BBOX_OUTSIDE,
    CATEGORY_UNKNOWN,
    ISCROWD,
    NUM_KEYPOINTS,
    POLYGON_KINDS,
    SEGM_EMPTY,
    SEGM_UNKNOWN,
    ProblemLog,
    annotation_where,
    show,
)
from .coco_rle import rle_problem

CHUNK_SIZE = 4096
Issue = Tuple[int, str, Optional[str], Any, str]  # (entry index, kind, field, value, why)


class _Chunk:
    """The problems of one chunk of annotation entries, gathered before they are reported."""

    def __init__(self) -> None:
        self.issues: List[Issue] = []
        # Boxes and polygons whose values are fine, for the vectorised checks: entry index, the
        # numbers, and the image's (W, H).
        self.box_indices: List[int] = []
        self.box_values: List[Any] = []  # 4 per box
        self.box_sizes: List[int] = []  # 2 per box
        self.polygons: List[np.ndarray] = []
        self.polygon_rows: List[Tuple[int, int]] = []  # (entry index, polygon index)
        self.polygon_sizes: List[int] = []  # 2 per polygon
        self.entries: Dict[int, Tuple[dict, Dict[str, Any]]] = {}  # index -> (entry, changes)
        self.bad_polygons: Dict[int, Set[int]] = {}  # index -> positions of its bad polygons

    def add(self, index: int, kind: str, field: Optional[str], value: Any, why: str) -> None:
        self.issues.append((index, kind, field, value, why))

    def add_polygon(self, index: int, j: int, kind: str, value: Any, why: str) -> None:
        self.issues.append((index, kind, f"segmentation[{j}]", value, why))
        self.bad_polygons.setdefault(index, set()).add(j)


class AnnotationChecker:
    """Checks annotation entries against the kept images and the categories of one file."""

    def __init__(
        self,
        ann_file: str,
        images: Dict[int, dict],
        dropped_image_ids: Set[int],
        category_ids: Set[int],
        log: ProblemLog,
    ):
        self.ann_file = ann_file
        self.images = images
        self.dropped_image_ids = dropped_image_ids
        self.category_ids = category_ids
        self.log = log
        self.num_dropped_with_images = 0
        self.num_polygons_removed = 0
        # Valid annotations whose box the library's clipping empties (see boxes_outside): kept for
        # evaluation, left out of the training targets (where clip_to_image would remove them).
        self.clipped_away_ids: Set[int] = set()

    def run(self, annotations: list) -> List[dict]:
        """The usable entries (copies where a field was changed), in file order."""
        id_counts = Counter(a["id"] for a in annotations if isinstance(a, dict) and is_id(a.get("id")))
        self.duplicate_ids = {i for i, n in id_counts.items() if n > 1}
        self.id_counts = id_counts
        kept: List[dict] = []
        for start in range(0, len(annotations), CHUNK_SIZE):
            chunk = _Chunk()
            for index in range(start, min(start + CHUNK_SIZE, len(annotations))):
                self._check_entry(index, annotations[index], chunk)
            self._check_geometry(chunk)
            kept += self._finish(chunk, annotations)
        return kept

    # ------------------------------------------------------------------ one entry (scalar checks)
    def _check_entry(self, index: int, ann: Any, chunk: _Chunk) -> None:
        if not isinstance(ann, dict):
            chunk.add(
                index, ANN_NOT_DICT, None, ann, "an annotation is a dict with id, image_id, category_id, bbox, ..."
            )
            return
        ann_id = ann.get("id")
        if not is_id(ann_id) or ann_id in self.duplicate_ids:
            if is_id(ann_id):
                chunk.add(
                    index,
                    ANN_DUPLICATE_ID,
                    "id",
                    ann_id,
                    f"{self.id_counts[ann_id]} annotations share this id: all of them are dropped",
                )
            else:
                chunk.add(index, ANN_ID, "id", ann_id, "expected an integer")
            return
        image_id = ann.get("image_id")
        img = self.images.get(image_id) if type(image_id) is int else None
        if img is None:
            if is_id(image_id) and image_id in self.dropped_image_ids:
                self.num_dropped_with_images += 1  # its image entry was reported
            else:
                chunk.add(index, ANN_IMAGE_UNKNOWN, "image_id", image_id, "no image entry has this id")
            return
        changes: Dict[str, Any] = {}
        chunk.entries[index] = (ann, changes)
        category = ann.get("category_id")
        if type(category) is not int or category not in self.category_ids:
            chunk.add(
                index,
                CATEGORY_UNKNOWN,
                "category_id",
                category,
                f"not one of the category ids {show(sorted(self.category_ids))}",
            )
        if "iscrowd" in ann:
            crowd = ann["iscrowd"]
            if type(crowd) not in (int, bool) or crowd not in (0, 1):
                chunk.add(index, ISCROWD, "iscrowd", crowd, "expected 0 or 1")
            elif type(crowd) is bool:
                changes["iscrowd"] = int(crowd)
        if "area" in ann and not (is_finite_number(ann["area"]) and ann["area"] >= 0):  # -0.0 is fine
            chunk.add(
                index, AREA, "area", ann["area"], "expected a finite number >= 0 (leave it out to have it computed)"
            )
        if "num_keypoints" in ann:
            n = ann["num_keypoints"]
            if type(n) is not int or not 0 <= n <= KEYPOINT_VALUES // 3:
                chunk.add(index, NUM_KEYPOINTS, "num_keypoints", n, "expected an integer in [0, 17]")
        width, height = img["width"], img["height"]
        bbox = ann.get("bbox")
        problem = bbox_value_problem(bbox)
        if problem:
            chunk.add(index, problem[0], "bbox", bbox, problem[1])
        else:
            chunk.box_indices.append(index)
            chunk.box_values += bbox
            chunk.box_sizes += (width, height)
        self._check_segmentation(index, ann.get("segmentation"), width, height, chunk)
        keypoints = ann.get("keypoints")
        if keypoints is not None:
            problem = keypoints_problem(keypoints, width, height)
            if problem:
                chunk.add(index, problem[0], "keypoints", keypoints, problem[1])

    def _check_segmentation(self, index: int, segm: Any, width: int, height: int, chunk: _Chunk) -> None:
        if not segm:
            return  # none; an error only in a dataset with masks (see complete_annotations)
        if isinstance(segm, dict):
            problem, _ = rle_problem(segm, height, width)
            if problem:
                chunk.add(index, problem[0], "segmentation", segm, problem[1])
        elif isinstance(segm, list):
            for j, poly in enumerate(segm):
                array, problem = polygon_array(poly)
                if problem:
                    chunk.add_polygon(index, j, problem[0], poly, problem[1])
                else:
                    chunk.polygons.append(array)
                    chunk.polygon_rows.append((index, j))
                    chunk.polygon_sizes += (width, height)
        else:
            chunk.add(index, SEGM_UNKNOWN, "segmentation", segm, "expected a list of polygons or an RLE dict")

    # ------------------------------------------------------------ vectorised checks of a chunk
    def _check_geometry(self, chunk: _Chunk) -> None:
        if chunk.box_indices:
            boxes = np.array(chunk.box_values, dtype=np.float64).reshape(-1, 4)
            sizes = np.array(chunk.box_sizes, dtype=np.int64).reshape(-1, 2)
            far, outside, clipped_away = boxes_outside(boxes, sizes)
            for k in np.flatnonzero(clipped_away & ~far & ~outside).tolist():
                self.clipped_away_ids.add(chunk.entries[chunk.box_indices[k]][0]["id"])
            for k in np.flatnonzero(far | outside).tolist():
                index, (w, h) = chunk.box_indices[k], sizes[k].tolist()
                bbox = chunk.box_values[4 * k : 4 * k + 4]
                if far[k]:
                    chunk.add(
                        index,
                        BBOX_FAR,
                        "bbox",
                        bbox,
                        f"the box must lie within x [{-w}, {2 * w}], y [{-h}, {2 * h}] (one image size "
                        f"around the {w}x{h} image)",
                    )
                else:
                    chunk.add(index, BBOX_OUTSIDE, "bbox", bbox, f"the box does not overlap the {w}x{h} image")
        if chunk.polygons:
            sizes = np.array(chunk.polygon_sizes, dtype=np.int64).reshape(-1, 2)
            for (index, j), problem in zip(chunk.polygon_rows, polygons_outside(chunk.polygons, sizes)):
                if problem:
                    entry = chunk.entries[index][0]
                    chunk.add_polygon(index, j, problem[0], entry["segmentation"][j], problem[1])

    # --------------------------------------------------------------- report and keep what is usable
    def _finish(self, chunk: _Chunk, annotations: list) -> List[dict]:
        chunk.issues.sort(key=lambda issue: issue[0])  # file order (stable: per entry, order found)
        dropped: Set[int] = set()
        for index, kind, field, value, why in chunk.issues:
            self.log.add(kind, annotation_where(self.ann_file, annotations[index], index), field, value, why)
            if kind not in POLYGON_KINDS:
                dropped.add(index)
        kept = []
        for index, (ann, changes) in chunk.entries.items():
            if index in dropped:
                continue
            bad = chunk.bad_polygons.get(index)
            if bad:
                valid = [p for j, p in enumerate(ann["segmentation"]) if j not in bad]
                if not valid:
                    continue
                self.num_polygons_removed += len(bad)
                changes["segmentation"] = valid
            kept.append(dict(ann, **changes) if changes else ann)
        return kept


def _is_crowd(ann: dict) -> bool:
    return ann.get("iscrowd", 0) == 1


def _mask_area(segm: Any, width: int, height: int) -> float:
    if isinstance(segm, dict):
        return float(rle_problem(segm, height, width)[1])
    return float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(segm, height, width))))


def complete_annotations(
    kept: List[dict], images: Dict[int, dict], ann_file: str, log: ProblemLog, filled: Counter
) -> Tuple[List[dict], bool, bool]:
    """(annotations, has_masks, has_keypoints) after the dataset-wide rules.

    The dataset has masks (keypoints) when a non-crowd annotation has a segmentation (keypoints).
    With masks, an annotation without a segmentation is a problem (SEGM_EMPTY). Filled in when
    missing: iscrowd (0), area (the mask's area, else the box's w * h), and in a dataset with
    keypoints, keypoints (all 17 invisible) and num_keypoints (the visible ones, v > 0).
    """
    has_masks = any(ann.get("segmentation") for ann in kept if not _is_crowd(ann))
    has_keypoints = any(ann.get("keypoints") is not None for ann in kept if not _is_crowd(ann))
    out = []
    for index, ann in enumerate(kept):
        segm = ann.get("segmentation")
        if has_masks and not segm:
            log.add(
                SEGM_EMPTY,
                annotation_where(ann_file, ann, index),
                "segmentation",
                segm,
                "the dataset has masks, this annotation none",
            )
            continue
        changes: Dict[str, Any] = {}
        if "iscrowd" not in ann:
            changes["iscrowd"] = 0
        if has_keypoints and ann.get("keypoints") is None:
            changes["keypoints"] = [0] * KEYPOINT_VALUES  # an object without keypoints: all invisible
        if has_keypoints and "num_keypoints" not in ann:
            keypoints = changes.get("keypoints", ann.get("keypoints"))
            changes["num_keypoints"] = sum(1 for v in keypoints[2::3] if v > 0)
        if "area" not in ann:
            img = images[ann["image_id"]]
            if segm:
                changes["area"] = _mask_area(segm, img["width"], img["height"])
            else:
                changes["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
        filled.update(changes.keys())
        out.append(dict(ann, **changes) if changes else ann)
    return out, has_masks, has_keypoints
