"""Cityscapes instance-level evaluation (box and mask AP) of a CityScapesDataset; see cityscapes_eval.py."""

from typing import Any, Optional, Sequence

from .average_precision import average_precision, compute_averages, evaluate_matches
from .cityscapes_eval import CityscapesResults, do_cityscapes_evaluation
from .matching import ImageMatches, match_dataset

__all__ = [
    "CityscapesResults",
    "ImageMatches",
    "abs_cityscapes_evaluation",
    "average_precision",
    "compute_averages",
    "do_cityscapes_evaluation",
    "evaluate_matches",
    "match_dataset",
]


def abs_cityscapes_evaluation(
    dataset: Any,
    predictions: Sequence[Any],
    box_only: bool,
    output_folder: Optional[str],
    iou_types: Sequence[str],
    expected_results: Sequence[Any],
    expected_results_sigma_tol: float,
    **_: Any,
):
    """`do_cityscapes_evaluation` with the original's signature (the keyword layout `evaluate()`
    passes); other options of other evaluations (e.g. per_class_ap: the per-class table is always
    logged) are ignored."""
    return do_cityscapes_evaluation(
        dataset=dataset,
        predictions=predictions,
        box_only=box_only,
        output_folder=output_folder,
        iou_types=iou_types,
        expected_results=expected_results,
        expected_results_sigma_tol=expected_results_sigma_tol,
    )
