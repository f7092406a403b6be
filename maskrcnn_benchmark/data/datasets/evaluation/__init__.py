"""`evaluate(dataset, predictions, output_folder, **kwargs)`: run the evaluation that fits the
dataset's type.

Dispatch is by class name (walking the class hierarchy, so subclasses of COCODataset are evaluated
as COCO) rather than isinstance, so that importing this package does not import the datasets
(and their optional dependencies).
"""

from typing import Any, Callable, Dict, Optional, Sequence


def _coco(**kwargs: Any) -> Any:
    from .coco import coco_evaluation

    return coco_evaluation(**kwargs)


def _abstract(**kwargs: Any) -> Any:
    from .coco.coco_eval_wrapper import do_coco_evaluation

    return do_coco_evaluation(**kwargs)


def _voc(**kwargs: Any) -> Any:
    from .voc import voc_evaluation

    return voc_evaluation(**kwargs)


def _cityscapes(**kwargs: Any) -> Any:
    from .cityscapes import abs_cityscapes_evaluation

    kwargs.setdefault("box_only", False)
    kwargs.setdefault("iou_types", ("bbox", "segm"))
    kwargs.setdefault("expected_results", ())
    kwargs.setdefault("expected_results_sigma_tol", 4)
    return abs_cityscapes_evaluation(**kwargs)


# dataset class name -> evaluation function taking evaluate()'s keyword arguments.
_EVALUATORS: Dict[str, Callable[..., Any]] = {
    "COCODataset": _coco,
    "PascalVOCDataset": _voc,
    "CityScapesDataset": _cityscapes,  # the Cityscapes AP, as the original (met before its base AbstractDataset)
    "AbstractDataset": _abstract,  # a custom dataset: converted to COCO format, then COCO evaluation
}


def evaluator_name(dataset: Any) -> Optional[str]:
    """The name of the dataset class whose evaluation applies to `dataset` ("COCODataset",
    "PascalVOCDataset", "CityScapesDataset", "AbstractDataset"), or None."""
    for cls in type(dataset).__mro__:
        if cls.__name__ in _EVALUATORS:
            return cls.__name__
    return None


def evaluate(dataset: Any, predictions: Sequence[Any], output_folder: Optional[str], **kwargs: Any) -> Any:
    """Evaluate `predictions` (list of BoxList in dataset order, network input size) on `dataset`.

    Arguments:
        dataset: the dataset the predictions were computed on (COCODataset, PascalVOCDataset,
            CityScapesDataset or a subclass of one; any other AbstractDataset, converted to COCO format).
        predictions: one BoxList per dataset index (COCO: or the EncodedPredictions of them).
        output_folder: where result files are written (None: nowhere).
        **kwargs: passed to the dataset's evaluation, e.g. for COCO: box_only, iou_types,
            expected_results, expected_results_sigma_tol, per_class_ap, coco_eval_backend, progress;
            VOC: use_07_metric (others are ignored).

    Returns the evaluation's result (COCO: `(COCOResults, coco_results)`; VOC: `{"ap": per-class
    APs, "map": mean AP}`; Cityscapes: `(CityscapesResults, {task: result json})`; None for box_only).
    Raises NotImplementedError for an unsupported dataset type.
    """
    name = evaluator_name(dataset)
    if name is None:
        raise NotImplementedError("Unsupported dataset type {}.".format(type(dataset).__name__))
    return _EVALUATORS[name](dataset=dataset, predictions=predictions, output_folder=output_folder, **kwargs)


# The original re-exported each dataset's evaluation function from this package; they are loaded
# on first access so that importing the package stays light (PEP 562).
_LAZY_EXPORTS = {"coco_evaluation": ".coco", "voc_evaluation": ".voc", "abs_cityscapes_evaluation": ".cityscapes"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_LAZY_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
