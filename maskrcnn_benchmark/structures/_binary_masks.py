"""`BinaryMaskList`: instance masks as one `[N, H, W]` tensor (imported via segmentation_mask).

Also the size/box helpers shared by the polygon and SegmentationMask modules.
"""

import numbers
from typing import Any, List, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils
import torch
from torch.nn import functional as F

from .bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM

Number = Union[int, float]


def check_size(size: Any, owner: str) -> Tuple[Number, Number]:
    """`size=(width, height)` as a tuple of two Python numbers (0-d tensors are unwrapped)."""
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise TypeError("{}: size should be a (width, height) pair, got {!r}".format(owner, size))
    out = []
    for s in size:
        if isinstance(s, torch.Tensor):
            if s.numel() != 1:
                raise TypeError("{}: size entries should be numbers, got {!r}".format(owner, size))
            s = s.item()
        if isinstance(s, bool) or not isinstance(s, numbers.Real):
            raise TypeError("{}: size entries should be numbers, got {!r}".format(owner, size))
        out.append(int(s) if isinstance(s, numbers.Integral) else float(s))
    return out[0], out[1]


def scalar_or_pair(size: Any) -> Tuple[Number, Number]:
    """A resize target: a number means a square `(s, s)`."""
    if isinstance(size, numbers.Real) or (isinstance(size, torch.Tensor) and size.dim() == 0):
        return size, size
    return tuple(size)


def pixel_size(size: Sequence[Number]) -> Tuple[int, int]:
    """`(width, height)` rounded to whole pixels, the raster size of masks of that size."""
    return int(round(float(size[0]))), int(round(float(size[1])))


def crop_window(box: Any, size: Sequence[Number], rounding) -> Tuple[Number, Number, Number, Number]:
    """The original's mask crop window: box corners (passed through `rounding`) clamped so that
    `0 <= x1 <= W-1`, `x1 + 1 <= x2 <= max(W, x1 + 1)` (same for y)."""
    if not isinstance(box, (list, tuple, torch.Tensor, np.ndarray)) or len(box) != 4:
        raise ValueError("a crop box should be 4 numbers (x1, y1, x2, y2), got {!r}".format(box))
    values = box.tolist() if isinstance(box, (torch.Tensor, np.ndarray)) else box  # one device sync
    xmin, ymin, xmax, ymax = [rounding(float(b)) for b in values]
    if xmin > xmax or ymin > ymax:
        raise ValueError("crop box has x2 < x1 or y2 < y1: {}".format(list(map(float, box))))
    width, height = size
    xmin = min(max(xmin, 0), width - 1)
    ymin = min(max(ymin, 0), height - 1)
    xmax = max(min(max(xmax, 0), width), xmin + 1)
    ymax = max(min(max(ymax, 0), height), ymin + 1)
    return xmin, ymin, xmax, ymax


def _check_flip(method: int) -> None:
    if method not in (FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM):
        raise NotImplementedError("Only FLIP_LEFT_RIGHT and FLIP_TOP_BOTTOM implemented")


def _resize_like(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize (align_corners=False) of `[N, H, W]`, cast back to the input dtype.

    Casting truncates: uint8 masks keep only the pixels that interpolate to exactly 1.0.
    """
    if masks.shape[0] == 0 or masks.shape[1] == 0 or masks.shape[2] == 0:
        return masks.new_zeros((masks.shape[0], height, width))
    resized = F.interpolate(masks[None].float(), size=(height, width), mode="bilinear", align_corners=False)
    return resized[0].to(masks.dtype)


def _decode_rles(rles: List[dict], size: Tuple[Number, Number]) -> torch.Tensor:
    """COCO RLEs (compressed `counts` bytes/str, or uncompressed `counts` lists) -> `[N, H, W]` uint8,
    resized bilinearly to `size` if their own size differs."""
    rle_sizes = [tuple(int(v) for v in r["size"]) for r in rles]
    if any(s != rle_sizes[0] for s in rle_sizes):
        raise ValueError("All the RLE sizes must be the same, got {}".format(rle_sizes))
    compressed = []
    for r in rles:
        h, w = int(r["size"][0]), int(r["size"][1])
        if isinstance(r["counts"], (list, tuple)):
            r = mask_utils.frPyObjects(dict(r), h, w)
        elif isinstance(r["counts"], str):
            r = {"size": [h, w], "counts": r["counts"].encode("ascii")}
        compressed.append(r)
    masks = torch.from_numpy(np.ascontiguousarray(mask_utils.decode(compressed).transpose(2, 0, 1)))
    rle_height, rle_width = rle_sizes[0]  # RLE sizes are (height, width)
    width, height = pixel_size(size)
    if (width, height) != (rle_width, rle_height):
        masks = _resize_like(masks, height, width)
    return masks


def _masks_to_tensor(masks: Any, size: Tuple[Number, Number]) -> torch.Tensor:
    if isinstance(masks, BinaryMaskList):
        return masks.masks.clone()
    if isinstance(masks, torch.Tensor):
        return masks.clone()
    if isinstance(masks, np.ndarray):
        return torch.from_numpy(np.array(masks))
    if isinstance(masks, dict):
        masks = [masks]
    if isinstance(masks, (list, tuple)):
        if len(masks) == 0:
            width, height = pixel_size(size)
            return torch.zeros((0, height, width), dtype=torch.uint8)
        if all(isinstance(m, dict) and "counts" in m for m in masks):
            return _decode_rles(list(masks), size)
        if all(isinstance(m, (torch.Tensor, np.ndarray)) for m in masks):
            return torch.stack([torch.as_tensor(m) for m in masks], dim=0).clone()
        raise TypeError(
            "BinaryMaskList: a list of masks should hold [H, W] tensors/arrays or RLE dicts, got {}".format(
                type(masks[0])
            )
        )
    raise TypeError("BinaryMaskList: cannot interpret masks of type {}".format(type(masks)))


class BinaryMaskList(object):
    """`N` binary instance masks of one image.

    Arguments:
        masks: `[N, H, W]` (or one `[H, W]`) tensor/array; a list of `[H, W]` tensors/arrays; a list
            of COCO RLE dicts (`{"size": [h, w], "counts": ...}`, compressed or uncompressed, resized
            bilinearly to `size` if their size differs); or another BinaryMaskList. Always copied.
        size: `(width, height)` of the image; the masks must be `H x W` = `size` (rounded).

    `masks` keeps the input dtype (uint8 from RLE/polygons). Transforms make new lists.
    """

    def __init__(self, masks: Any, size: Sequence[Number]) -> None:
        size = check_size(size, "BinaryMaskList")
        masks = _masks_to_tensor(masks, size)
        if masks.dim() == 2:  # a single instance
            masks = masks[None]
        if masks.dim() != 3:
            raise ValueError("BinaryMaskList: masks should be [N, H, W], got shape {}".format(tuple(masks.shape)))
        width, height = pixel_size(size)
        if (masks.shape[1], masks.shape[2]) != (height, width):
            raise ValueError(
                "BinaryMaskList: masks of shape {} do not match size (width={}, height={})".format(
                    tuple(masks.shape), size[0], size[1]
                )
            )
        self.masks = masks
        self.size = size

    def transpose(self, method: int) -> "BinaryMaskList":
        """Mirror the pixels: FLIP_LEFT_RIGHT (columns) or FLIP_TOP_BOTTOM (rows)."""
        _check_flip(method)
        dim = 1 if method == FLIP_TOP_BOTTOM else 2
        return BinaryMaskList(self.masks.flip(dim), self.size)

    def crop(self, box: Any) -> "BinaryMaskList":
        """Cut `box=(x1, y1, x2, y2)`, corners rounded to ints and clamped into the image
        (at least 1x1); the new size is the cut's `(x2 - x1, y2 - y1)`."""
        xmin, ymin, xmax, ymax = crop_window(box, pixel_size(self.size), round)
        cropped = self.masks[:, ymin:ymax, xmin:xmax]
        return BinaryMaskList(cropped, (xmax - xmin, ymax - ymin))

    def resize(self, size: Any) -> "BinaryMaskList":
        """Bilinear resize to `size=(w, h)` (a number means square), truncated to ints; the result
        is cast back to the masks' dtype (uint8 keeps only pixels that stay exactly 1)."""
        width, height = map(int, scalar_or_pair(size))
        if width <= 0 or height <= 0:
            raise ValueError("BinaryMaskList.resize: size should be positive, got {}".format(size))
        return BinaryMaskList(_resize_like(self.masks, height, width), (width, height))

    def convert_to_polygon(self) -> "PolygonList":  # noqa: F821
        """Outer contours of each mask (cv2 RETR_EXTERNAL, CHAIN_APPROX_TC89_L1) as a PolygonList
        with one instance per mask (a mask without any 3-point contour gives an empty instance)."""
        from ._polygons import PolygonInstance, PolygonList

        if len(self) == 0:
            return PolygonList([], self.size)
        return PolygonList([PolygonInstance(c, self.size) for c in self._findContours()], self.size)

    def _findContours(self) -> List[List[List[int]]]:
        """Per mask, its outer contours as flat `[x0, y0, x1, y1, ...]` int lists."""
        import cv2

        from maskrcnn_benchmark.utils import cv2_util

        contours = []
        for mask in self.masks.detach().cpu().numpy():
            if mask.size == 0:
                contours.append([])
                continue
            image = np.ascontiguousarray(mask != 0, dtype=np.uint8)
            found, _ = cv2_util.findContours(image, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_TC89_L1)
            contours.append([np.asarray(c).reshape(-1).tolist() for c in found])
        return contours

    def to(self, *args: Any, **kwargs: Any) -> "BinaryMaskList":
        """Returns self: masks stay where they are (the original's behaviour)."""
        return self

    @classmethod
    def cat(cls, lists: Sequence["BinaryMaskList"]) -> "BinaryMaskList":
        """Concatenate the instances of mask lists of the same size."""
        sizes = {tuple(m.size) for m in lists}
        if len(sizes) != 1:
            raise ValueError("BinaryMaskList.cat: sizes differ: {}".format(sorted(sizes)))
        return cls(torch.cat([m.masks for m in lists], dim=0), lists[0].size)

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, index: Any) -> "BinaryMaskList":
        """Select masks (int, slice, index list/tensor, bool mask); always a BinaryMaskList."""
        if isinstance(index, torch.Tensor) and index.dtype == torch.uint8:
            index = index.bool()
        return BinaryMaskList(self.masks[index], self.size)

    def __iter__(self):
        return iter(self.masks)

    def __repr__(self) -> str:
        return "{}(num_instances={}, image_width={}, image_height={})".format(
            self.__class__.__name__, len(self.masks), self.size[0], self.size[1]
        )
