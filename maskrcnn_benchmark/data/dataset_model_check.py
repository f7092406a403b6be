"""Start-up check that the configured model fits its datasets (called by make_data_loader).

For COCO-style datasets (anything with `json_category_id_to_contiguous_id`):
- the classifier predicts categories + 1 classes (background included): MODEL.ROI_BOX_HEAD.NUM_CLASSES,
  or MODEL.RETINANET.NUM_CLASSES for RetinaNet; RPN-only models have no classifier;
- MODEL.MASK_ON needs a dataset with masks, MODEL.KEYPOINT_ON one with keypoints (a dataset
  without any annotation, e.g. a test-dev image list, is exempt: there is nothing to train or
  evaluate against);
- the parts of a concatenated training set must have the same categories (a label means one class).

Mismatches raise ValueError saying what to set, instead of failing deep in the losses.
"""

from typing import Any, List, Sequence, Tuple


def _parts(dataset: Any) -> List[Any]:
    """A ConcatDataset's datasets (recursively), else [dataset]."""
    inner = getattr(dataset, "datasets", None)
    if isinstance(inner, (list, tuple)):
        return [p for d in inner for p in _parts(d)]
    return [dataset]


def _name(dataset: Any) -> str:
    return str(getattr(dataset, "name", None) or getattr(dataset, "ann_file", None) or type(dataset).__name__)


def _has_annotations(dataset: Any) -> bool:
    coco = getattr(dataset, "coco", None)
    return coco is None or len(getattr(coco, "anns", {})) > 0


def _classifier(cfg: Any) -> Tuple[str, int]:
    if cfg.MODEL.RETINANET_ON:
        return "MODEL.RETINANET.NUM_CLASSES", int(cfg.MODEL.RETINANET.NUM_CLASSES)
    return "MODEL.ROI_BOX_HEAD.NUM_CLASSES", int(cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES)


def _check_one(cfg: Any, dataset: Any) -> None:
    name = _name(dataset)
    num_categories = len(dataset.json_category_id_to_contiguous_id)
    classifies = not cfg.MODEL.RPN_ONLY or cfg.MODEL.RETINANET_ON
    if classifies:
        key, num_classes = _classifier(cfg)
        if num_classes != num_categories + 1:
            raise ValueError(
                f"dataset {name!r} has {num_categories} categories but {key} is {num_classes}; "
                f"set it to {num_categories + 1} (categories + background)"
            )
    if cfg.MODEL.RPN_ONLY or cfg.MODEL.RETINANET_ON or not _has_annotations(dataset):
        return  # no mask or keypoint head; or nothing to compare the heads with
    if cfg.MODEL.MASK_ON and not getattr(dataset, "has_masks", True):
        raise ValueError(
            f"MODEL.MASK_ON is set but dataset {name!r} has no segmentation masks; "
            f"set MODEL.MASK_ON False or use a dataset with masks"
        )
    if cfg.MODEL.KEYPOINT_ON and not getattr(dataset, "has_keypoints", True):
        raise ValueError(
            f"MODEL.KEYPOINT_ON is set but dataset {name!r} has no keypoints; "
            f"set MODEL.KEYPOINT_ON False or use a dataset with (person) keypoints"
        )


def _category_difference(a: Any, b: Any) -> str:
    """The first category (json id: name) on which two datasets differ."""
    cats_a, cats_b = dict(getattr(a, "categories", {}) or {}), dict(getattr(b, "categories", {}) or {})
    for cat_id in sorted(set(cats_a) | set(cats_b)):
        if cats_a.get(cat_id) != cats_b.get(cat_id):
            return (
                f"category id {cat_id} is {cats_a.get(cat_id)!r} in {_name(a)!r} "
                f"but {cats_b.get(cat_id)!r} in {_name(b)!r}"
            )
    return "their category id maps differ"


def check_datasets_match_model(cfg: Any, datasets: Sequence[Any]) -> None:
    """Raise ValueError if the model of `cfg` cannot train on / be evaluated with `datasets`."""
    for dataset in datasets:
        parts = [p for p in _parts(dataset) if hasattr(p, "json_category_id_to_contiguous_id")]
        for part in parts:
            _check_one(cfg, part)
        first = parts[0] if parts else None
        for part in parts[1:]:
            same = part.json_category_id_to_contiguous_id == first.json_category_id_to_contiguous_id and getattr(
                part, "categories", None
            ) == getattr(first, "categories", None)
            if not same:
                raise ValueError(
                    f"datasets {_name(first)!r} and {_name(part)!r} are used together but have different "
                    f"categories: {_category_difference(first, part)}; give them the same category list"
                )
