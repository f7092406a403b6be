"""COCO evaluation of an AbstractDataset: convert its ground truth to a COCO json (abs_to_coco.py),
load that as a COCODataset and run the usual COCO evaluation on it."""

import json
import logging
import os
import tempfile
from typing import Any, Optional, Sequence

from ...coco import COCODataset
from .abs_to_coco import LOGGER_NAME, convert_abstract_to_coco
from .backends import DEFAULT_BACKEND
from .coco_eval import do_coco_evaluation as _coco_evaluation


def do_coco_evaluation(
    dataset: Any,
    predictions: Sequence[Any],
    box_only: bool,
    output_folder: Optional[str],
    iou_types: Sequence[str],
    expected_results: Sequence[Any],
    expected_results_sigma_tol: float,
    per_class_ap: bool = False,
    coco_eval_backend: str = DEFAULT_BACKEND,
    progress: bool = False,
):
    """Like coco_eval.do_coco_evaluation, for an AbstractDataset; the converted ground truth is saved
    as `<output_folder>/<dataset class name>.json` (a temporary folder without output_folder)."""
    logger = logging.getLogger(LOGGER_NAME)
    coco_dict = convert_abstract_to_coco(dataset)
    with tempfile.TemporaryDirectory() as scratch:
        folder = output_folder or scratch
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, type(dataset).__name__ + ".json")
        logger.info("Saving the COCO-format ground truth to %s", path)
        with open(path, "w") as f:
            json.dump(coco_dict, f)
        coco_dataset = COCODataset(ann_file=path, root=folder, remove_images_without_annotations=False)
        return _coco_evaluation(
            dataset=coco_dataset,
            predictions=predictions,
            box_only=box_only,
            output_folder=output_folder,
            iou_types=iou_types,
            expected_results=expected_results,
            expected_results_sigma_tol=expected_results_sigma_tol,  # the original passed expected_results here
            per_class_ap=per_class_ap,
            coco_eval_backend=coco_eval_backend,
            progress=progress,
        )
