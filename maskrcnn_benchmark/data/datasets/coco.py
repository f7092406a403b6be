"""COCODataset: a COCO-format annotation json plus an image folder, as (image, BoxList, index).

Box conventions: the json stores `bbox = [x, y, width, height]`; targets are "xyxy" BoxLists with
the original's inclusive-pixel convention `x2 = x + width - 1`, `y2 = y + height - 1`, clipped to
`[0, W-1] x [0, H-1]` (boxes empty after clipping are removed).

Targets carry the fields "labels" (int64, contiguous 1..K in sorted json category id order),
"masks" (SegmentationMask; "poly" mode, or "mask" mode for an image whose annotations include RLE
masks) when the dataset has segmentations, and "keypoints" (PersonKeypoints) when it has keypoints.
Crowd annotations (iscrowd=1) never become targets (they stay in `coco` for the evaluator).

The annotation file is validated once, when the dataset is built (see coco_validation): `coco`, the
pycocotools COCO the evaluator and the tools read, and the training targets both come from the
cleaned json, so what DATASETS.ON_BAD_INPUT "skip" drops is dropped everywhere.
"""

import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import torch
from PIL import Image
from pycocotools import mask as mask_utils

from ...structures.bounding_box import BoxList
from ...structures.keypoint import PersonKeypoints
from ...structures.segmentation_mask import SegmentationMask
from ..image_modes import to_rgb
from .coco_problems import ValidationReport, skip_hint
from .coco_validation import NUM_PERSON_KEYPOINTS, check_on_bad_input, coco_from_dict, validate_coco_file

logger = logging.getLogger(__name__)

min_keypoints_per_image = 10  # the original's threshold for keypoint training images

# What PIL raises on unreadable, truncated or corrupt files (OSError covers missing files and
# UnidentifiedImageError; some decoders raise ValueError or SyntaxError).
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _count_visible_keypoints(anno: Sequence[dict]) -> int:
    return sum(sum(1 for v in ann["keypoints"][2::3] if v > 0) for ann in anno)


def _has_only_empty_bbox(anno: Sequence[dict]) -> bool:
    return all(any(o <= 1 for o in obj["bbox"][2:]) for obj in anno)


def has_valid_annotation(anno: Sequence[dict]) -> bool:
    """Whether an image's (non-crowd) annotations can train a model: at least one box larger than
    1 px in both sides, and for keypoint annotations at least `min_keypoints_per_image` visible
    keypoints in the image (the original's rule)."""
    if len(anno) == 0:
        return False
    if _has_only_empty_bbox(anno):
        return False
    if "keypoints" not in anno[0]:
        return True
    return _count_visible_keypoints(anno) >= min_keypoints_per_image


class ImageSizeMismatch(ValueError):
    """A decoded image whose size is not the width/height of its entry in the annotation file."""


def _segmentation_to_rle(segm: Any, height: int, width: int) -> dict:
    """A polygon list or an RLE dict as a compressed RLE of an image of height x width."""
    if isinstance(segm, list):
        return mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    if isinstance(segm["counts"], list):
        return mask_utils.frPyObjects(segm, height, width)
    return segm


class COCODataset(torch.utils.data.Dataset):
    """A COCO-format dataset (built on pycocotools).

    Arguments:
        ann_file: the annotation json.
        root: the folder holding the images (`file_name` of each image is relative to it).
        remove_images_without_annotations: True for training: keep only images that have a usable
            annotation (see `has_valid_annotation`); an unreadable image is then replaced by the next
            readable one (with on_bad_input "skip"). False for testing: keep every image; an
            unreadable image always raises.
        transforms: called as `transforms(image, target)`, returns both.
        on_bad_input: "skip" (report and drop malformed entries of the annotation file, skip
            unreadable training images or ones whose size differs from the file's) or "error"
            (raise at the first one).

    Items are `(image, target, index)`: the PIL RGB image (or what transforms makes of it), the
    target BoxList and the dataset index of the returned image.

    `coco` is a pycocotools COCO of the validated annotation file (what the evaluator and the tools
    read); `validation_report` (a ValidationReport) and `bad_input_counts` ({problem kind: count})
    say what validation dropped.
    """

    def __init__(
        self,
        ann_file: str,
        root: str,
        remove_images_without_annotations: bool,
        transforms: Optional[Callable] = None,
        on_bad_input: str = "skip",
    ):
        self.on_bad_input = check_on_bad_input(on_bad_input)
        if not os.path.isfile(ann_file):
            raise FileNotFoundError(f"COCO annotation file not found: {ann_file}")
        if not os.path.isdir(root):
            raise FileNotFoundError(f"COCO image folder not found: {root}")
        self.ann_file = ann_file
        self.root = root
        self.remove_images_without_annotations = remove_images_without_annotations
        validated = validate_coco_file(ann_file, on_bad_input)
        self.validation_report: ValidationReport = validated.report
        self.coco = coco_from_dict(validated.dataset)  # only validated ground truth, crowd included

        # Contiguous labels 1..K follow the sorted json category ids (0 is the background).
        self.json_category_id_to_contiguous_id: Dict[int, int] = {
            json_id: i + 1 for i, json_id in enumerate(sorted(self.coco.getCatIds()))
        }
        self.contiguous_category_id_to_json_id: Dict[int, int] = {
            v: k for k, v in self.json_category_id_to_contiguous_id.items()
        }
        self.categories: Dict[int, str] = {cat["id"]: cat["name"] for cat in self.coco.cats.values()}

        self._annotations: Dict[int, List[dict]] = validated.annotations_per_image
        self.has_masks = validated.has_masks
        self.has_keypoints = validated.has_keypoints
        self.bad_input_counts: Dict[str, int] = dict(validated.report.counts)

        # Sorted for a deterministic index -> image mapping.
        ids = sorted(self.coco.imgs.keys())
        if remove_images_without_annotations:
            ids = [img_id for img_id in ids if has_valid_annotation(self._annotations.get(img_id, []))]
        self.ids: List[int] = ids
        self.id_to_img_map: Dict[int, int] = dict(enumerate(self.ids))
        self._transforms = transforms

        # Unreadable images met so far by this process (each DataLoader worker counts its own).
        self.num_unreadable_images = 0
        self._unreadable: Set[int] = set()

    @property
    def class_names(self) -> List[str]:
        """Category names indexed by contiguous label; index 0 is "__background"."""
        return ["__background"] + [
            self.categories[self.contiguous_category_id_to_json_id[i]]
            for i in range(1, len(self.contiguous_category_id_to_json_id) + 1)
        ]

    def __len__(self) -> int:
        return len(self.ids)

    def get_img_info(self, index: int) -> dict:
        """The json's image entry (id, file_name, height, width, ...) of dataset index `index`."""
        return self.coco.imgs[self.id_to_img_map[index]]

    def image_path(self, index: int) -> str:
        return os.path.join(self.root, self.get_img_info(index)["file_name"])

    def __getitem__(self, idx: int) -> Tuple[Any, BoxList, int]:
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for a dataset of {len(self)} images")
        img, idx = self._read_image(idx % len(self))
        target = self._build_target(idx, img.size)
        if self._transforms is not None:
            img, target = self._transforms(img, target)
        return img, target, idx

    # ------------------------------------------------------------------------------ images
    def _open(self, index: int) -> Image.Image:
        path = self.image_path(index)
        info = self.get_img_info(index)
        try:
            with Image.open(path) as f:
                # Checked before decoding: the boxes and masks are in the file's size, and the file's
                # size bounds the memory an image may take.
                if f.size != (info["width"], info["height"]):
                    raise self._size_mismatch(path, info, f.size)
                return to_rgb(f)  # a full decode, so corruption shows here; 16-bit files are scaled
        except ImageSizeMismatch:
            raise
        except _IMAGE_ERRORS as e:
            raise OSError(
                f"cannot read image {path} (image id {info['id']}, annotation file {self.ann_file}): "
                f"{type(e).__name__}: {e}"
            ) from e

    def _size_mismatch(self, path: str, info: dict, size: Tuple[int, int]) -> ImageSizeMismatch:
        training_with_error = self.remove_images_without_annotations and self.on_bad_input == "error"
        hint = skip_hint("skip") if training_with_error else ""
        return ImageSizeMismatch(
            f"image {path} (image id {info['id']}, annotation file {self.ann_file}) is {size[0]}x{size[1]} "
            f"(width x height) but the annotation file says {info['width']}x{info['height']}{hint}"
        )

    def _read_image(self, idx: int) -> Tuple[Image.Image, int]:
        """The image of `idx`; in training with on_bad_input "skip", an unreadable image (or one
        whose size is not the annotation file's) is logged and replaced by the next readable one
        (wrapping around), so the choice is deterministic."""
        skip = self.remove_images_without_annotations and self.on_bad_input == "skip"
        if not skip:
            return self._open(idx), idx  # at test time a missing image cannot be evaluated: raise
        n = len(self)
        for k in range(n):
            index = (idx + k) % n
            if index in self._unreadable:
                continue
            try:
                return self._open(index), index
            except (OSError, ImageSizeMismatch) as e:
                self._unreadable.add(index)
                self.num_unreadable_images += 1
                logger.warning(
                    "%s; using the next image instead (DATASETS.ON_BAD_INPUT 'skip'); "
                    "%d unreadable image(s) skipped so far in this process",
                    e,
                    self.num_unreadable_images,
                )
        raise OSError(f"no readable image in the dataset of {self.ann_file} (images in {self.root})")

    # ----------------------------------------------------------------------------- targets
    def _build_target(self, idx: int, image_size: Tuple[int, int]) -> BoxList:
        anns = self._annotations.get(self.id_to_img_map[idx], [])
        boxes = torch.as_tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        target = BoxList(boxes, image_size, mode="xywh").convert("xyxy")  # x2 = x + w - 1
        labels = [self.json_category_id_to_contiguous_id[a["category_id"]] for a in anns]
        target.add_field("labels", torch.tensor(labels, dtype=torch.int64))
        if self.has_masks:
            target.add_field("masks", self._masks(idx, anns, image_size))
        if self.has_keypoints:
            keypoints = torch.as_tensor([a["keypoints"] for a in anns], dtype=torch.float32)
            target.add_field("keypoints", PersonKeypoints(keypoints.reshape(-1, NUM_PERSON_KEYPOINTS, 3), image_size))
        return target.clip_to_image(remove_empty=True)

    def _masks(self, idx: int, anns: List[dict], image_size: Tuple[int, int]) -> SegmentationMask:
        segms = [a["segmentation"] for a in anns]
        if not any(isinstance(s, dict) for s in segms):
            return SegmentationMask(segms, image_size, mode="poly")
        # An image with RLE masks: all its instances become binary masks (exact; tracing RLEs into
        # polygons could lose tiny masks and misalign masks with boxes).
        info = self.get_img_info(idx)
        rles = [_segmentation_to_rle(s, info["height"], info["width"]) for s in segms]
        return SegmentationMask(rles, image_size, mode="mask")
