"""Run a detector over a test data loader, gather the predictions of all processes, and evaluate.

Predictions are BoxLists in the network's input size (one per dataset index); the evaluation
resizes them to the original image sizes. For COCO datasets every process encodes its predictions
as it goes (masks pasted and run-length encoded per batch, data/datasets/evaluation/coco/compact.py),
so that no pasted mask is kept and the processes gather kilobytes per image; the BoxLists are kept
only for `predictions.pth` (docs/EVALUATION.md#memory).
"""

import datetime
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from tqdm import tqdm

from ..data.datasets.evaluation import evaluate, evaluator_name
from ..structures.bounding_box import BoxList
from ..utils.comm import gather, get_world_size, is_main_process, synchronize, wait_for_all
from ..utils.timer import Timer
from .precision import autocast, resolve_autocast_dtype

LOGGER_NAME = "maskrcnn_benchmark.inference"


def _time_str(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(seconds))))


def _sync_device(device: torch.device) -> None:
    # CUDA kernels run asynchronously: wait for them so the time covers the work itself.
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)


def _bbox_aug_or_none(bbox_aug: Any) -> Optional[Callable]:
    # The original passed a flag (its tools: TEST.BBOX_AUG.ENABLED) and read the global config;
    # True still does that, for code written for it. This library's own tools pass the callable.
    if bbox_aug is None or bbox_aug is False:
        return None
    if bbox_aug is True:
        from ..config import cfg as global_cfg
        from .bbox_aug import BoxTestTimeAugmentation

        return BoxTestTimeAugmentation.from_config(global_cfg)
    if not callable(bbox_aug):
        raise TypeError(
            f"bbox_aug must be None, a bool or a callable (model, images, device) -> [BoxList], got {bbox_aug!r}; "
            "build one with maskrcnn_benchmark.engine.bbox_aug.BoxTestTimeAugmentation.from_config(cfg)"
        )
    return bbox_aug


def _compact(prediction: BoxList) -> BoxList:
    from ..data.datasets.evaluation.coco.compact import CocoResultEncoder  # pycocotools: only when needed

    return CocoResultEncoder.compact(prediction)


def compute_on_dataset(
    model: torch.nn.Module,
    data_loader: Any,
    device: Union[str, torch.device],
    bbox_aug: Optional[Callable] = None,
    timer: Optional[Timer] = None,
    autocast_dtype: Union[None, str, torch.dtype] = None,
    encoder: Optional[Callable[[int, BoxList], None]] = None,
    keep_predictions: bool = True,
) -> Dict[int, BoxList]:
    """Run `model` (in eval mode, without gradients) on every batch `(ImageList, targets,
    image_ids)` of `data_loader`; returns {dataset index: BoxList on the CPU}.

    `timer` (tic/toc) times the model calls only; `bbox_aug`, a callable (model, images, device) ->
    [BoxList] such as engine/bbox_aug.BoxTestTimeAugmentation, replaces the model call (test-time
    augmentation; its loader gives PIL images; True, as in the original: the augmentation of the
    global `maskrcnn_benchmark.config.cfg`); `autocast_dtype` runs the model under torch.autocast.
    `encoder(index, prediction)` is called with every prediction as soon as it exists (e.g. a
    CocoResultEncoder); with one, kept masks pasted at image size become RLEs (CocoResultEncoder.compact)
    and `keep_predictions=False` keeps none (an empty dict is returned).
    """
    device = torch.device(device)
    dtype = resolve_autocast_dtype(autocast_dtype)
    bbox_aug = _bbox_aug_or_none(bbox_aug)
    model.eval()
    results_dict: Dict[int, BoxList] = {}
    cpu_device = torch.device("cpu")
    for batch in tqdm(data_loader, desc="inference", disable=not is_main_process()):
        images, _targets, image_ids = batch
        with torch.no_grad(), autocast(device.type, dtype):
            if timer:
                _sync_device(device)
                timer.tic()
            if bbox_aug is not None:
                output = bbox_aug(model, images, device)
            else:
                output = model(images.to(device))
            if timer:
                _sync_device(device)
                timer.toc()
            output = [o.to(cpu_device) for o in output]
        for idx, result in zip(image_ids, output):
            if encoder is not None:
                encoder(int(idx), result)
                result = _compact(result) if keep_predictions else None
            if keep_predictions:
                results_dict[int(idx)] = result
    return results_dict


def _accumulate_predictions_from_multiple_gpus(predictions_per_gpu: Dict[int, BoxList]) -> Optional[List[BoxList]]:
    """Merge the {index: BoxList} dicts of all processes into one list in dataset order (main
    process only; None elsewhere). Warns when the gathered indices are not 0..N-1, because the
    evaluation pairs the i-th prediction with dataset index i. Only the main process receives them
    (the original's all_gather sent every process's predictions to every process)."""
    all_predictions = gather(predictions_per_gpu)
    if not is_main_process():
        return None
    predictions: Dict[int, BoxList] = {}
    for p in all_predictions:
        predictions.update(p)
    image_ids = sorted(predictions.keys())
    if image_ids != list(range(len(image_ids))):
        logging.getLogger(LOGGER_NAME).warning(
            "Number of images that were gathered from multiple processes is not "
            "a contiguous set. Some images might be missing from the evaluation"
        )
    return [predictions[i] for i in image_ids]


def _coco_encoder(dataset: Any, iou_types: Sequence[str], box_only: bool) -> Optional[Any]:
    """A CocoResultEncoder when `dataset` is evaluated as COCO (not proposals), else None."""
    if box_only or evaluator_name(dataset) != "COCODataset":
        return None
    from ..data.datasets.evaluation.coco import CocoResultEncoder

    return CocoResultEncoder(dataset, iou_types)


def inference(
    model: torch.nn.Module,
    data_loader: Any,
    dataset_name: str,
    iou_types: Sequence[str] = ("bbox",),
    box_only: bool = False,
    bbox_aug: Optional[Callable] = None,
    device: Union[str, torch.device] = "cuda",
    expected_results: Sequence[Any] = (),
    expected_results_sigma_tol: float = 4,
    output_folder: Optional[str] = None,
    per_class_ap: bool = False,
    autocast_dtype: Union[None, str, torch.dtype] = None,
    coco_eval_backend: Optional[str] = None,
) -> Any:
    """Predict on `data_loader.dataset`, save `predictions.pth` (list of BoxList in dataset
    order, network input size) into output_folder, and evaluate.

    For COCO datasets the predictions are encoded for the evaluation per batch in every process
    (compute_on_dataset's encoder) and only those compact results are gathered; the BoxLists are
    kept, and gathered on the main process, only for predictions.pth (with output_folder).
    `coco_eval_backend` ("faster_coco_eval", "pycocotools"; None: the evaluation's default,
    faster_coco_eval). Logs the time of each phase (inference, encoding, evaluation) with progress
    bars on the main process. Returns `evaluate(...)`'s result on the main process (COCO:
    `(COCOResults, coco_results)`, None for box_only) and None on the others.
    """
    device = torch.device(device)
    num_devices = get_world_size()
    logger = logging.getLogger(LOGGER_NAME)
    dataset = data_loader.dataset
    num_images = max(len(dataset), 1)
    logger.info("Start evaluation on {} dataset({} images).".format(dataset_name, len(dataset)))

    encoder = _coco_encoder(dataset, iou_types, box_only)
    keep = encoder is None or bool(output_folder)
    total_timer = Timer()
    inference_timer = Timer()
    total_timer.tic()
    predictions = compute_on_dataset(
        model,
        data_loader,
        device,
        bbox_aug,
        inference_timer,
        autocast_dtype=autocast_dtype,
        encoder=encoder,
        keep_predictions=keep,
    )
    # wait for all processes so the total time covers the slowest one
    synchronize()
    total_time = total_timer.toc()
    logger.info(
        "Total run time: {} ({} s / img per device, on {} devices)".format(
            _time_str(total_time), total_time * num_devices / num_images, num_devices
        )
    )
    model_time = inference_timer.total_time
    logger.info(
        "Model inference time: {} ({} s / img per device, on {} devices)".format(
            _time_str(model_time), model_time * num_devices / num_images, num_devices
        )
    )
    if encoder is not None:
        logger.info(
            "Result encoding time (during inference): {} ({} s / img per device)".format(
                _time_str(encoder.seconds), encoder.seconds * num_devices / num_images
            )
        )

    gather_timer = Timer()
    gather_timer.tic()
    predictions = _accumulate_predictions_from_multiple_gpus(predictions) if keep else None
    encoded = None
    if encoder is not None:
        per_process = gather(encoder.results)
        encoded = encoder.merged(per_process) if is_main_process() else None
        if encoded is not None and len(encoded) != len(dataset):
            logger.warning(
                "Results of {} of the {} images were gathered; only they are evaluated".format(
                    len(encoded), len(dataset)
                )
            )
    logger.info("Gathering results: {:.1f} s".format(gather_timer.toc()))
    result = None
    if is_main_process():
        if output_folder:
            os.makedirs(output_folder, exist_ok=True)
            torch.save(predictions, os.path.join(output_folder, "predictions.pth"))

        extra_args: Dict[str, Any] = dict(
            box_only=box_only,
            iou_types=iou_types,
            expected_results=expected_results,
            expected_results_sigma_tol=expected_results_sigma_tol,
        )
        if per_class_ap:  # only when asked: other datasets' evaluations may not know the option
            extra_args["per_class_ap"] = True
        if evaluator_name(dataset) in ("COCODataset", "AbstractDataset"):  # the COCO evaluations' options
            extra_args["progress"] = True
            if coco_eval_backend is not None:
                extra_args["coco_eval_backend"] = coco_eval_backend
        eval_timer = Timer()
        eval_timer.tic()
        result = evaluate(
            dataset=dataset,
            predictions=encoded if encoded is not None else predictions,
            output_folder=output_folder,
            **extra_args,
        )
        logger.info("Evaluation time: {}".format(_time_str(eval_timer.toc())))
    # Only the main process evaluates (COCOeval may take minutes): the others wait here for as long as
    # it answers, rather than in their next collective, which DIST_TIMEOUT would cut short.
    wait_for_all("evaluation")
    return result
