"""Instance segmentation masks of one image: `SegmentationMask` wraps either a `PolygonList`
(mode "poly") or a `BinaryMaskList` (mode "mask").

Conventions (the original's): sizes are `(width, height)`; polygons flip with `x -> W - x - 1`
(`y -> H - y - 1`); crop shifts polygons without clipping them while binary masks are cut with
rounded integer corners; polygons rasterise with pycocotools. The mask targets of the mask head are
`mask.crop(proposal).resize((M, M)).get_mask_tensor()`.
"""

from typing import Any, Iterator, Sequence

import torch

from ._binary_masks import BinaryMaskList, Number, check_size, scalar_or_pair
from ._polygons import PolygonInstance, PolygonList
from .bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM

__all__ = [
    "FLIP_LEFT_RIGHT",
    "FLIP_TOP_BOTTOM",
    "BinaryMaskList",
    "PolygonInstance",
    "PolygonList",
    "SegmentationMask",
]

_MODES = ("poly", "mask")


def _check_mode(mode: Any) -> None:
    if mode not in _MODES:
        raise NotImplementedError("Unknown mode: {!r} (SegmentationMask modes are 'poly' and 'mask')".format(mode))


class SegmentationMask(object):
    """The N instance masks of one image, as polygons or binary masks.

    Arguments:
        instances: for "poly", what PolygonList accepts (a list of instances, each a list of flat
            `[x0, y0, x1, y1, ...]` polygons); for "mask", what BinaryMaskList accepts (`[N, H, W]`
            tensor, list of `[H, W]` tensors, list of COCO RLE dicts).
        size: `(width, height)`; numbers or 0-d tensors.
        mode: "poly" or "mask" (NotImplementedError otherwise, like the original).

    Indexing, `transpose`, `crop`, `resize` return new SegmentationMasks; `to` returns self (masks
    stay on the CPU). Iterating yields one-instance SegmentationMasks.
    """

    def __init__(self, instances: Any, size: Sequence[Number], mode: str = "poly") -> None:
        size = check_size(size, "SegmentationMask")
        _check_mode(mode)
        if mode == "poly":
            self.instances = PolygonList(instances, size)
        else:
            self.instances = BinaryMaskList(instances, size)
        self.mode = mode
        self.size = size

    def transpose(self, method: int) -> "SegmentationMask":
        """Flip (FLIP_LEFT_RIGHT or FLIP_TOP_BOTTOM)."""
        return SegmentationMask(self.instances.transpose(method), self.size, self.mode)

    def crop(self, box: Any) -> "SegmentationMask":
        """Crop to `box=(x1, y1, x2, y2)` (see PolygonList.crop / BinaryMaskList.crop)."""
        cropped = self.instances.crop(box)
        return SegmentationMask(cropped, cropped.size, self.mode)

    def resize(self, size: Any, *args: Any, **kwargs: Any) -> "SegmentationMask":
        """Resize to `size=(w, h)` (a number means square)."""
        size = scalar_or_pair(size)
        return SegmentationMask(self.instances.resize(size), size, self.mode)

    def to(self, *args: Any, **kwargs: Any) -> "SegmentationMask":
        return self

    def convert(self, mode: str) -> "SegmentationMask":
        """The same instances in `mode`: "mask" rasterises polygons (pycocotools); "poly" traces the
        masks' outer contours (OpenCV). `self` if already in `mode`."""
        _check_mode(mode)
        if mode == self.mode:
            return self
        if mode == "poly":
            converted = self.instances.convert_to_polygon()
        else:
            converted = self.instances.convert_to_binarymask()
        return SegmentationMask(converted, self.size, mode)

    def get_mask_tensor(self) -> torch.Tensor:
        """Binary masks `[N, H, W]` (uint8 for polygons); `[H, W]` when N == 1."""
        instances = self.instances
        if self.mode == "poly":
            instances = instances.convert_to_binarymask()
        return instances.masks.squeeze(0)

    @classmethod
    def cat(cls, masks: Sequence["SegmentationMask"]) -> "SegmentationMask":
        """Concatenate the instances of SegmentationMasks of the same size and mode."""
        modes = {m.mode for m in masks}
        if len(modes) != 1:
            raise ValueError("SegmentationMask.cat: modes differ: {}".format(sorted(modes)))
        instances = type(masks[0].instances).cat([m.instances for m in masks])
        return cls(instances, masks[0].size, masks[0].mode)

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, item: Any) -> "SegmentationMask":
        """Select instances: int, slice, index list/tensor, bool mask."""
        return SegmentationMask(self.instances[item], self.size, self.mode)

    def __iter__(self) -> Iterator["SegmentationMask"]:
        for i in range(len(self)):
            yield self[i]

    def __next__(self) -> "SegmentationMask":
        # The original made the object its own iterator; kept for code that calls next() on it.
        idx = getattr(self, "iter_idx", 0)
        if idx < len(self):
            self.iter_idx = idx + 1
            return self[idx]
        raise StopIteration

    def __repr__(self) -> str:
        return "{}(num_instances={}, image_width={}, image_height={}, mode={})".format(
            self.__class__.__name__, len(self.instances), self.size[0], self.size[1], self.mode
        )
