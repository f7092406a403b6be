"""Textured random backgrounds: float32 `[H, W, 3]` RGB images with values around 0..255.

A smooth random colour field, plus one of a few textures (stripes, a checkerboard, blotches, or
none), fine grain and some thin clutter lines and arcs. None of it is annotated; it is there so that
a detector has to learn the objects' forms rather than "anything that is not flat".
"""

import cv2
import numpy as np


def _colour_field(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Random colours on a coarse grid, smoothly interpolated to the image size."""
    gh = int(rng.integers(2, cells + 1))
    gw = int(rng.integers(2, cells + 2))
    grid = rng.uniform(0.0, 255.0, size=(gh, gw, 3)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)


def _pattern(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A zero-mean `[H, W]` texture in about -1..1 (or zeros): stripes, checks or blotches."""
    style = int(rng.integers(4))
    if style == 0:
        return np.zeros((height, width), dtype=np.float32)
    if style == 3:  # blotches: mid-frequency noise
        small = rng.uniform(-1.0, 1.0, size=(max(2, height // 12), max(2, width // 12))).astype(np.float32)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0.0, np.pi)
    period = rng.uniform(8.0, 40.0)
    u = (xs * np.cos(angle) + ys * np.sin(angle)) * (2 * np.pi / period)
    if style == 1:  # stripes
        return np.sin(u)
    v = (-xs * np.sin(angle) + ys * np.cos(angle)) * (2 * np.pi / period)
    return np.sign(np.sin(u) * np.sin(v)).astype(np.float32)  # a rotated checkerboard


def textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random textured background, float32 `[height, width, 3]`."""
    image = _colour_field(rng, height, width, cells=5)
    tint = rng.uniform(-1.0, 1.0, size=3).astype(np.float32)
    image += _pattern(rng, height, width)[:, :, None] * (rng.uniform(10.0, 40.0) * tint / (np.abs(tint).max() + 1e-6))
    # Fine grain at half resolution: a texture, not just sensor noise (that comes last, per image).
    grain = rng.standard_normal((height // 2 + 1, width // 2 + 1, 1), dtype=np.float32) * rng.uniform(2.0, 8.0)
    image += cv2.resize(grain, (width, height), interpolation=cv2.INTER_LINEAR)[:, :, None]
    # Clutter: thin lines and arcs a little lighter or darker than what is under them.
    for _ in range(int(rng.integers(0, 7))):
        offset = float(rng.choice([-1.0, 1.0]) * rng.uniform(20.0, 60.0))
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        colour = tuple(float(c) for c in np.clip(image[y0, x0] + offset, 0, 255))
        thickness = int(rng.integers(1, 3))
        if rng.random() < 0.5:
            x1, y1 = int(rng.integers(0, width)), int(rng.integers(0, height))
            cv2.line(image, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
        else:
            axes = (int(rng.integers(10, width // 2)), int(rng.integers(10, height // 2)))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(
                image,
                (x0, y0),
                axes,
                float(rng.uniform(0, 180)),
                start,
                start + float(rng.uniform(40, 200)),
                colour,
                thickness,
                cv2.LINE_AA,
            )
    return np.clip(image, 0.0, 255.0)
