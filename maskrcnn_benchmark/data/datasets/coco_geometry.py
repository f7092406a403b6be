"""Numeric checks of COCO geometry: image sizes, boxes, polygons and keypoints.

Bounds (so that nothing downstream can allocate absurd memory):
- an image is at most MAX_IMAGE_SIDE pixels on a side and MAX_IMAGE_PIXELS pixels in all (every
  mask the library or pycocotools decodes has the image's size);
- polygon points, box corners and keypoints lie at most one image width (height) outside the
  image: x in [-W, 2W], y in [-H, 2H];
- a polygon's perimeter (sum of max(|dx|, |dy|) over its closed edges) is at most
  POLYGON_PERIMETER_FACTOR * (W + H) pixels: pycocotools' rasteriser allocates memory in proportion
  to it (with many vertices, coordinates inside the margin alone do not bound it). Object outlines
  are a few times W + H at most.

Numbers are JSON ints and floats (`bool` is not a number here, except inside polygons, which are
read by numpy like pycocotools reads them: a true/false among numbers counts as 1/0).
"""

import math
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .coco_problems import (
    BBOX_EMPTY,
    BBOX_MISSING,
    BBOX_NON_FINITE,
    BBOX_NOT_NUMBERS,
    KP_FAR,
    KP_LENGTH,
    KP_NON_FINITE,
    SEGM_FAR,
    SEGM_FEW_POINTS,
    SEGM_NON_FINITE,
    SEGM_ODD,
)

MAX_IMAGE_SIDE = 2**16
MAX_IMAGE_PIXELS = 2**28
POLYGON_PERIMETER_FACTOR = 32
NUM_PERSON_KEYPOINTS = 17  # PersonKeypoints.NAMES; an annotation holds (x, y, v) per keypoint
KEYPOINT_VALUES = 3 * NUM_PERSON_KEYPOINTS

Why = Tuple[str, str]  # (problem kind, explanation); the kinds are those of coco_problems


_NUMBER_TYPES = frozenset((int, float))


def are_numbers(values: Sequence[Any]) -> bool:
    """Whether every value is a JSON number (int or float, not bool)."""
    return _NUMBER_TYPES.issuperset(map(type, values))


def are_finite(numbers: Sequence[Any]) -> bool:
    """Whether numbers (see are_numbers) are finite; integers beyond float's range are not."""
    try:
        return all(map(math.isfinite, numbers))
    except OverflowError:  # a JSON integer may have thousands of digits
        return False


def is_finite_number(v: Any) -> bool:
    return type(v) in _NUMBER_TYPES and are_finite((v,))


def first_bad_value(values: Sequence[Any]) -> str:
    """Where the first non-finite or non-numeric value of a list is (lists may be long)."""
    for i, v in enumerate(values):
        if not is_finite_number(v):
            return f"value {i} is {v!r}"[:120]
    return "all values finite"


def image_size_problem(width: Any, height: Any) -> Optional[str]:
    """Why (width, height) is not a usable image size, or None."""
    if not (type(width) is int and type(height) is int and width > 0 and height > 0):
        return "width and height must be positive integers"
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        return (
            f"at most {MAX_IMAGE_SIDE} pixels a side and {MAX_IMAGE_PIXELS} pixels in all are supported "
            f"(bounds every mask decoded for the image)"
        )
    return None


def bbox_value_problem(bbox: Any) -> Optional[Why]:
    """Checks of one bbox that need no image: 4 finite numbers with width, height > 0."""
    if type(bbox) is not list or len(bbox) != 4 or not are_numbers(bbox):
        if bbox is None:
            return BBOX_MISSING, "no box"
        return BBOX_NOT_NUMBERS, "expected [x, y, width, height]"
    if not are_finite(bbox):
        return BBOX_NON_FINITE, f"non-finite: {first_bad_value(bbox)}"
    if not (bbox[2] > 0 and bbox[3] > 0):
        return BBOX_EMPTY, "width and height must be > 0"
    return None


def boxes_outside(boxes: np.ndarray, sizes: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, outside, clipped_away) flags of [N, 4] json boxes (x, y, w, h) in images of [N, 2] (W, H).

    far: a corner more than one image size outside the image. outside: the box does not overlap the
    image [0, W] x [0, H] at all (malformed). clipped_away: the box the library makes of it is empty,
    computed exactly as BoxList does in float32: x2 = x + max(w - 1, 0), clipped to [0, W-1],
    removed when x2 <= x1 or y2 <= y1 (likewise for y) -- true of valid boxes too (under ~1 pixel, or
    overlapping the image by less than a pixel), which evaluation keeps and training cannot use.
    """
    width, height = sizes[:, 0].astype(np.float64), sizes[:, 1].astype(np.float64)
    x, y, w, h = boxes.T
    with np.errstate(over="ignore", invalid="ignore"):
        far = (x < -width) | (y < -height) | (x + w > 2 * width) | (y + h > 2 * height)
        outside = (x >= width) | (y >= height) | (x + w <= 0) | (y + h <= 0)
        b = boxes.astype(np.float32)
        max_x, max_y = (width - 1).astype(np.float32), (height - 1).astype(np.float32)
        one = np.float32(1)
        x1 = np.clip(b[:, 0], 0, max_x)
        y1 = np.clip(b[:, 1], 0, max_y)
        x2 = np.clip(b[:, 0] + np.maximum(b[:, 2] - one, 0), 0, max_x)
        y2 = np.clip(b[:, 1] + np.maximum(b[:, 3] - one, 0), 0, max_y)
    return far, outside, ~((x2 > x1) & (y2 > y1))


def polygon_array(poly: Any) -> Tuple[Optional[np.ndarray], Optional[Why]]:
    """A polygon as a flat float64 array of even length >= 6, or the reason it is not one."""
    if type(poly) is not list:
        return None, (SEGM_NON_FINITE, "a polygon is a flat list [x0, y0, x1, y1, ...]")
    if len(poly) < 6:
        return None, (SEGM_FEW_POINTS, f"{len(poly)} coordinates, at least 6 needed")
    if len(poly) % 2:
        return None, (SEGM_ODD, f"an odd number of coordinates ({len(poly)})")
    try:
        array = np.array(poly)  # numpy infers the type: strings, None, lists give a non-numeric array
        if array.dtype.kind == "O" and are_numbers(poly):  # integers beyond int64
            array = np.array(poly, dtype=np.float64)
    except (ValueError, TypeError, OverflowError, RecursionError):
        array = None
    if array is None or array.ndim != 1 or array.dtype.kind not in "iuf":
        return None, (SEGM_NON_FINITE, f"non-finite or non-numeric: {first_bad_value(poly)}")
    return array.astype(np.float64, copy=False), None


def polygons_outside(polygons: List[np.ndarray], sizes: np.ndarray) -> List[Optional[Why]]:
    """For polygon arrays (from polygon_array) in images of [N, 2] (W, H): None if usable, else
    why not (non-finite, far outside the image, or too long); vectorised over all of them."""
    n = len(polygons)
    if n == 0:
        return []
    lengths = np.fromiter((p.size for p in polygons), dtype=np.int64, count=n)
    flat = np.concatenate(polygons)
    starts = np.zeros(n, np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    finite_values = np.isfinite(flat)
    finite = np.logical_and.reduceat(finite_values, starts)
    flat = np.where(finite_values, flat, 0.0)  # keeps the arithmetic below finite
    xs, ys = flat[0::2], flat[1::2]
    point_starts, num_points = starts // 2, lengths // 2
    width = np.repeat(sizes[:, 0].astype(np.float64), num_points)
    height = np.repeat(sizes[:, 1].astype(np.float64), num_points)
    with np.errstate(over="ignore", invalid="ignore"):
        far_points = (xs < -width) | (xs > 2 * width) | (ys < -height) | (ys > 2 * height)
        far = np.logical_or.reduceat(far_points, point_starts)
        following = np.arange(1, xs.size + 1)
        following[point_starts + num_points - 1] = point_starts  # the closing edge
        edges = np.maximum(np.abs(xs[following] - xs), np.abs(ys[following] - ys))
        perimeter = np.add.reduceat(edges, point_starts)
    limit = POLYGON_PERIMETER_FACTOR * sizes.sum(axis=1).astype(np.float64)
    too_long = perimeter > limit
    out: List[Optional[Why]] = [None] * n
    for i in np.flatnonzero(~finite | far | too_long).tolist():
        if not finite[i]:
            bad = int(np.flatnonzero(~np.isfinite(polygons[i]))[0])
            out[i] = (SEGM_NON_FINITE, f"non-finite: value {bad} is {float(polygons[i][bad])!r}")
        elif far[i]:
            w, h = int(sizes[i, 0]), int(sizes[i, 1])
            p = polygons[i]
            out[i] = (
                SEGM_FAR,
                f"points must lie in x [{-w}, {2 * w}], y [{-h}, {2 * h}] (at most one image "
                f"size outside the {w}x{h} image); x spans [{p[0::2].min():g}, {p[0::2].max():g}], "
                f"y [{p[1::2].min():g}, {p[1::2].max():g}]",
            )
        else:
            out[i] = (
                SEGM_FAR,
                f"perimeter {perimeter[i]:.0f} px exceeds {limit[i]:.0f} px "
                f"({POLYGON_PERIMETER_FACTOR} x (width + height)): too long to rasterise",
            )
    return out


def keypoints_problem(keypoints: Any, width: int, height: int) -> Optional[Why]:
    """51 finite numbers (x, y, v of 17 keypoints) with points inside the margin of the image."""
    if type(keypoints) is not list or len(keypoints) != KEYPOINT_VALUES:
        length = len(keypoints) if isinstance(keypoints, (list, str, dict)) else "no"
        return KP_LENGTH, f"{length} values, expected {KEYPOINT_VALUES} (x, y, v of {NUM_PERSON_KEYPOINTS} keypoints)"
    if not (are_numbers(keypoints) and are_finite(keypoints)):
        return KP_NON_FINITE, f"non-finite or non-numeric: {first_bad_value(keypoints)}"
    xs, ys = keypoints[0::3], keypoints[1::3]
    if min(xs) < -width or max(xs) > 2 * width or min(ys) < -height or max(ys) > 2 * height:
        return KP_FAR, f"points must lie in x [{-width}, {2 * width}], y [{-height}, {2 * height}]"
    return None
