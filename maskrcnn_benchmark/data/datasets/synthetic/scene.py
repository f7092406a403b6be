"""Composite objects back to front over a background, keeping track of what stays visible.

A `Scene` holds an image (float32 `[H, W, 3]`, RGB, 0..255) and a layer map (int32 `[H, W]`:
the index, in drawing order, of the layer that painted each pixel; -1 for background). A `Layer`
is one object: polygons in pixel coordinates (see masks.py for the conventions) and whether it is
annotated (category_id > 0) or a distractor (category_id 0); its colour is picked when painted.

Every layer's pixels are exactly `masks.rasterize(layer.polygons)`, painted opaquely, so the
visible part of layer k is exactly `layer_map == k`, which is what the annotations describe.
`Scene.try_add` refuses a layer that would leave itself or any annotated layer under it with less
than `min_visible` of its full (unclipped, unoccluded) area visible: that keeps heavy occlusion
and truncation, which would make objects unrecognisable, out of the data.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .masks import mask_to_polygons, rasterize, segmentation_area_bbox

# Objects get a colour at least this far (Euclidean, RGB) from the mean of what they cover, so that
# they stand out from the background and from each other.
MIN_COLOUR_DISTANCE = 90.0


@dataclass
class Layer:
    polygons: List[np.ndarray]  # each [K, 2] float (x, y); the object is their union
    category_id: int = 0  # json category id; 0 = distractor, drawn but not annotated
    # True when `polygons` is one simple outline that may serve as the segmentation as it is.
    simple: bool = True
    keypoints: Optional[np.ndarray] = None  # [17, 2] (x, y) for persons
    # Polygons painted inside the object in a contrasting colour (a figure's eyes).
    details: List[np.ndarray] = field(default_factory=list)
    # Filled in by Scene.try_add:
    mask: Optional[np.ndarray] = None  # [H, W] bool, the full raster inside the image
    full_area: int = 0  # pixel count of the raster without the image border cutting it

    @property
    def annotated(self) -> bool:
        return self.category_id > 0


def full_area(polygons: List[np.ndarray]) -> int:
    """Pixel count of the union of `polygons`, rasterised on a canvas around them (no clipping)."""
    points = np.concatenate(polygons, axis=0)
    # Shift by a whole number of pixels so the raster is the same as in the image, only not cut.
    origin = np.floor(points.min(axis=0)) - 1
    extent = np.ceil(points.max(axis=0) - origin).astype(int) + 2
    return int(rasterize([p - origin for p in polygons], int(extent[1]), int(extent[0])).sum())


class Scene:
    """An image being composited back to front, with its layer map and visible pixel counts."""

    def __init__(self, background: np.ndarray, min_visible: float = 0.5) -> None:
        self.image = background.astype(np.float32)
        self.height, self.width = background.shape[:2]
        self.layer_map = np.full((self.height, self.width), -1, dtype=np.int32)
        self.layers: List[Layer] = []
        self.visible: List[int] = []  # visible pixel count per layer
        self.min_visible = min_visible

    def try_add(self, layer: Layer, rng: np.random.Generator) -> bool:
        """Paint `layer` on top if every annotated layer keeps enough of itself visible."""
        mask = rasterize(layer.polygons, self.height, self.width)
        count = int(mask.sum())
        area = full_area(layer.polygons)
        if count == 0 or count < self.min_visible * area:
            return False
        if self.layers:
            covered = self.layer_map[mask]
            lost = np.bincount(covered[covered >= 0], minlength=len(self.layers))
            for k, below in enumerate(self.layers):
                if below.annotated and lost[k] and self.visible[k] - lost[k] < self.min_visible * below.full_area:
                    return False
            for k in np.nonzero(lost)[0]:
                self.visible[k] -= int(lost[k])
        layer.mask, layer.full_area = mask, area
        self._paint(layer, rng)
        self.layer_map[mask] = len(self.layers)
        self.layers.append(layer)
        self.visible.append(count)
        return True

    def _paint(self, layer: Layer, rng: np.random.Generator) -> None:
        mask = layer.mask
        under = self.image[mask].mean(axis=0)
        colour = pick_colour(rng, under)
        ys, xs = np.nonzero(mask)
        # A gentle linear shading across the object, so it is not one flat colour.
        direction = rng.normal(size=2)
        direction /= np.linalg.norm(direction) + 1e-6
        extent = max(float(np.ptp(xs)), float(np.ptp(ys)), 1.0)
        ramp = ((xs - xs.mean()) * direction[0] + (ys - ys.mean()) * direction[1]) / extent
        shade = rng.uniform(10.0, 35.0) * ramp
        self.image[ys, xs] = colour[None, :] + shade[:, None]
        if layer.details:
            # Details stay inside the object's own pixels, so they never change its mask.
            detail = rasterize(layer.details, self.height, self.width) & mask
            self.image[detail] = np.where(colour > 127.0, colour - 110.0, colour + 110.0)

    def finish(self, rng: np.random.Generator) -> np.ndarray:
        """The final uint8 RGB image: the composite with a little sensor-like noise."""
        sigma = rng.uniform(2.0, 5.0)
        noise = rng.standard_normal(self.image.shape, dtype=np.float32) * sigma
        return np.clip(self.image + noise, 0, 255).round().astype(np.uint8)


def pick_colour(rng: np.random.Generator, avoid: np.ndarray, tries: int = 30) -> np.ndarray:
    """A random RGB colour at least MIN_COLOUR_DISTANCE from `avoid` (the best of `tries` if none)."""
    best, best_distance = None, -1.0
    for _ in range(tries):
        colour = rng.uniform(0.0, 255.0, size=3).astype(np.float32)
        distance = float(np.linalg.norm(colour - avoid))
        if distance >= MIN_COLOUR_DISTANCE:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def annotate(scene: Scene, index: int) -> Dict[str, Any]:
    """COCO fields (segmentation, area, bbox, iscrowd, category_id) of layer `index`'s visible part.

    The segmentation is the layer's own outline when all of it is visible and inside the image (it
    decodes to exactly the painted pixels); otherwise the traced outline of the visible pixels.
    """
    layer = scene.layers[index]
    visible = scene.layer_map == index
    count = scene.visible[index]
    inside = all(
        p[:, 0].min() >= 0 and p[:, 1].min() >= 0 and p[:, 0].max() <= scene.width and p[:, 1].max() <= scene.height
        for p in layer.polygons
    )
    # The own polygons decode to exactly layer.mask (that is how it was made); visible is a subset
    # of it, so equal counts mean equal masks.
    if layer.simple and inside and count == int(layer.mask.sum()):
        segmentation = [p.reshape(-1).tolist() for p in layer.polygons]
    else:
        segmentation = mask_to_polygons(visible)
    area, bbox = segmentation_area_bbox(segmentation, scene.height, scene.width)
    return {
        "category_id": int(layer.category_id),
        "segmentation": segmentation,
        "area": area,
        "bbox": bbox,
        "iscrowd": 0,
    }
