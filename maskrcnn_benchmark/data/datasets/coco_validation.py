"""Validation of a COCO annotation file, once, into the cleaned json every reader uses.

`validate_coco_file` reads the file and checks everything in it (see coco_integrity for the file's
structure and categories, coco_annotations / coco_geometry / coco_rle for the entries). The result
holds the cleaned json dict: only valid image entries and annotations (crowd ones included), bad
polygons removed from annotations that keep a valid one, and missing `iscrowd`, `area`,
`num_keypoints` (and in keypoint datasets `keypoints`) filled in. COCODataset builds its
pycocotools COCO (the evaluator's ground truth) and its training targets from it, so training,
evaluation and visualisation see the same annotations.

Bad input (DATASETS.ON_BAD_INPUT): "error" raises ValueError at the first problem, naming the file,
image id, annotation id, field and value; "skip" drops what is malformed (an image entry together
with its annotations; for a duplicate image id every entry with it; for a duplicate annotation id
every annotation with it) and logs ONE summary warning: counts per kind of problem and the first
few reports in full. Problems of the file's structure or categories always raise.

Box convention of the json: `bbox = [x, y, width, height]` in pixels (COCO's).
"""

import contextlib
import gc
import io
import logging
from typing import Any, Dict, List

from pycocotools.coco import COCO

from .coco_annotations import AnnotationChecker, complete_annotations
from .coco_geometry import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, NUM_PERSON_KEYPOINTS  # noqa: F401 (re-exported)
from .coco_integrity import check_images, load_json, top_level_lists
from .coco_problems import ON_BAD_INPUT_CHOICES, ProblemLog, ValidationReport, check_on_bad_input  # noqa: F401

logger = logging.getLogger(__name__)


class ValidatedCoco:
    """The result of a validation.

    Attributes:
        dataset: the cleaned json dict (the file's other top-level keys kept).
        annotations_per_image: {image id: its non-crowd annotations} for every kept image (the
            training targets; crowd annotations, and boxes that the clipping to the image empties,
            e.g. under a pixel wide, are only for the evaluator).
        has_masks / has_keypoints: whether the dataset provides that target field.
        report: what was found and dropped (ValidationReport).
    """

    def __init__(
        self,
        dataset: dict,
        annotations_per_image: Dict[int, List[dict]],
        has_masks: bool,
        has_keypoints: bool,
        report: ValidationReport,
    ):
        self.dataset = dataset
        self.annotations_per_image = annotations_per_image
        self.has_masks = has_masks
        self.has_keypoints = has_keypoints
        self.report = report


@contextlib.contextmanager
def _gc_paused():
    """A parsed COCO file is millions of objects that are never garbage; pausing the cyclic garbage
    collector keeps it from walking them again and again while they are made and checked (it
    halves the time of loading and validating a large file)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def validate_coco_file(ann_file: str, on_bad_input: str = "skip") -> ValidatedCoco:
    """Read and validate `ann_file` (ValueError naming it if it is not a usable COCO file)."""
    check_on_bad_input(on_bad_input)
    with _gc_paused():
        return validate_coco_dict(load_json(ann_file), ann_file, on_bad_input)


def validate_coco_dict(data: Any, ann_file: str, on_bad_input: str = "skip") -> ValidatedCoco:
    """Validate parsed json `data` of `ann_file` (the name is for messages). `data` is not modified:
    changed entries are copies."""
    report = ValidationReport(ann_file)
    log = ProblemLog(report, on_bad_input)
    images, annotations, categories = top_level_lists(data, ann_file)
    report.num_images, report.num_annotations = len(images), len(annotations)

    kept_images, dropped_image_ids = check_images(images, ann_file, log)
    images_by_id = {img["id"]: img for img in kept_images}
    checker = AnnotationChecker(ann_file, images_by_id, dropped_image_ids, {c["id"] for c in categories}, log)
    checked = checker.run(annotations)
    kept, has_masks, has_keypoints = complete_annotations(checked, images_by_id, ann_file, log, report.filled)

    report.num_images_dropped = len(images) - len(kept_images)
    report.num_annotations_dropped = len(annotations) - len(kept)
    report.num_annotations_dropped_with_images = checker.num_dropped_with_images
    report.num_polygons_removed = checker.num_polygons_removed
    if report.counts:
        logger.warning(report.summary())
    if report.filled:
        logger.info(
            "%s: filled in missing fields: %s",
            ann_file,
            ", ".join(f"{field} of {n} annotation(s)" for field, n in sorted(report.filled.items())),
        )

    per_image: Dict[int, List[dict]] = {img_id: [] for img_id in images_by_id}
    for ann in kept:
        if not ann["iscrowd"] and ann["id"] not in checker.clipped_away_ids:
            per_image[ann["image_id"]].append(ann)
    cleaned = dict(data, images=kept_images, annotations=kept, categories=categories)
    return ValidatedCoco(cleaned, per_image, has_masks, has_keypoints, report)


def coco_from_dict(dataset: dict) -> COCO:
    """A pycocotools COCO of a (validated) json dict; its progress prints go nowhere."""
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()), _gc_paused():
        coco.createIndex()
    return coco


__all__ = ["ValidatedCoco", "coco_from_dict", "validate_coco_dict", "validate_coco_file"]
