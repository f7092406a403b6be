"""Reporting of malformed COCO input: the kinds of problems, their messages, and the summary.

A problem names the annotation file, the image id, the annotation id (when it is about an
annotation), the field and the offending value (shortened). `ProblemLog.add` raises ValueError at
the first problem with on_bad_input "error", and otherwise counts it per kind and keeps the first
few messages for the one summary warning (`ValidationReport.summary`).
"""

import reprlib
from collections import Counter
from typing import Any, List, Optional

ON_BAD_INPUT_CHOICES = ("skip", "error")
NUM_EXAMPLES_LOGGED = 5


def skip_hint(verb: str = "drop") -> str:
    """The end of an "error"-mode message: how to let the input be dropped (skipped) instead."""
    return f" (set DATASETS.ON_BAD_INPUT 'skip' to {verb} it)"


SKIP_HINT = skip_hint("drop")

# Kinds of problems (the keys of the summary counts and of COCODataset.bad_input_counts).
IMAGE_NOT_DICT = "image: entry not a dict"
IMAGE_ID = "image: id missing or not an integer"
IMAGE_DUPLICATE_ID = "image: duplicate id"
IMAGE_SIZE = "image: width/height missing, not positive integers or too large"
IMAGE_FILE_NAME = "image: file_name missing or not a non-empty string"
ANN_NOT_DICT = "annotation: entry not a dict"
ANN_ID = "annotation: id missing or not an integer"
ANN_DUPLICATE_ID = "annotation: duplicate id"
ANN_IMAGE_UNKNOWN = "image_id: not an image of the file"
CATEGORY_UNKNOWN = "category_id: not in the categories"
ISCROWD = "iscrowd: not 0 or 1"
AREA = "area: not a finite number >= 0"
BBOX_MISSING = "bbox: missing"
BBOX_NOT_NUMBERS = "bbox: not 4 numbers"
BBOX_NON_FINITE = "bbox: non-finite value"
BBOX_EMPTY = "bbox: zero or negative width/height"
BBOX_FAR = "bbox: far outside the image"
BBOX_OUTSIDE = "bbox: outside the image"
SEGM_EMPTY = "segmentation: missing or empty"
SEGM_FEW_POINTS = "segmentation: polygon with fewer than 3 points"
SEGM_ODD = "segmentation: polygon with an odd number of coordinates"
SEGM_NON_FINITE = "segmentation: polygon with a non-finite or non-numeric coordinate"
SEGM_FAR = "segmentation: polygon far outside the image or too long"
SEGM_BAD_RLE = "segmentation: malformed RLE"
SEGM_EMPTY_RLE = "segmentation: RLE mask without any pixel"
SEGM_UNKNOWN = "segmentation: neither polygons nor RLE"
KP_LENGTH = "keypoints: wrong length"
KP_NON_FINITE = "keypoints: non-finite or non-numeric value"
KP_FAR = "keypoints: far outside the image"
NUM_KEYPOINTS = "num_keypoints: not an integer >= 0"

# Problems of a single polygon: the annotation survives them if it keeps another, valid polygon.
POLYGON_KINDS = frozenset({SEGM_FEW_POINTS, SEGM_ODD, SEGM_NON_FINITE, SEGM_FAR})


def check_on_bad_input(on_bad_input: str) -> str:
    if on_bad_input not in ON_BAD_INPUT_CHOICES:
        raise ValueError(
            f"on_bad_input (DATASETS.ON_BAD_INPUT) must be one of {ON_BAD_INPUT_CHOICES}, got {on_bad_input!r}"
        )
    return on_bad_input


# Bounded repr: a hostile value may be a huge list, a long string or deeply nested.
_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = 12
_REPR.maxdict = 6
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlong = 40


def show(value: Any) -> str:
    """repr of an offending value, shortened (with its length) when long."""
    text = _REPR.repr(value)
    if isinstance(value, (list, dict, str)) and len(value) > _REPR.maxlist:
        text += f" ({len(value)} values)"
    return text


def image_where(ann_file: str, image_id: Any, index: int) -> str:
    """Where an image entry is: its id, or its position when it has no usable id."""
    if type(image_id) is int:
        return f"{ann_file}: image id {image_id}"
    return f"{ann_file}: images[{index}]"


def annotation_where(ann_file: str, ann: Any, index: int) -> str:
    if not isinstance(ann, dict):
        return f"{ann_file}: annotations[{index}]"
    ann_id = ann.get("id")
    ann_text = ann_id if type(ann_id) is int else f"{show(ann_id)} (annotations[{index}])"
    return f"{ann_file}: image id {show(ann.get('image_id'))}, annotation id {ann_text}"


class ValidationReport:
    """What validating one annotation file found and dropped.

    Attributes:
        counts: {problem kind: occurrences}; examples: the first few full messages.
        num_images / num_annotations: entries in the file.
        num_images_dropped: image entries dropped (broken or sharing an id).
        num_annotations_dropped: all annotations left out of the cleaned file, of which
            num_annotations_dropped_with_images belonged to a dropped image entry.
        num_polygons_removed: bad polygons removed from annotations that were kept.
        filled: {field: number of annotations where the missing field was filled in}.
    """

    def __init__(self, ann_file: str):
        self.ann_file = ann_file
        self.counts: Counter = Counter()
        self.examples: List[str] = []
        self.num_images = 0
        self.num_annotations = 0
        self.num_images_dropped = 0
        self.num_annotations_dropped = 0
        self.num_annotations_dropped_with_images = 0
        self.num_polygons_removed = 0
        self.filled: Counter = Counter()

    @property
    def dropped_anything(self) -> bool:
        return bool(self.num_images_dropped or self.num_annotations_dropped or self.num_polygons_removed)

    def _count_lines(self) -> List[str]:
        lines = [f"  {kind}: {n}" for kind, n in sorted(self.counts.items())]
        lines.append(f"  first {len(self.examples)} report(s):")
        return lines + [f"    {m}" for m in self.examples]

    def summary(self) -> str:
        """The warning logged once when the dataset is built."""
        own = self.num_annotations_dropped - self.num_annotations_dropped_with_images
        head = (
            f"{self.ann_file}: {sum(self.counts.values())} malformed input(s) skipped "
            f"(DATASETS.ON_BAD_INPUT 'skip'): {own} annotation(s) dropped, "
            f"{self.num_images_dropped} image(s) dropped together with their "
            f"{self.num_annotations_dropped_with_images} annotation(s), "
            f"{self.num_polygons_removed} bad polygon(s) removed from annotations that were kept."
        )
        return "\n".join([head] + self._count_lines())

    def evaluation_note(self) -> str:
        """What the evaluator logs: its ground truth is the validated file, not the raw one."""
        return (
            f"the ground truth is {self.ann_file} as validated (DATASETS.ON_BAD_INPUT 'skip'): "
            f"{self.num_images_dropped} of {self.num_images} image(s) and {self.num_annotations_dropped} of "
            f"{self.num_annotations} annotation(s) of the file were dropped "
            f"({self.num_annotations_dropped_with_images} with their images) and "
            f"{self.num_polygons_removed} bad polygon(s) removed; they are not evaluated. Problems:\n"
            + "\n".join(self._count_lines())
        )


class ProblemLog:
    """Collects problems for one annotation file (see the module docstring)."""

    def __init__(self, report: ValidationReport, on_bad_input: str):
        self.report = report
        self.raise_first = check_on_bad_input(on_bad_input) == "error"

    def add(self, kind: str, where: str, field: Optional[str], value: Any, why: str) -> None:
        if self.raise_first or len(self.report.examples) < NUM_EXAMPLES_LOGGED:
            # Messages are only rendered when shown (showing a huge value costs time).
            what = f"field {field!r} = {show(value)}" if field else show(value)
            message = f"{where}: {what}: {why}"
            if self.raise_first:
                raise ValueError(message + SKIP_HINT)
            self.report.examples.append(message)
        self.report.counts[kind] += 1
