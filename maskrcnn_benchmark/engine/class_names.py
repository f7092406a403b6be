"""Names of the classes a detector predicts, indexed by its contiguous label (0 = background).

Lookup order (resolve_class_names): an explicit list; labels.json next to the weights file; labels.json
in cfg.OUTPUT_DIR (tools/train_net.py writes it there); otherwise a default that never guesses a
dataset: COCO's names for an 81-class model and ["__background", "person"] for a 2-class keypoint
model (the layouts of the original's released models), else "class k".
"""

import json
import logging
import os
from typing import List, Optional, Sequence

from ..config import CfgNode

logger = logging.getLogger(__name__)

LABELS_FILE = "labels.json"
BACKGROUND = "__background"

# The 80 COCO object categories in their contiguous order (json ids 1..90 with gaps, sorted), as the
# original demo listed them.
COCO_CATEGORIES: List[str] = [
    BACKGROUND,
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
]


def num_classes_of(cfg: CfgNode) -> int:
    """Number of classes, background included, that the configured model predicts."""
    if cfg.MODEL.RETINANET_ON:
        return int(cfg.MODEL.RETINANET.NUM_CLASSES)
    return int(cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES)


def default_class_names(cfg: CfgNode) -> List[str]:
    """Names when nothing is known about the training data (see the module docstring)."""
    num_classes = num_classes_of(cfg)
    if num_classes == len(COCO_CATEGORIES):
        return list(COCO_CATEGORIES)
    if num_classes == 2 and cfg.MODEL.KEYPOINT_ON:
        return [BACKGROUND, "person"]
    return [BACKGROUND] + [f"class {k}" for k in range(1, num_classes)]


def read_labels_file(path: str) -> Optional[List[str]]:
    """The "labels" list of a labels.json file; None if missing or unreadable (with a warning)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            labels = json.load(f)["labels"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        logger.warning('ignoring %s: not a {"labels": [...]} file (%s)', path, e)
        return None
    if not isinstance(labels, list) or not all(isinstance(name, str) for name in labels):
        logger.warning('ignoring %s: "labels" should be a list of strings', path)
        return None
    return labels


def _candidate_label_files(cfg: CfgNode, weights: Optional[str]) -> List[str]:
    files = []
    # Only a local file has a folder to look in (not catalog:// names or URLs).
    if weights and "://" not in weights:
        files.append(os.path.join(os.path.dirname(os.path.abspath(weights)), LABELS_FILE))
    if cfg.OUTPUT_DIR:
        files.append(os.path.join(os.path.abspath(cfg.OUTPUT_DIR), LABELS_FILE))
    return list(dict.fromkeys(files))  # the same folder once


def resolve_class_names(
    cfg: CfgNode, weights: Optional[str] = None, class_names: Optional[Sequence[str]] = None
) -> List[str]:
    """Class names by contiguous label, background first, exactly num_classes_of(cfg) long.

    An explicit `class_names` may include the background (num_classes names) or leave it out
    (num_classes - 1 names); any other length is a ValueError. A labels.json whose length does not
    match the model is skipped with a warning (it describes another model).
    """
    num_classes = num_classes_of(cfg)
    if class_names is not None:
        names = [str(name) for name in class_names]
        if len(names) == num_classes - 1:
            names = [BACKGROUND] + names
        if len(names) != num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} names but the model predicts {num_classes} classes "
                f"(background included): give {num_classes} names, or {num_classes - 1} without the background"
            )
        return names
    for path in _candidate_label_files(cfg, weights):
        names = read_labels_file(path)
        if names is None:
            continue
        if len(names) != num_classes:
            logger.warning("ignoring %s: %d labels for a model with %d classes", path, len(names), num_classes)
            continue
        logger.info("class names from %s", path)
        return names
    return default_class_names(cfg)
