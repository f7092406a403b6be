"""COCO-style evaluation (faster-coco-eval or pycocotools) of detection, segmentation, keypoint and proposal results."""

from typing import Any, Optional, Sequence

from .backends import BACKENDS, DEFAULT_BACKEND
from .coco_eval import (
    COCOResults,
    check_expected_results,
    do_coco_evaluation,
    evaluate_box_proposals,
    evaluate_predictions_on_coco,
    prepare_for_coco_detection,
    prepare_for_coco_keypoint,
    prepare_for_coco_segmentation,
)
from .coco_eval import do_coco_evaluation as do_orig_coco_evaluation
from .coco_eval_wrapper import do_coco_evaluation as do_wrapped_coco_evaluation
from .compact import CocoResultEncoder, EncodedPredictions

__all__ = [
    "BACKENDS",
    "COCOResults",
    "CocoResultEncoder",
    "DEFAULT_BACKEND",
    "EncodedPredictions",
    "check_expected_results",
    "coco_evaluation",
    "do_coco_evaluation",
    "do_orig_coco_evaluation",
    "do_wrapped_coco_evaluation",
    "evaluate_box_proposals",
    "evaluate_predictions_on_coco",
    "prepare_for_coco_detection",
    "prepare_for_coco_keypoint",
    "prepare_for_coco_segmentation",
]


def coco_evaluation(
    dataset: Any,
    predictions: Sequence[Any],
    output_folder: Optional[str],
    box_only: bool = False,
    iou_types: Sequence[str] = ("bbox",),
    expected_results: Sequence[Any] = (),
    expected_results_sigma_tol: float = 4,
    per_class_ap: bool = False,
    coco_eval_backend: str = DEFAULT_BACKEND,
    progress: bool = False,
):
    """`do_coco_evaluation` with the keyword layout `evaluate()` passes (see its docstring)."""
    return do_coco_evaluation(
        dataset=dataset,
        predictions=predictions,
        box_only=box_only,
        output_folder=output_folder,
        iou_types=iou_types,
        expected_results=expected_results,
        expected_results_sigma_tol=expected_results_sigma_tol,
        per_class_ap=per_class_ap,
        coco_eval_backend=coco_eval_backend,
        progress=progress,
    )
