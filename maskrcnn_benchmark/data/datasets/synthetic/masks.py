"""Masks and polygons with pycocotools' own conventions, so that annotations decode exactly.

Conventions (those of COCO / pycocotools):
- A polygon is a float array `[K, 2]` of (x, y) points, or flat `[x0, y0, x1, y1, ...]` in json.
- Pixel (column c, row r) covers the square [c, c+1) x [r, r+1); its centre is (c + 0.5, r + 0.5).
  So the outline of a set of pixels runs along integer coordinates.
- A mask is a bool array `[H, W]` (row-major, as numpy indexes images).
- An instance's segmentation is a list of polygons; decoders rasterise each polygon on its own
  (even-odd fill inside one polygon) and take the union of the polygons.

Every object is drawn from exactly the pixels that `rasterize` returns, which is what pycocotools
decodes its polygons to; `mask_to_polygons` turns an arbitrary mask (the visible part of an occluded
object) into polygons that decode back to the very same pixels (holes included).
"""

from typing import List, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils


def snap(points: np.ndarray) -> np.ndarray:
    """Round coordinates to multiples of 1/8 px.

    Such numbers are exact in json, float64 and float32 alike, so a loader that keeps polygons as
    float32 (maskrcnn_benchmark's does) rasterises them to exactly the pixels that were painted;
    with, say, 0.01 px steps, float32 rounding moves a few boundary pixels.
    """
    return np.round(np.asarray(points, dtype=np.float64) * 8.0) / 8.0


def rasterize(polygons: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """The `[H, W]` bool mask that pycocotools decodes the union of `polygons` (each `[K, 2]`) to."""
    flat = [np.asarray(p, dtype=np.float64).reshape(-1).tolist() for p in polygons if len(p) >= 3]
    if not flat:
        return np.zeros((height, width), dtype=bool)
    rles = mask_utils.frPyObjects(flat, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def decode_segmentation(segmentation: List[List[float]], height: int, width: int) -> np.ndarray:
    """Decode a COCO polygon segmentation (list of flat polygons) like the COCO API does."""
    rles = mask_utils.frPyObjects(segmentation, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def segmentation_area_bbox(segmentation: List[List[float]], height: int, width: int) -> Tuple[int, List[float]]:
    """(pixel count, tight COCO box [x, y, w, h]) of a decoded polygon segmentation (pycocotools)."""
    rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    return int(mask_utils.area(rle)), [float(v) for v in mask_utils.toBbox(rle)]


def _clean_ring(points: np.ndarray) -> np.ndarray:
    """Drop repeated points and the middle points of straight runs (fewer vertices, same shape)."""
    keep = np.any(points != np.roll(points, 1, axis=0), axis=1)
    points = points[keep] if keep.any() else points[:1]
    if len(points) < 3:
        return points
    prev, nxt = np.roll(points, 1, axis=0), np.roll(points, -1, axis=0)
    d1, d2 = points - prev, nxt - points
    cross = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    dot = (d1 * d2).sum(axis=1)
    # Only a point where the outline goes straight on is redundant; a point where it turns back
    # (a pinch between two pixels touching at a corner) must stay.
    return points[(cross != 0) | (dot <= 0)]


def _bridge(outer: np.ndarray, holes: List[np.ndarray]) -> np.ndarray:
    """One ring: the outer outline with a detour into each hole along a segment walked both ways.

    pycocotools fills a single polygon with the even-odd rule and rasterises a segment to the same
    boundary points whichever way it is walked, so a doubled segment adds nothing and each hole
    stays empty. Each detour leaves the ring at its vertex closest to the hole (tidy outlines).
    """
    ring = outer
    for hole in holes:
        d = ((ring[:, None, :] - hole[None, :, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        hole = np.roll(hole, -j, axis=0)
        # ... ring[i], hole[j], ..., hole[j - 1], hole[j], ring[i], ring[i + 1] ...
        ring = np.concatenate([ring[: i + 1], hole, hole[:1], ring[i:]], axis=0)
    return ring


def mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    """Flat polygons (COCO segmentation) whose pycocotools decoding is exactly `mask` ([H, W] bool).

    The outline is traced along pixel edges: cv2.findContours follows the centres of boundary
    pixels, so it is run on the mask upsampled 2x, where every original pixel is a 2x2 block and a
    traced point at upsampled column X lies on the left edge (X even) or right edge (X odd) of
    original pixel X // 2; that edge is at x = (X + 1) // 2 (same for rows). Upsampling also makes
    one-pixel-wide parts two pixels wide, so they get a proper outline rather than a zero-width one.
    Holes are joined to their outer outline by zero-width bridges (see `_bridge`).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    up = np.repeat(np.repeat(mask.astype(np.uint8), 2, axis=0), 2, axis=1)
    up = np.pad(up, 1)  # a zero border so that objects touching the image edge trace like others
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hierarchy = hierarchy[0]
    # (X - 1 to undo the padding, then + 1) // 2, as explained above.
    rings = [c.reshape(-1, 2).astype(np.int64) // 2 for c in contours]
    polygons = []
    for i, ring in enumerate(rings):
        if hierarchy[i][3] >= 0:  # a hole: handled with its outer outline
            continue
        holes = []
        child = hierarchy[i][2]
        while child >= 0:
            holes.append(_clean_ring(rings[child]))
            child = hierarchy[child][0]
        outer = _clean_ring(ring)
        polygon = _bridge(outer, [h for h in holes if len(h) >= 3]) if holes else outer
        polygons.append(polygon.astype(np.float64).reshape(-1).tolist())
    return polygons
