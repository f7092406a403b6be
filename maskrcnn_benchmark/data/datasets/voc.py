"""PascalVOCDataset: a VOCdevkit year folder (VOC2007, VOC2012, ...) read as (image, BoxList, index).

Layout under `data_dir`:

    Annotations/<id>.xml          one annotation per image (size, objects with name, difficult, bndbox)
    ImageSets/Main/<split>.txt    the image ids of a split, one per line
    JPEGImages/<id>.jpg           the images

Box convention: VOC stores 1-based pixel indices, `xmin..xmax` both included. Targets are "xyxy"
BoxLists of 0-based inclusive pixels, so one is subtracted from all four numbers (`x1 = xmin - 1`,
`x2 = xmax - 1`; the original does the same) and the +1 rule of docs/CONVENTIONS.md#inclusive-pixels
gives the box's true width `xmax - xmin + 1`. Targets are clipped to the image and empty boxes are
removed (a VOC box one pixel wide or high has `x2 == x1` and is dropped, as in the original).

Targets carry "labels" (int64, indices into `CLASSES`, background 0) and "difficult" (bool). Objects
marked difficult are left out unless `use_difficult` (training default: left out; the evaluation
always reads them, to ignore them rather than count their detections as false positives).

A malformed annotation raises VOCAnnotationError naming the file and the field.
"""

import os
import xml.etree.ElementTree as ET
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from PIL import Image

from ...structures.bounding_box import BoxList
from ..image_modes import to_rgb

_TO_REMOVE = 1  # VOC's 1-based pixel indices -> 0-based


class VOCAnnotationError(ValueError):
    """An annotation file that cannot be read: names the file and the field."""


def _text(path: str, node: ET.Element, field: str, where: str) -> str:
    child = node.find(field)
    if child is None or child.text is None or not child.text.strip():
        raise VOCAnnotationError(f"{path}: {where}field {field!r} is missing or empty")
    return child.text.strip()


def _number(path: str, node: ET.Element, field: str, where: str) -> float:
    text = _text(path, node, field, where)
    try:
        return float(text)
    except ValueError:
        raise VOCAnnotationError(f"{path}: {where}field {field!r} is not a number: {text!r}") from None


def parse_voc_annotation(path: str, class_to_ind: Dict[str, int]) -> Dict[str, Any]:
    """One VOC xml as {"width", "height", "boxes" [N, 4] float32 0-based xyxy, "labels" [N] int64,
    "difficult" [N] bool}, every object included (difficult ones too)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"VOC annotation file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise VOCAnnotationError(f"{path}: not well-formed XML: {e}") from None
    size = root.find("size")
    if size is None:
        raise VOCAnnotationError(f"{path}: field 'size' is missing")
    width = _number(path, size, "width", "size: ")
    height = _number(path, size, "height", "size: ")
    if width != int(width) or height != int(height) or width <= 0 or height <= 0:
        raise VOCAnnotationError(f"{path}: size: width and height must be positive integers, got {width} x {height}")

    boxes: List[Tuple[float, float, float, float]] = []
    labels: List[int] = []
    difficult: List[bool] = []
    for k, obj in enumerate(root.iter("object")):
        where = f"object {k}: "
        name = _text(path, obj, "name", where).lower()
        if name not in class_to_ind:
            raise VOCAnnotationError(f"{path}: {where}field 'name' is {name!r}, not one of the VOC classes")
        where = f"object {k} ({name}): "
        flag = obj.find("difficult")
        is_difficult = False
        if flag is not None and flag.text is not None and flag.text.strip():
            try:
                is_difficult = int(flag.text.strip()) == 1
            except ValueError:
                raise VOCAnnotationError(
                    f"{path}: {where}field 'difficult' is not an integer: {flag.text.strip()!r}"
                ) from None
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise VOCAnnotationError(f"{path}: {where}field 'bndbox' is missing")
        coords = [_number(path, bndbox, f, where + "bndbox/") for f in ("xmin", "ymin", "xmax", "ymax")]
        boxes.append(tuple(c - _TO_REMOVE for c in coords))
        labels.append(class_to_ind[name])
        difficult.append(is_difficult)
    return {
        "width": int(width),
        "height": int(height),
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "difficult": torch.tensor(difficult, dtype=torch.bool),
    }


class PascalVOCDataset(torch.utils.data.Dataset):
    """PASCAL VOC detection data in the VOCdevkit layout (see the module docstring).

    Arguments:
        data_dir: the year folder (holding Annotations/, ImageSets/Main/, JPEGImages/).
        split: the image set, e.g. "train", "val", "trainval", "test".
        use_difficult: keep the objects marked difficult in the targets.
        transforms: called as `transforms(image, target)`, returns both.

    Items are `(image, target, index)`. `CLASSES` holds the 20 classes after the background, in the
    original's order (label k is `CLASSES[k]`).
    """

    CLASSES: Tuple[str, ...] = (
        "__background__",
        "aeroplane",
        "bicycle",
        "bird",
        "boat",
        "bottle",
        "bus",
        "car",
        "cat",
        "chair",
        "cow",
        "diningtable",
        "dog",
        "horse",
        "motorbike",
        "person",
        "pottedplant",
        "sheep",
        "sofa",
        "train",
        "tvmonitor",
    )

    has_masks = False
    has_keypoints = False

    def __init__(
        self, data_dir: str, split: str, use_difficult: bool = False, transforms: Optional[Callable] = None
    ) -> None:
        self.root = data_dir
        self.image_set = split
        self.keep_difficult = use_difficult
        self.transforms = transforms
        self._annopath = os.path.join(self.root, "Annotations", "%s.xml")
        self._imgpath = os.path.join(self.root, "JPEGImages", "%s.jpg")
        self._imgsetpath = os.path.join(self.root, "ImageSets", "Main", "%s.txt")

        split_file = self._imgsetpath % split
        if not os.path.isfile(split_file):
            raise FileNotFoundError(f"VOC image set file not found: {split_file} (split {split!r} of {data_dir})")
        with open(split_file) as f:
            # Blank lines are skipped; a line may carry more columns (the per-class lists): the id is first.
            self.ids: List[str] = [line.split()[0] for line in f if line.strip()]
        self.id_to_img_map: Dict[int, str] = dict(enumerate(self.ids))

        self.class_to_ind: Dict[str, int] = {name: i for i, name in enumerate(self.CLASSES)}
        self.categories: Dict[int, str] = dict(enumerate(self.CLASSES))
        self._cache: Dict[int, Dict[str, Any]] = {}  # index -> parsed annotation

    @property
    def class_names(self) -> List[str]:
        """Class names indexed by label; index 0 is the background."""
        return list(self.CLASSES)

    def __len__(self) -> int:
        return len(self.ids)

    def annotation_path(self, index: int) -> str:
        return self._annopath % self.ids[index]

    def image_path(self, index: int) -> str:
        return self._imgpath % self.ids[index]

    def _annotation(self, index: int) -> Dict[str, Any]:
        if index not in self._cache:
            self._cache[index] = parse_voc_annotation(self.annotation_path(index), self.class_to_ind)
        return self._cache[index]

    def get_groundtruth(self, index: int, use_difficult: Optional[bool] = None) -> BoxList:
        """The image's objects as an unclipped "xyxy" BoxList of the annotated image size, with
        "labels" and "difficult"; difficult objects are kept if `use_difficult` (default: the
        dataset's setting)."""
        anno = self._annotation(index)
        keep_difficult = self.keep_difficult if use_difficult is None else use_difficult
        keep = torch.ones_like(anno["difficult"]) if keep_difficult else ~anno["difficult"]
        target = BoxList(anno["boxes"][keep], (anno["width"], anno["height"]), mode="xyxy")
        target.add_field("labels", anno["labels"][keep])
        target.add_field("difficult", anno["difficult"][keep])
        return target

    def get_img_info(self, index: int) -> Dict[str, Any]:
        """{"height", "width"} from the annotation, and the image "id" and "file_name"."""
        anno = self._annotation(index)
        img_id = self.ids[index]
        return {"height": anno["height"], "width": anno["width"], "id": img_id, "file_name": img_id + ".jpg"}

    def map_class_id_to_class_name(self, class_id: int) -> str:
        return self.CLASSES[class_id]

    def __getitem__(self, index: int) -> Tuple[Any, BoxList, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} images")
        index = index % len(self)
        path = self.image_path(index)
        with Image.open(path) as f:
            img = to_rgb(f)
        target = self.get_groundtruth(index)
        if img.size != target.size:
            raise VOCAnnotationError(
                f"{self.annotation_path(index)}: field 'size' says {target.size[0]}x{target.size[1]} (width x height) "
                f"but the image {path} is {img.size[0]}x{img.size[1]}"
            )
        target = target.clip_to_image(remove_empty=True)
        if self.transforms is not None:
            img, target = self.transforms(img, target)
        return img, target, index
