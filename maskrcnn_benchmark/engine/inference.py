"""Run a detector over a test data loader, gather the predictions of all processes, and evaluate.

Predictions are BoxLists in the network's input size (one per dataset index); the evaluation
resizes them to the original image sizes.
"""

import datetime
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from tqdm import tqdm

from ..data.datasets.evaluation import evaluate
from ..structures.bounding_box import BoxList
from ..utils.comm import all_gather, get_world_size, is_main_process, synchronize, wait_for_all
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


def compute_on_dataset(
    model: torch.nn.Module,
    data_loader: Any,
    device: Union[str, torch.device],
    bbox_aug: Optional[Callable] = None,
    timer: Optional[Timer] = None,
    autocast_dtype: Union[None, str, torch.dtype] = None,
) -> Dict[int, BoxList]:
    """Run `model` (in eval mode, without gradients) on every batch `(ImageList, targets,
    image_ids)` of `data_loader`; returns {dataset index: BoxList on the CPU}.

    `timer` (tic/toc) times the model calls only; `bbox_aug`, a callable (model, images, device) ->
    [BoxList] such as engine/bbox_aug.BoxTestTimeAugmentation, replaces the model call (test-time
    augmentation; its loader gives PIL images; True, as in the original: the augmentation of the
    global `maskrcnn_benchmark.config.cfg`); `autocast_dtype` runs the model under torch.autocast.
    """
    device = torch.device(device)
    dtype = resolve_autocast_dtype(autocast_dtype)
    bbox_aug = _bbox_aug_or_none(bbox_aug)
    model.eval()
    results_dict: Dict[int, BoxList] = {}
    cpu_device = torch.device("cpu")
    for batch in tqdm(data_loader, disable=not is_main_process()):
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
        results_dict.update({int(idx): result for idx, result in zip(image_ids, output)})
    return results_dict


def _accumulate_predictions_from_multiple_gpus(predictions_per_gpu: Dict[int, BoxList]) -> Optional[List[BoxList]]:
    """Merge the {index: BoxList} dicts of all processes into one list in dataset order (main
    process only; None elsewhere). Warns when the gathered indices are not 0..N-1, because the
    evaluation pairs the i-th prediction with dataset index i."""
    all_predictions = all_gather(predictions_per_gpu)
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
) -> Any:
    """Predict on `data_loader.dataset`, save `predictions.pth` (list of BoxList in dataset
    order, network input size) into output_folder, and evaluate.

    Logs the total and the pure model time per image. Returns `evaluate(...)`'s result on the main
    process (COCO: `(COCOResults, coco_results)`, None for box_only) and None on the others.
    """
    device = torch.device(device)
    num_devices = get_world_size()
    logger = logging.getLogger(LOGGER_NAME)
    dataset = data_loader.dataset
    num_images = max(len(dataset), 1)
    logger.info("Start evaluation on {} dataset({} images).".format(dataset_name, len(dataset)))

    total_timer = Timer()
    inference_timer = Timer()
    total_timer.tic()
    predictions = compute_on_dataset(
        model, data_loader, device, bbox_aug, inference_timer, autocast_dtype=autocast_dtype
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

    predictions = _accumulate_predictions_from_multiple_gpus(predictions)
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
        result = evaluate(dataset=dataset, predictions=predictions, output_folder=output_folder, **extra_args)
    # Only the main process evaluates (COCOeval may take minutes): the others wait here for as long as
    # it answers, rather than in their next collective, which DIST_TIMEOUT would cut short.
    wait_for_all("evaluation")
    return result
