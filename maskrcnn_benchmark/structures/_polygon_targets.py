"""Rasterise many polygon instances, each inside its own box, at once (the mask head's targets).

`polygons_in_boxes(instances, boxes, M)` equals, instance by instance,
`SegmentationMask([instance]).crop(box).resize((M, M)).get_mask_tensor()` bit for bit: polygons
shifted by the crop window's top-left corner (the box's, clamped into the image), scaled by
M / (x2 - x1) and M / (y2 - y1) of the box as given (float32 differences, as the original's
PolygonList.crop sized its result), each step rounded to float32 as the tensor ops round, then
rasterised by pycocotools. It does the arithmetic for all polygons in one numpy expression and hands
pycocotools every polygon and every instance in one call each, instead of a dozen small tensor ops
per instance. (A box of zero width or height, which the original divided by, counts as 1 pixel.)
"""

from typing import Sequence

import numpy as np
import pycocotools.mask as mask_utils
import torch

from ._binary_masks import crop_window


def polygons_in_boxes(instances: Sequence, boxes: Sequence[Sequence[float]], size: int) -> torch.Tensor:
    """[P, size, size] uint8 masks of the P PolygonInstances, each cropped to its xyxy box."""
    M = size
    polygons, shift, scale, owner = [], [], [], []
    for i, (instance, box) in enumerate(zip(instances, boxes)):
        xmin, ymin, _, _ = crop_window(box, instance.size, lambda v: v)
        x1, y1, x2, y2 = np.asarray(box, dtype=np.float32)
        ratios = tuple(float(M) / (float(extent) or 1.0) for extent in (x2 - x1, y2 - y1))
        for polygon in instance.polygons:
            polygons.append(polygon.numpy())
            shift.append((xmin, ymin))
            scale.append(ratios)
            owner.append(i)
    masks = np.zeros((len(instances), M, M), dtype=np.uint8)
    if not polygons:
        return torch.from_numpy(masks)
    lengths = np.array([len(p) for p in polygons])
    # Per coordinate: x and y alternate in every polygon, and every polygon has an even length.
    shift = np.repeat(np.asarray(shift, dtype=np.float32), lengths // 2, axis=0).reshape(-1)
    scale = np.repeat(np.asarray(scale, dtype=np.float32), lengths // 2, axis=0).reshape(-1)
    coordinates = (np.concatenate(polygons) - shift) * scale  # float32 throughout
    rles = mask_utils.frPyObjects(np.split(coordinates.astype(np.float64), np.cumsum(lengths)[:-1]), M, M)
    owner = np.asarray(owner)
    with_polygons = np.unique(owner)
    merged = [mask_utils.merge([rles[j] for j in np.flatnonzero(owner == i)]) for i in with_polygons]
    masks[with_polygons] = np.moveaxis(mask_utils.decode(merged), 2, 0)
    return torch.from_numpy(masks)
