"""`BoxList`: the boxes of one image plus per-box fields (labels, scores, masks, keypoints...).

Pixel conventions (the original's, kept on purpose; docs/CONVENTIONS.md#inclusive-pixels):
- boxes are inclusive pixel ranges: in "xyxy" mode a box covers columns x1..x2, so its width is
  `x2 - x1 + 1`; "xywh" stores `(x1, y1, w, h)` with that same `w = x2 - x1 + 1`;
- `area()` and IoU count with that "+1";
- `clip_to_image` clamps to `[0, W-1] x [0, H-1]`;
- `transpose(FLIP_LEFT_RIGHT)` maps `x -> W - x - 1`, but `transpose(FLIP_TOP_BOTTOM)` maps
  `y -> H - y` (no -1; a quirk of the original that datasets and tests rely on).
"""

from typing import Any, Dict, List, Sequence, Tuple, Union

import torch

from ._fields import FieldsMixin

# transpose methods
FLIP_LEFT_RIGHT = 0
FLIP_TOP_BOTTOM = 1

_MODES = ("xyxy", "xywh")
_TO_REMOVE = 1  # the "+1" of inclusive pixel ranges

Size = Tuple[Union[int, float], Union[int, float]]


def _as_box_tensor(bbox: Any) -> torch.Tensor:
    """Boxes as a tensor on their own device: float32, or the input's own floating dtype."""
    if isinstance(bbox, torch.Tensor):
        if bbox.is_floating_point():
            return bbox
        return bbox.to(torch.float32)
    return torch.as_tensor(bbox, dtype=torch.float32)


def _box_to_numbers(box: Any) -> List[Union[int, float]]:
    """A crop box (list, tuple, array or tensor of 4 numbers) as four Python numbers."""
    values = box.tolist() if hasattr(box, "tolist") else list(box)
    if len(values) != 4:
        raise ValueError("a crop box needs 4 numbers (x1, y1, x2, y2), got {}".format(box))
    return values


class BoxList(FieldsMixin):
    """A set of `N` boxes of one image, in one mode, with per-box fields.

    Arguments:
        bbox: `[N, 4]` boxes (tensor, array or nested list). Stored as float32 on the input's device,
            except that a tensor already of another floating dtype (float64, float16, bfloat16)
            keeps its dtype. A float tensor is stored as is (no copy), so autograd flows through.
        image_size: `(width, height)` of the image, kept as given.
        mode: "xyxy" (inclusive corners) or "xywh" (`w = x2 - x1 + 1`).

    Fields (`add_field`) hold per-box data indexed along their first dimension: tensors, or objects
    with `__getitem__` and, to follow geometric transforms, `resize`/`transpose`/`crop`/`to`
    (SegmentationMask, Keypoints).
    """

    def __init__(self, bbox: Any, image_size: Size, mode: str = "xyxy") -> None:
        bbox = _as_box_tensor(bbox)
        if bbox.ndimension() != 2:
            raise ValueError("bbox should have 2 dimensions [N, 4], got shape {}".format(tuple(bbox.shape)))
        if bbox.size(-1) != 4:
            raise ValueError("last dimension of bbox should have a size of 4, got shape {}".format(tuple(bbox.shape)))
        if mode not in _MODES:
            raise ValueError("mode should be 'xyxy' or 'xywh', got {!r}".format(mode))

        self.bbox = bbox
        self.size = image_size  # (image_width, image_height)
        self.mode = mode
        self.extra_fields: Dict[str, Any] = {}

    # ----------------------------------------------------------------------------- fields
    def _copy_extra_fields(self, bbox: "BoxList") -> None:
        """Copy (by reference) every field of `bbox` into this BoxList."""
        for k, v in bbox.extra_fields.items():
            self.extra_fields[k] = v

    # ----------------------------------------------------------------------------- modes
    def convert(self, mode: str) -> "BoxList":
        """This BoxList in `mode` ("xyxy"/"xywh"); `self` if already in it. Fields are shared."""
        if mode not in _MODES:
            raise ValueError("mode should be 'xyxy' or 'xywh', got {!r}".format(mode))
        if mode == self.mode:
            return self
        xmin, ymin, xmax, ymax = self._split_into_xyxy()
        if mode == "xyxy":
            bbox = torch.cat((xmin, ymin, xmax, ymax), dim=-1)
        else:
            bbox = torch.cat((xmin, ymin, xmax - xmin + _TO_REMOVE, ymax - ymin + _TO_REMOVE), dim=-1)
        out = BoxList(bbox, self.size, mode=mode)
        out._copy_extra_fields(self)
        return out

    def _split_into_xyxy(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Four `[N, 1]` tensors x1, y1, x2, y2 (from xywh: `x2 = x1 + max(w - 1, 0)`)."""
        if self.mode == "xyxy":
            xmin, ymin, xmax, ymax = self.bbox.split(1, dim=-1)
            return xmin, ymin, xmax, ymax
        if self.mode == "xywh":
            xmin, ymin, w, h = self.bbox.split(1, dim=-1)
            return (
                xmin,
                ymin,
                xmin + (w - _TO_REMOVE).clamp(min=0),
                ymin + (h - _TO_REMOVE).clamp(min=0),
            )
        raise RuntimeError("Should not be here")

    def _with_fields(self, bbox: torch.Tensor, size: Size, mode: str, apply) -> "BoxList":
        """New BoxList whose tensor fields are shared and other fields mapped through `apply`."""
        out = BoxList(bbox, size, mode=mode)
        for k, v in self.extra_fields.items():
            if not isinstance(v, torch.Tensor):
                v = apply(v)
            out.add_field(k, v)
        return out

    # ----------------------------------------------------------------------------- geometry
    def resize(self, size: Size, *args: Any, **kwargs: Any) -> "BoxList":
        """Rescale to a new image `size=(w, h)`.

        Equal width/height ratios scale every coordinate (in the current mode) by that ratio;
        otherwise x1, x2 scale by the width ratio and y1, y2 by the height ratio (in xyxy).
        Non-tensor fields get `.resize(size, *args, **kwargs)`; tensor fields are kept as they are.
        """
        ratios = tuple(float(s) / float(s_orig) for s, s_orig in zip(size, self.size))
        apply = lambda v: v.resize(size, *args, **kwargs)  # noqa: E731
        if ratios[0] == ratios[1]:
            return self._with_fields(self.bbox * ratios[0], size, self.mode, apply)

        ratio_width, ratio_height = ratios
        xmin, ymin, xmax, ymax = self._split_into_xyxy()
        scaled = torch.cat((xmin * ratio_width, ymin * ratio_height, xmax * ratio_width, ymax * ratio_height), dim=-1)
        return self._with_fields(scaled, size, "xyxy", apply).convert(self.mode)

    def transpose(self, method: int) -> "BoxList":
        """Flip the boxes: FLIP_LEFT_RIGHT (`x -> W - x - 1`) or FLIP_TOP_BOTTOM (`y -> H - y`).

        Non-tensor fields get `.transpose(method)`.
        """
        if method not in (FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM):
            raise NotImplementedError("Only FLIP_LEFT_RIGHT and FLIP_TOP_BOTTOM implemented")
        image_width, image_height = self.size
        xmin, ymin, xmax, ymax = self._split_into_xyxy()
        if method == FLIP_LEFT_RIGHT:
            flipped = (image_width - xmax - _TO_REMOVE, ymin, image_width - xmin - _TO_REMOVE, ymax)
        else:
            flipped = (xmin, image_height - ymax, xmax, image_height - ymin)
        bbox = torch.cat(flipped, dim=-1)
        return self._with_fields(bbox, self.size, "xyxy", lambda v: v.transpose(method)).convert(self.mode)

    def crop(self, box: Any) -> "BoxList":
        """Crop to `box=(x1, y1, x2, y2)`: shift by (x1, y1), clamp to `[0, w] x [0, h]`.

        The new image size is `(x2 - x1, y2 - y1)` (no +1); empty boxes are kept. Non-tensor
        fields get `.crop(box)`.
        """
        x1, y1, x2, y2 = _box_to_numbers(box)
        w, h = x2 - x1, y2 - y1
        xmin, ymin, xmax, ymax = self._split_into_xyxy()
        cropped = torch.cat(
            (
                (xmin - x1).clamp(min=0, max=w),
                (ymin - y1).clamp(min=0, max=h),
                (xmax - x1).clamp(min=0, max=w),
                (ymax - y1).clamp(min=0, max=h),
            ),
            dim=-1,
        )
        return self._with_fields(cropped, (w, h), "xyxy", lambda v: v.crop(box)).convert(self.mode)

    def clip_to_image(self, remove_empty: bool = True) -> "BoxList":
        """Clamp boxes to `[0, W-1] x [0, H-1]`.

        Like the original, this updates `self` (its `bbox` is replaced) and returns `self`, or, with
        `remove_empty`, `self[keep]` where keep drops boxes with `x2 <= x1` or `y2 <= y1`. Unlike the
        original no tensor is modified in place, so it works when the boxes require grad; xywh
        boxes are clipped as the boxes they describe.
        """
        xmin, ymin, xmax, ymax = self._split_into_xyxy()
        max_x = self.size[0] - _TO_REMOVE
        max_y = self.size[1] - _TO_REMOVE
        xmin, xmax = xmin.clamp(min=0, max=max_x), xmax.clamp(min=0, max=max_x)
        ymin, ymax = ymin.clamp(min=0, max=max_y), ymax.clamp(min=0, max=max_y)
        if self.mode == "xyxy":
            self.bbox = torch.cat((xmin, ymin, xmax, ymax), dim=-1)
        else:
            self.bbox = torch.cat((xmin, ymin, xmax - xmin + _TO_REMOVE, ymax - ymin + _TO_REMOVE), dim=-1)
        if remove_empty:
            keep = ((ymax > ymin) & (xmax > xmin)).squeeze(1)
            return self[keep]
        return self

    def area(self) -> torch.Tensor:
        """`[N]` areas: xyxy `(x2 - x1 + 1) * (y2 - y1 + 1)`, xywh `w * h`."""
        box = self.bbox
        if self.mode == "xyxy":
            return (box[:, 2] - box[:, 0] + _TO_REMOVE) * (box[:, 3] - box[:, 1] + _TO_REMOVE)
        if self.mode == "xywh":
            return box[:, 2] * box[:, 3]
        raise RuntimeError("Should not be here")

    # ----------------------------------------------------------------------------- containers
    def to(self, device: Union[str, torch.device], **kwargs: Any) -> "BoxList":
        """Copy to `device`; fields with a `.to` method are moved too."""
        out = BoxList(self.bbox.to(device, **kwargs), self.size, self.mode)
        for k, v in self.extra_fields.items():
            if hasattr(v, "to"):
                v = v.to(device, **kwargs)
            out.add_field(k, v)
        return out

    def __getitem__(self, item: Any) -> "BoxList":
        """Select boxes (slice, index list/tensor, bool mask; an int keeps one box) in every field."""
        if isinstance(item, torch.Tensor) and item.dtype == torch.uint8:
            item = item.bool()
        elif isinstance(item, torch.Tensor) and item.dim() == 0:
            item = item.reshape(1)  # a 0-d index (e.g. from argmax) keeps one box, like an int
        elif isinstance(item, int) and not isinstance(item, bool):
            item = [item]
        out = BoxList(self.bbox[item], self.size, self.mode)
        for k, v in self.extra_fields.items():
            out.add_field(k, v[item])
        return out

    def __len__(self) -> int:
        return self.bbox.shape[0]

    def copy_with_fields(self, fields: Union[str, Sequence[str]], skip_missing: bool = False) -> "BoxList":
        """New BoxList sharing the boxes and only `fields` (KeyError for a missing one unless skipped)."""
        out = BoxList(self.bbox, self.size, self.mode)
        if not isinstance(fields, (list, tuple)):
            fields = [fields]
        for field in fields:
            if self.has_field(field):
                out.add_field(field, self.get_field(field))
            elif not skip_missing:
                raise KeyError("Field '{}' not found in {}".format(field, self))
        return out

    def __repr__(self) -> str:
        return "{}(num_boxes={}, image_width={}, image_height={}, mode={})".format(
            self.__class__.__name__, len(self), self.size[0], self.size[1], self.mode
        )
