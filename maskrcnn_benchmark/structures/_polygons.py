"""`PolygonInstance` and `PolygonList`: instance masks as COCO polygons (imported via segmentation_mask).

A polygon is a flat float32 tensor `[x0, y0, x1, y1, ...]` in the image's pixel coordinates (COCO
convention: pycocotools rasterises it). An instance is a list of polygons (its parts).
"""

from typing import Any, List, Sequence

import numpy as np
import pycocotools.mask as mask_utils
import torch

from ._binary_masks import (
    BinaryMaskList,
    Number,
    _check_flip,
    check_size,
    crop_window,
    pixel_size,
    scalar_or_pair,
)
from .bounding_box import FLIP_LEFT_RIGHT


def _as_polygon(p: Any, index: int) -> torch.Tensor:
    if isinstance(p, torch.Tensor):
        t = p.detach().to(device="cpu", dtype=torch.float32)
    elif isinstance(p, (list, tuple, np.ndarray)):
        t = torch.as_tensor(np.asarray(p, dtype=np.float32))
    else:
        raise ValueError(
            "polygon {} should be a flat list of coordinates [x0, y0, x1, y1, ...], got {}".format(
                index, type(p).__name__
            )
        )
    return t.reshape(-1)


class PolygonInstance(object):
    """The polygons of one instance.

    Arguments:
        polygons: a list of flat coordinate lists/arrays/tensors `[x0, y0, x1, y1, ...]`, or a
            PolygonInstance. Polygons with fewer than 6 numbers (3 points) are dropped, like the
            original; a longer polygon with an odd count raises ValueError.
        size: `(width, height)` of the image.
    """

    def __init__(self, polygons: Any, size: Sequence[Number]) -> None:
        if isinstance(polygons, PolygonInstance):
            polygons = list(polygons.polygons)
        elif isinstance(polygons, (list, tuple)):
            valid = []
            for j, p in enumerate(polygons):
                t = _as_polygon(p, j)
                if t.numel() < 6:  # fewer than 3 points
                    continue
                if t.numel() % 2:
                    raise ValueError(
                        "polygon {} has an odd number of coordinates ({}); expected [x0, y0, x1, y1, ...]".format(
                            j, t.numel()
                        )
                    )
                valid.append(t)
            polygons = valid
        else:
            raise TypeError("PolygonInstance: polygons of type {} are not allowed".format(type(polygons)))
        self.polygons: List[torch.Tensor] = polygons
        self.size = check_size(size, "PolygonInstance")

    def transpose(self, method: int) -> "PolygonInstance":
        """Mirror: FLIP_LEFT_RIGHT `x -> W - x - 1`, FLIP_TOP_BOTTOM `y -> H - y - 1`."""
        _check_flip(method)
        width, height = self.size
        dim, idx = (width, 0) if method == FLIP_LEFT_RIGHT else (height, 1)
        flipped = []
        for poly in self.polygons:
            p = poly.clone()
            p[idx::2] = dim - poly[idx::2] - 1
            flipped.append(p)
        return PolygonInstance(flipped, self.size)

    def crop(self, box: Any) -> "PolygonInstance":
        """Shift by the box's top-left corner (clamped into the image); coordinates are not clipped.
        The size is that of the clamped box."""
        xmin, ymin, xmax, ymax = crop_window(box, self.size, lambda v: v)
        cropped = []
        for poly in self.polygons:
            p = poly.clone()
            p[0::2] = p[0::2] - xmin
            p[1::2] = p[1::2] - ymin
            cropped.append(p)
        return PolygonInstance(cropped, (xmax - xmin, ymax - ymin))

    def resize(self, size: Any) -> "PolygonInstance":
        """Scale to `size=(w, h)` (a number means square): one factor if both ratios are equal,
        else x by the width ratio and y by the height ratio."""
        size = scalar_or_pair(size)
        ratios = tuple(float(s) / float(s_orig) for s, s_orig in zip(size, self.size))
        if ratios[0] == ratios[1]:
            return PolygonInstance([p * ratios[0] for p in self.polygons], size)
        scaled = []
        for poly in self.polygons:
            p = poly.clone()
            p[0::2] *= ratios[0]
            p[1::2] *= ratios[1]
            scaled.append(p)
        return PolygonInstance(scaled, size)

    def convert_to_binarymask(self) -> torch.Tensor:
        """`[H, W]` uint8 mask (pycocotools frPyObjects + merge + decode); zeros if no polygon."""
        width, height = pixel_size(self.size)
        if len(self.polygons) == 0:
            return torch.zeros((height, width), dtype=torch.uint8)
        polygons = [p.numpy().astype(np.float64) for p in self.polygons]
        rles = mask_utils.frPyObjects(polygons, height, width)
        mask = mask_utils.decode(mask_utils.merge(rles))
        return torch.from_numpy(np.ascontiguousarray(mask))

    def __len__(self) -> int:
        return len(self.polygons)

    def __repr__(self) -> str:
        return "{}(num_groups={}, image_width={}, image_height={})".format(
            self.__class__.__name__, len(self.polygons), self.size[0], self.size[1]
        )


def _index_list(item: Any, length: int) -> List[int]:
    """Advanced index (list, array, long/bool/uint8 tensor) -> list of ints."""
    t = torch.as_tensor(np.asarray(item) if isinstance(item, (list, tuple, np.ndarray)) else item)
    if t.dtype in (torch.bool, torch.uint8):
        if t.numel() != length:
            raise IndexError("boolean index of length {} for {} instances".format(t.numel(), length))
        return torch.nonzero(t.reshape(-1).bool()).reshape(-1).tolist()
    if t.numel() == 0:
        return []
    return t.reshape(-1).long().tolist()


class PolygonList(object):
    """The polygon instances of one image.

    Arguments:
        polygons: a list of instances, each a list of flat coordinate lists (instances left without
            a valid polygon are dropped, like the original); or a list of PolygonInstance (kept as
            they are, even empty ones); or a PolygonList (its size wins).
        size: `(width, height)` of the image.
    """

    def __init__(self, polygons: Any, size: Sequence[Number]) -> None:
        if isinstance(polygons, PolygonList):
            size = polygons.size
            polygons = polygons.polygons
        elif not isinstance(polygons, (list, tuple)):
            raise TypeError("PolygonList: polygons of type {} are not allowed".format(type(polygons)))
        size = check_size(size, "PolygonList")

        self.polygons: List[PolygonInstance] = []
        for i, inst in enumerate(polygons):
            if isinstance(inst, PolygonInstance):
                self.polygons.append(PolygonInstance(inst, size))
                continue
            if not isinstance(inst, (list, tuple)) or any(
                not isinstance(p, (list, tuple, torch.Tensor, np.ndarray)) for p in inst
            ):
                raise ValueError(
                    "PolygonList: instance {} should be a list of polygons (flat coordinate lists), "
                    "got {!r:.80}".format(i, inst)
                )
            try:
                p = PolygonInstance(inst, size)
            except ValueError as e:
                raise ValueError("PolygonList: instance {}: {}".format(i, e)) from None
            if len(p) > 0:
                self.polygons.append(p)
        self.size = size

    def transpose(self, method: int) -> "PolygonList":
        _check_flip(method)
        return PolygonList([p.transpose(method) for p in self.polygons], self.size)

    def crop(self, box: Any) -> "PolygonList":
        """Shift every polygon by the box's (clamped) top-left corner; the size is `(x2 - x1, y2 - y1)`
        of the box as given (the resize after a crop then scales by `M / (x2 - x1)`)."""
        if isinstance(box, torch.Tensor):  # one read of its values, in its own precision
            box = box.detach().cpu()
            box = box.numpy() if box.dtype in (torch.float32, torch.float64) else box.double().numpy()
        w, h = box[2] - box[0], box[3] - box[1]
        w, h = [v.item() if isinstance(v, np.generic) else v for v in (w, h)]
        return PolygonList([p.crop(box) for p in self.polygons], (w, h))

    def resize(self, size: Any) -> "PolygonList":
        size = scalar_or_pair(size)
        return PolygonList([p.resize(size) for p in self.polygons], size)

    def to(self, *args: Any, **kwargs: Any) -> "PolygonList":
        """Returns self: polygons stay on the CPU."""
        return self

    def convert_to_binarymask(self) -> BinaryMaskList:
        """Rasterise every instance: BinaryMaskList of `[N, H, W]` uint8."""
        if len(self) > 0:
            masks = torch.stack([p.convert_to_binarymask() for p in self.polygons])
        else:
            width, height = pixel_size(self.size)
            masks = torch.zeros((0, height, width), dtype=torch.uint8)
        return BinaryMaskList(masks, self.size)

    @classmethod
    def cat(cls, lists: Sequence["PolygonList"]) -> "PolygonList":
        """Concatenate the instances of polygon lists of the same size."""
        sizes = {tuple(p.size) for p in lists}
        if len(sizes) != 1:
            raise ValueError("PolygonList.cat: sizes differ: {}".format(sorted(sizes)))
        return cls([inst for p in lists for inst in p.polygons], lists[0].size)

    def __len__(self) -> int:
        return len(self.polygons)

    def __getitem__(self, item: Any) -> "PolygonList":
        """Select instances (int, slice, index list/array/tensor, bool or uint8 mask)."""
        if isinstance(item, slice):
            selected = self.polygons[item]
        elif isinstance(item, (int, np.integer)) or (isinstance(item, torch.Tensor) and item.dim() == 0):
            selected = [self.polygons[int(item)]]
        else:
            selected = [self.polygons[i] for i in _index_list(item, len(self))]
        return PolygonList(selected, self.size)

    def __iter__(self):
        return iter(self.polygons)

    def __repr__(self) -> str:
        return "{}(num_instances={}, image_width={}, image_height={})".format(
            self.__class__.__name__, len(self.polygons), self.size[0], self.size[1]
        )
