"""PASCAL VOC evaluation (per-class AP, VOC2007 11-point metric by default) of box detections."""

import logging
from typing import Any, Optional, Sequence

from .voc_eval import calc_detection_voc_ap, calc_detection_voc_prec_rec, do_voc_evaluation, eval_detection_voc

__all__ = [
    "calc_detection_voc_ap",
    "calc_detection_voc_prec_rec",
    "do_voc_evaluation",
    "eval_detection_voc",
    "voc_evaluation",
]


def voc_evaluation(
    dataset: Any,
    predictions: Sequence[Any],
    output_folder: Optional[str],
    box_only: bool = False,
    use_07_metric: bool = True,
    **_: Any,
):
    """`do_voc_evaluation` with the keyword layout `evaluate()` passes; the COCO options (iou_types,
    expected_results, ...) do not apply and are ignored. box_only (RPN-only models: proposals without
    labels) is not supported: a warning, and None is returned."""
    logger = logging.getLogger("maskrcnn_benchmark.inference")
    if box_only:
        logger.warning("VOC evaluation has no box-only (proposal) mode; nothing evaluated")
        return None
    return do_voc_evaluation(
        dataset=dataset,
        predictions=predictions,
        output_folder=output_folder,
        logger=logger,
        use_07_metric=use_07_metric,
    )
