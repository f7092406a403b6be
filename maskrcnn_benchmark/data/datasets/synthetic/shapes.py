"""The "shapes" images: circles, triangles, squares and stars on textured backgrounds.

Four categories that differ in form (not in colour: colours are random), with json ids 1, 3, 7, 12
on purpose: not contiguous, so that a loader's json-id -> contiguous-id mapping is exercised.
A few "cross" distractors are drawn but not annotated.

Sizes are circumscribed diameters in pixels: 20% small ones (12..30 px), the others uniform from
30 px to half the image's shorter side. Each object has a random position, rotation, a mild
stretch (aspect 0.8..1.25) and a random colour; objects overlap, but every annotated one keeps at
least half of its area visible (see scene.Scene.try_add).
"""

from typing import Dict, List, Tuple

import numpy as np

from .background import textured_background
from .masks import snap
from .scene import Layer, Scene, annotate

CATEGORIES: List[Dict[str, object]] = [
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
    {"id": 7, "name": "square", "supercategory": "shape"},
    {"id": 12, "name": "star", "supercategory": "shape"},
]
CATEGORY_IDS: Dict[str, int] = {c["name"]: c["id"] for c in CATEGORIES}

MIN_SIZE = 12.0
SMALL_MAX = 30.0


def unit_outline(name: str) -> np.ndarray:
    """The outline `[K, 2]` of a shape of circumradius 1 centred on the origin."""
    if name == "circle":
        k = 48
        t = np.arange(k) * (2 * np.pi / k)
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    if name == "triangle":  # equilateral, apex up
        t = np.arange(3) * (2 * np.pi / 3) - np.pi / 2
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    if name == "square":  # sides along the axes, so that the stretch makes rectangles, not rhombi
        t = np.arange(4) * (np.pi / 2) + np.pi / 4
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    if name == "star":  # five points, inner radius 0.45
        t = np.arange(10) * (np.pi / 5) - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    if name == "cross":  # a plus sign with arms 0.3 wide
        w = 0.15
        pts = [
            (-w, -1),
            (w, -1),
            (w, -w),
            (1, -w),
            (1, w),
            (w, w),
            (w, 1),
            (-w, 1),
            (-w, w),
            (-1, w),
            (-1, -w),
            (-w, -w),
        ]
        return np.asarray(pts, dtype=np.float64)
    raise ValueError(f"unknown shape {name!r}")


def place(outline: np.ndarray, center: Tuple[float, float], size: float, angle: float, aspect: float) -> np.ndarray:
    """Stretch `outline` by (aspect, 1/aspect), rotate by `angle`, scale to diameter `size`, move.

    Coordinates are snapped to 1/8 px (see masks.snap): what is drawn must be exactly what the json
    decodes to.
    """
    p = outline * np.array([aspect, 1.0 / aspect]) * (size / 2.0)
    c, s = np.cos(angle), np.sin(angle)
    p = p @ np.array([[c, s], [-s, c]]) + np.asarray(center)
    return snap(p)


def sample_size(rng: np.random.Generator, height: int, width: int) -> float:
    largest = max(SMALL_MAX + 1.0, min(height, width) / 2.0)
    if rng.random() < 0.2:
        return float(rng.uniform(MIN_SIZE, SMALL_MAX))
    # Uniform, not log-uniform: that would pile up objects just above SMALL_MAX, and most would
    # end up under COCO's "small" area (32 x 32 px; a star of diameter 50 px has ~800 px).
    return float(rng.uniform(SMALL_MAX, largest))


def random_shape(rng: np.random.Generator, name: str, height: int, width: int) -> np.ndarray:
    """The outline `[K, 2]` of shape `name` at a random size, place, rotation and stretch."""
    size = sample_size(rng, height, width)
    # Centres may lie a little outside the image: some objects are cut by the border.
    margin = size * 0.2
    center = (rng.uniform(-margin, width + margin), rng.uniform(-margin, height + margin))
    return place(unit_outline(name), center, size, rng.uniform(0, 2 * np.pi), float(np.exp(rng.uniform(-0.22, 0.22))))


def render_shapes_image(rng: np.random.Generator, height: int, width: int) -> Tuple[np.ndarray, Scene, List[dict]]:
    """One image: (uint8 RGB `[H, W, 3]`, its Scene, COCO annotations without ids, in z-order).

    Each annotation has an extra "layer" key (the layer index in scene.layer_map) that the writer
    drops; tests use it to compare annotations with the painted pixels.
    """
    scene = Scene(textured_background(rng, height, width), min_visible=0.5)
    names = [c["name"] for c in CATEGORIES]
    n_objects = int(rng.integers(2, 8))
    n_distractors = int(rng.random() < 0.5)
    kinds = ["object"] * n_objects + ["distractor"] * n_distractors
    rng.shuffle(kinds)
    for kind in kinds:
        for _ in range(20):  # re-sample an object that would hide too much (or be hidden)
            if kind == "distractor":
                layer = Layer([random_shape(rng, "cross", height, width)], category_id=0)
            else:
                name = names[int(rng.integers(len(names)))]
                layer = Layer([random_shape(rng, name, height, width)], category_id=CATEGORY_IDS[name])
            if scene.try_add(layer, rng):
                break
    annotations = []
    for k, layer in enumerate(scene.layers):
        if layer.annotated:
            annotations.append(dict(annotate(scene, k), layer=k))
    return scene.finish(rng), scene, annotations
