"""Keypoints of the instances of one image, and the keypoint-head heatmap targets.

`Keypoints.keypoints` is a float32 `[N, K, 3]` tensor of `(x, y, visibility)` in image pixels;
COCO convention: an invisible point (`v == 0`) has `x = y = 0`.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from ._fields import FieldsMixin
from .bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM  # noqa: F401  (re-exported like the original)


class Keypoints(FieldsMixin):
    """Keypoints of N instances.

    Arguments:
        keypoints: `[N, K, 3]` or `[N, 3K]` (tensor, array, nested list); stored as float32 `[N, K, 3]`
            on the input's device. An empty input is kept as given.
        size: `(width, height)` of the image, kept as given.
        mode: unused, kept for the original's signature.

    Subclasses set `FLIP_INDS` (the index each keypoint takes after a horizontal flip).
    """

    FLIP_INDS: Optional[torch.Tensor] = None

    def __init__(self, keypoints: Any, size: Sequence[Any], mode: Optional[str] = None) -> None:
        device = keypoints.device if isinstance(keypoints, torch.Tensor) else torch.device("cpu")
        keypoints = torch.as_tensor(keypoints, dtype=torch.float32, device=device)
        num_instances = keypoints.shape[0] if keypoints.dim() > 0 else 0
        if num_instances:
            if keypoints.numel() % (3 * num_instances):
                raise ValueError(
                    "keypoints should be [N, K, 3] or [N, 3K] (x, y, visibility), got shape {}".format(
                        tuple(keypoints.shape)
                    )
                )
            keypoints = keypoints.reshape(num_instances, -1, 3)
        self.keypoints = keypoints
        self.size = size
        self.mode = mode
        self.extra_fields: Dict[str, Any] = {}

    def _new(self, keypoints: torch.Tensor, size: Sequence[Any]) -> "Keypoints":
        return type(self)(keypoints, size, self.mode)

    def crop(self, box: Any) -> "Keypoints":
        raise NotImplementedError("Keypoints.crop is not implemented (neither was it in the original)")

    def resize(self, size: Sequence[Any], *args: Any, **kwargs: Any) -> "Keypoints":
        """Scale x by the width ratio and y by the height ratio; fields are shared."""
        ratio_w, ratio_h = (float(s) / float(s_orig) for s, s_orig in zip(size, self.size))
        resized = self.keypoints.clone()
        if resized.dim() == 3:
            resized[..., 0] *= ratio_w
            resized[..., 1] *= ratio_h
        out = self._new(resized, size)
        out.extra_fields = dict(self.extra_fields)
        return out

    def transpose(self, method: int) -> "Keypoints":
        """Horizontal flip only: reorder by FLIP_INDS, `x -> W - x - 1`, zero invisible points."""
        if method not in (FLIP_LEFT_RIGHT,):
            raise NotImplementedError("Only FLIP_LEFT_RIGHT implemented")
        if self.keypoints.dim() != 3 or self.keypoints.shape[0] == 0:
            flipped = self.keypoints.clone()
        else:
            flip_inds = type(self).FLIP_INDS
            if flip_inds is None:
                raise NotImplementedError("{} defines no FLIP_INDS".format(type(self).__name__))
            flipped = self.keypoints[:, flip_inds.to(self.keypoints.device)]
            flipped[..., 0] = self.size[0] - flipped[..., 0] - 1
            flipped[flipped[..., 2] == 0] = 0  # COCO: v == 0 -> x = y = 0
        out = self._new(flipped, self.size)
        out.extra_fields = dict(self.extra_fields)
        return out

    def to(self, *args: Any, **kwargs: Any) -> "Keypoints":
        out = self._new(self.keypoints.to(*args, **kwargs), self.size)
        for k, v in self.extra_fields.items():
            if hasattr(v, "to"):
                v = v.to(*args, **kwargs)
            out.add_field(k, v)
        return out

    def __getitem__(self, item: Any) -> "Keypoints":
        """Select instances (slice, index list/tensor, bool mask) in the keypoints and every field."""
        if isinstance(item, torch.Tensor) and item.dtype == torch.uint8:
            item = item.bool()
        out = self._new(self.keypoints[item], self.size)
        for k, v in self.extra_fields.items():
            out.add_field(k, v[item])
        return out

    @classmethod
    def cat(cls, keypoints: Sequence["Keypoints"]) -> "Keypoints":
        """Concatenate the instances (and tensor fields) of Keypoints of one image."""
        sizes = {tuple(k.size) for k in keypoints}
        if len(sizes) != 1:
            raise ValueError("{}.cat: sizes differ: {}".format(cls.__name__, sorted(sizes)))
        out = cls(torch.cat([k.keypoints for k in keypoints], dim=0), keypoints[0].size, keypoints[0].mode)
        for field in keypoints[0].extra_fields:
            out.add_field(field, torch.cat([k.get_field(field) for k in keypoints], dim=0))
        return out

    def __repr__(self) -> str:
        return "{}(num_instances={}, image_width={}, image_height={})".format(
            self.__class__.__name__, len(self.keypoints), self.size[0], self.size[1]
        )


def _create_flip_indices(names: Sequence[str], flip_map: Dict[str, str]) -> torch.Tensor:
    """For each name, the index of its mirror image (itself if it has none)."""
    full = dict(flip_map)
    full.update({v: k for k, v in flip_map.items()})
    return torch.tensor([names.index(full.get(name, name)) for name in names])


def kp_connections(keypoints: Sequence[str]) -> List[List[int]]:
    """The 15 limbs drawn between COCO person keypoints, as index pairs into `keypoints` (names)."""
    pairs = [
        ("left_eye", "right_eye"),
        ("left_eye", "nose"),
        ("right_eye", "nose"),
        ("right_eye", "right_ear"),
        ("left_eye", "left_ear"),
        ("right_shoulder", "right_elbow"),
        ("right_elbow", "right_wrist"),
        ("left_shoulder", "left_elbow"),
        ("left_elbow", "left_wrist"),
        ("right_hip", "right_knee"),
        ("right_knee", "right_ankle"),
        ("left_hip", "left_knee"),
        ("left_knee", "left_ankle"),
        ("right_shoulder", "left_shoulder"),
        ("right_hip", "left_hip"),
    ]
    return [[keypoints.index(a), keypoints.index(b)] for a, b in pairs]


class PersonKeypoints(Keypoints):
    """The 17 COCO person keypoints."""

    NAMES = [
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ]
    FLIP_MAP = {
        "left_eye": "right_eye",
        "left_ear": "right_ear",
        "left_shoulder": "right_shoulder",
        "left_elbow": "right_elbow",
        "left_wrist": "right_wrist",
        "left_hip": "right_hip",
        "left_knee": "right_knee",
        "left_ankle": "right_ankle",
    }


PersonKeypoints.FLIP_INDS = _create_flip_indices(PersonKeypoints.NAMES, PersonKeypoints.FLIP_MAP)
PersonKeypoints.CONNECTIONS = kp_connections(PersonKeypoints.NAMES)


def keypoints_to_heat_map(keypoints: Any, rois: torch.Tensor, heatmap_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Heatmap targets of the keypoint head.

    Arguments:
        keypoints: `[N, K, 3]` tensor (or Keypoints) matched to the rois.
        rois: `[N, 4]` xyxy boxes.
        heatmap_size: S (56).

    Returns `(heatmaps, valid)`, both long `[N, K]`: with `scale = S / (x2 - x1)` (no +1),
    `x = floor((kx - x1) * scale)` (same for y), a point exactly on the right/bottom edge mapped to
    S - 1; `valid` is 1 where `0 <= x, y < S` and visibility > 0 (and the roi has a positive width
    and height), and `heatmaps = (y * S + x) * valid`.
    """
    if isinstance(keypoints, Keypoints):
        keypoints = keypoints.keypoints
    if rois.numel() == 0:
        k = keypoints.shape[1] if keypoints.dim() == 3 else 0
        empty = torch.zeros((0, k), dtype=torch.long, device=rois.device)
        return empty, empty.clone()

    x1, y1, x2, y2 = (rois[:, i][:, None] for i in range(4))
    scale_x = heatmap_size / (x2 - x1)
    scale_y = heatmap_size / (y2 - y1)

    kx, ky = keypoints[..., 0], keypoints[..., 1]
    x = ((kx - x1) * scale_x).floor()
    y = ((ky - y1) * scale_y).floor()
    x = torch.where(kx == x2, torch.full_like(x, heatmap_size - 1), x)
    y = torch.where(ky == y2, torch.full_like(y, heatmap_size - 1), y)

    valid = (x >= 0) & (y >= 0) & (x < heatmap_size) & (y < heatmap_size)
    valid = valid & (keypoints[..., 2] > 0) & (x2 > x1) & (y2 > y1)
    x = torch.where(valid, x, torch.zeros_like(x)).long()
    y = torch.where(valid, y, torch.zeros_like(y)).long()
    valid = valid.long()
    heatmaps = (y * heatmap_size + x) * valid
    return heatmaps, valid
