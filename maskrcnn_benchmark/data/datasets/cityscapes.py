"""CityScapesDataset: the Cityscapes fine annotations (gtFine) read directly, as (image, BoxList, index).

Layout (`img_dir` and `ann_dir` each hold one folder per split, one folder per city in those):

    <img_dir>/<split>/<city>/<name>_leftImg8bit.png            the images
    <ann_dir>/<split>/<city>/<name>_gtFine_polygons.json       mode "poly": one polygon per object
    <ann_dir>/<split>/<city>/<name>_gtFine_instanceIds.png     mode "mask": label_id * 1000 + k per pixel

Images are listed sorted by path; every image must have its annotation file. `mini` keeps every
`len // mini + 1`-th image (the original's stride, so the subset spans all cities; its length is at
most `mini`).

Classes: the 10 Cityscapes labels that have instances (cityscapesscripts' `hasInstances`), in label
id order after the background, as the original: person, rider, car, truck, bus, caravan, trailer,
train, motorcycle, bicycle (so MODEL.ROI_BOX_HEAD.NUM_CLASSES is 11).

Targets are "xyxy" BoxLists with "labels" (int64, indices into CLASSES) and "masks"
(SegmentationMask in the dataset's mode):
- "poly": an object whose label is not an instance class (road, sky, the *group crowd labels, ...) is
  skipped, as in the original; each kept object becomes one instance with one polygon, in file
  order. Its box is the integer part of its vertices' extent, as the original: Cityscapes draws its
  label images with the polygon's border included, so that is the inclusive pixel box of the object.
- "mask": one binary mask per instance id >= 1000, in increasing id order; values < 1000 (plain
  label ids, crowd regions included) are no instances. The box is the mask's inclusive pixel box.
Objects whose box area `(x2 - x1) * (y2 - y1)` (the original's formula) is below `min_area` are
dropped. Boxes are clipped to the image; none is removed, so boxes and masks stay paired.

Differences from the original: an image with no instance left has an empty target (the original
returned the next image's target in its place, which also corrupted its evaluation); get_img_info
reads the image size instead of assuming 2048 x 1024; a broken annotation raises
CityscapesAnnotationError naming the file, the object and the field instead of an assert or KeyError.
cityscapesscripts is not needed: the label table below is the part of it this uses.
"""

import glob
import json
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from ...structures.bounding_box import BoxList
from ...structures.segmentation_mask import SegmentationMask
from ..image_modes import to_rgb
from .abstract import AbstractDataset

# (Cityscapes label id, name) of the labels with instances, in label id order.
INSTANCE_LABELS: Tuple[Tuple[int, str], ...] = (
    (24, "person"),
    (25, "rider"),
    (26, "car"),
    (27, "truck"),
    (28, "bus"),
    (29, "caravan"),
    (30, "trailer"),
    (31, "train"),
    (32, "motorcycle"),
    (33, "bicycle"),
)

SPLITS = ("train", "val", "test")
_IMAGE_SUFFIX = "_leftImg8bit.png"
_ANNOTATION_SUFFIX = {"poly": "_gtFine_polygons.json", "mask": "_gtFine_instanceIds.png"}
_INSTANCE_ID_BASE = 1000  # instanceIds: label_id * 1000 + instance number

Box = Tuple[int, int, int, int]


class CityscapesAnnotationError(ValueError):
    """An annotation file that cannot be read: names the file, the object and the field."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _image_size_field(path: str, ann: Dict[str, Any]) -> Optional[Tuple[int, int]]:
    """(width, height) from "imgWidth" / "imgHeight", None if the file has neither."""
    if "imgWidth" not in ann and "imgHeight" not in ann:
        return None
    size = []
    for field in ("imgWidth", "imgHeight"):
        v = ann.get(field)
        if not (_is_number(v) and v == int(v) and v > 0):
            raise CityscapesAnnotationError(f"{path}: field {field!r} must be a positive integer, got {v!r}")
        size.append(int(v))
    return size[0], size[1]


def _polygon(path: str, where: str, points: Any) -> List[float]:
    """A Cityscapes polygon `[[x, y], ...]` as the flat `[x0, y0, x1, y1, ...]` SegmentationMask takes."""
    if not isinstance(points, list):
        raise CityscapesAnnotationError(f"{path}: {where}field 'polygon' must be a list of [x, y], got {points!r}")
    flat: List[float] = []
    for j, xy in enumerate(points):
        if not (isinstance(xy, (list, tuple)) and len(xy) == 2 and all(_is_number(c) for c in xy)):
            raise CityscapesAnnotationError(f"{path}: {where}field 'polygon': point {j} is not [x, y]: {xy!r}")
        flat.extend(float(c) for c in xy)
    if len(points) < 3:
        raise CityscapesAnnotationError(
            f"{path}: {where}field 'polygon' has {len(points)} point(s); a polygon needs at least 3"
        )
    return flat


def read_polygons(
    path: str, name_to_id: Dict[str, int]
) -> Tuple[Optional[Tuple[int, int]], List[Box], List[List[float]], List[int]]:
    """A `*_gtFine_polygons.json` as (size (w, h) or None, boxes, flat polygons, contiguous labels);
    objects whose label is not in `name_to_id` are skipped."""
    try:
        with open(path) as f:
            ann = json.load(f)
    except json.JSONDecodeError as e:
        raise CityscapesAnnotationError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(ann, dict) or not isinstance(ann.get("objects"), list):
        raise CityscapesAnnotationError(f"{path}: field 'objects' is missing or not a list")
    size = _image_size_field(path, ann)
    boxes: List[Box] = []
    polygons: List[List[float]] = []
    labels: List[int] = []
    for k, obj in enumerate(ann["objects"]):
        label = obj.get("label") if isinstance(obj, dict) else None
        if not isinstance(label, str):
            raise CityscapesAnnotationError(f"{path}: object {k}: field 'label' is missing or not a string")
        if label not in name_to_id:
            continue
        poly = _polygon(path, f"object {k} ({label}): ", obj.get("polygon"))
        xs, ys = poly[0::2], poly[1::2]
        boxes.append((int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys))))
        polygons.append(poly)
        labels.append(name_to_id[label])
    return size, boxes, polygons, labels


def read_instance_ids(
    path: str, label_id_to_ind: Dict[int, int]
) -> Tuple[Tuple[int, int], List[Box], List[np.ndarray], List[int]]:
    """A `*_gtFine_instanceIds.png` as (size (w, h), boxes, [H, W] bool masks, contiguous labels)."""
    with Image.open(path) as f:
        ids = np.asarray(f).astype(np.int64)
    if ids.ndim != 2:
        raise CityscapesAnnotationError(f"{path}: an instanceIds image has one channel, this one has shape {ids.shape}")
    boxes: List[Box] = []
    masks: List[np.ndarray] = []
    labels: List[int] = []
    for value in np.unique(ids).tolist():
        if value < _INSTANCE_ID_BASE:
            continue
        label_id = value // _INSTANCE_ID_BASE
        if label_id not in label_id_to_ind:
            raise CityscapesAnnotationError(
                f"{path}: pixel value {value} is an instance of label id {label_id}, which has no instances"
            )
        mask = ids == value
        cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
        boxes.append((int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])))
        masks.append(mask)
        labels.append(label_id_to_ind[label_id])
    return (ids.shape[1], ids.shape[0]), boxes, masks, labels


class CityScapesDataset(AbstractDataset):
    """Cityscapes instances from the gtFine polygons or instanceIds images (see the module docstring).

    Arguments:
        img_dir: the leftImg8bit folder (holding train/, val/, test/).
        ann_dir: the gtFine folder (holding train/, val/, test/).
        split: "train", "val" or "test".
        mode: "poly" (polygons json) or "mask" (instanceIds png); also the masks' SegmentationMask mode.
        transforms: called as `transforms(image, target)`, returns both.
        min_area: objects with a smaller box area `(x2 - x1) * (y2 - y1)` are left out.
        mini: keep about this many images, spread over the split (debugging).

    Items are `(image, target, index)`.
    """

    CLASSES: Tuple[str, ...] = ("__background__",) + tuple(name for _, name in INSTANCE_LABELS)

    has_masks = True
    has_keypoints = False

    def __init__(
        self,
        img_dir: str,
        ann_dir: str,
        split: str,
        mode: str = "mask",
        transforms: Optional[Callable] = None,
        min_area: float = 0,
        mini: Optional[int] = None,
    ) -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"Cityscapes split must be one of {SPLITS}, got {split!r}")
        if mode not in _ANNOTATION_SUFFIX:
            raise NotImplementedError(f"Cityscapes mode is not implemented: {mode!r} (use 'poly' or 'mask')")
        if mini is not None and (isinstance(mini, bool) or not isinstance(mini, int) or mini <= 0):
            raise ValueError(f"mini must be a positive number of images or None, got {mini!r}")
        self.img_dir = os.path.abspath(os.path.join(img_dir, split))
        self.ann_dir = os.path.abspath(os.path.join(ann_dir, split))
        for what, folder in (("image", self.img_dir), ("annotation", self.ann_dir)):
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"Cityscapes {what} folder not found: {folder} (split {split!r})")
        self.split = split
        self.mode = mode
        self.transforms = transforms
        self.min_area = int(min_area)

        self.initMaps()
        # Cityscapes label id -> contiguous label; the startup model check reads the COCO-style name.
        self.cityscapesID_to_ind: Dict[int, int] = {i: self.name_to_id[name] for i, name in INSTANCE_LABELS}
        self.json_category_id_to_contiguous_id = self.cityscapesID_to_ind
        self.categories: Dict[int, str] = dict(INSTANCE_LABELS)

        pattern = os.path.join(self.img_dir, "*", "*" + _IMAGE_SUFFIX)
        img_paths = sorted(glob.glob(pattern))
        if not img_paths:
            raise FileNotFoundError(f"no Cityscapes images found: nothing matches {pattern}")
        if mini is not None:
            img_paths = img_paths[:: len(img_paths) // mini + 1]
        self.img_paths: List[str] = img_paths
        self.ann_paths: List[str] = [self._annotation_path(p) for p in img_paths]
        for img_path, ann_path in zip(self.img_paths, self.ann_paths):
            if not os.path.isfile(ann_path):
                raise FileNotFoundError(f"Cityscapes annotation file not found: {ann_path} (for image {img_path})")
        self._sizes: Dict[int, Tuple[int, int]] = {}

    def _annotation_path(self, img_path: str) -> str:
        city = os.path.basename(os.path.dirname(img_path))
        name = os.path.basename(img_path)[: -len(_IMAGE_SUFFIX)]
        return os.path.join(self.ann_dir, city, name + _ANNOTATION_SUFFIX[self.mode])

    def __len__(self) -> int:
        return len(self.img_paths)

    def _image_size(self, index: int) -> Tuple[int, int]:
        if index not in self._sizes:
            with Image.open(self.img_paths[index]) as f:  # reads the header only
                self._sizes[index] = f.size
        return self._sizes[index]

    def get_img_info(self, index: int) -> Dict[str, Any]:
        """{"height", "width"} of the image (read from its header), and as the original "idx",
        "img_path", "ann_path"; "id" is the image name (`<city>_<seq>_<frame>`), "file_name" the
        image path relative to img_dir."""
        width, height = self._image_size(index)
        img_path = self.img_paths[index]
        return {
            "height": height,
            "width": width,
            "idx": index,
            "img_path": img_path,
            "ann_path": self.ann_paths[index],
            "id": os.path.basename(img_path)[: -len(_IMAGE_SUFFIX)],
            "file_name": os.path.relpath(img_path, self.img_dir),
        }

    def get_groundtruth(self, index: int) -> BoxList:
        """The image's instances at the annotated size, without reading the image or transforming:
        an "xyxy" BoxList with "labels" and "masks" (min_area applied, boxes clipped)."""
        ann_path = self.ann_paths[index]
        if self.mode == "poly":
            size, boxes, instances, labels = read_polygons(ann_path, self.name_to_id)
            size = size or self._image_size(index)
            segmentations: Any = [[poly] for poly in instances]  # one polygon per Cityscapes object
        else:
            size, boxes, instances, labels = read_instance_ids(ann_path, self.cityscapesID_to_ind)
            width, height = size
            stacked = np.stack(instances) if instances else np.zeros((0, height, width), dtype=bool)
            segmentations = torch.from_numpy(stacked.astype(np.uint8))

        keep = [k for k, (x1, y1, x2, y2) in enumerate(boxes) if (x2 - x1) * (y2 - y1) >= self.min_area]
        target = BoxList(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)[keep], size, mode="xyxy")
        target.add_field("labels", torch.tensor(labels, dtype=torch.int64)[keep])
        if self.mode == "poly":
            masks = SegmentationMask([segmentations[k] for k in keep], size, mode="poly")
        else:
            masks = SegmentationMask(segmentations[keep], size, mode="mask")
        target.add_field("masks", masks)
        return target.clip_to_image(remove_empty=False)

    def __getitem__(self, index: int) -> Tuple[Any, BoxList, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} images")
        index = index % len(self)
        path = self.img_paths[index]
        with Image.open(path) as f:
            img = to_rgb(f)
        target = self.get_groundtruth(index)
        if img.size != target.size:
            raise CityscapesAnnotationError(
                f"{self.ann_paths[index]}: the annotation is {target.size[0]}x{target.size[1]} (width x height) "
                f"but the image {path} is {img.size[0]}x{img.size[1]}"
            )
        if self.transforms is not None:
            img, target = self.transforms(img, target)
        return img, target, index

    def map_class_id_to_class_name(self, class_id: int) -> str:
        return self.CLASSES[class_id]
