"""The original maskrcnn-benchmark's evaluation path, re-stated for benchmarks/eval.py as its baseline.

Written from the algorithm, not taken from the original's code: per image, the predictions are resized
to the original image size; each detection's mask is pasted on its own (pad the M x M probabilities by
one pixel, grow the box by (M + 2) / M around its centre, truncate it to integers, resize the padded
mask bilinearly to the box's inclusive pixel size, threshold at 0.5 and write it into a zeroed
image-sized canvas); each pasted mask is RLE-encoded by its own pycocotools call; the result dicts are
built in Python; every result list is written to a json file and loaded back (`loadRes` of the file),
and pycocotools' COCOeval evaluates, accumulates and summarizes.
"""

import json
import os
import time
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
from pycocotools.cocoeval import COCOeval
from torch.nn import functional as F


def paste_one(mask: torch.Tensor, box: torch.Tensor, im_h: int, im_w: int, padding: int = 1) -> torch.Tensor:
    """[M, M] probabilities of one detection, xyxy box (image pixels) -> uint8 [im_h, im_w] mask."""
    m = mask.shape[-1]
    scale = (m + 2.0 * padding) / m
    padded = F.pad(mask[None, None], (padding,) * 4)
    half_w = (box[2] - box[0]) * 0.5 * scale
    half_h = (box[3] - box[1]) * 0.5 * scale
    cx, cy = (box[2] + box[0]) * 0.5, (box[3] + box[1]) * 0.5
    grown = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h]).to(torch.int32).tolist()
    w = max(grown[2] - grown[0] + 1, 1)
    h = max(grown[3] - grown[1] + 1, 1)
    resized = F.interpolate(padded, size=(h, w), mode="bilinear", align_corners=False)[0, 0] > 0.5
    canvas = torch.zeros((im_h, im_w), dtype=torch.uint8)
    x0, x1 = max(grown[0], 0), min(grown[2] + 1, im_w)
    y0, y1 = max(grown[1], 0), min(grown[3] + 1, im_h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = resized[y0 - grown[1] : y1 - grown[1], x0 - grown[0] : x1 - grown[0]]
    return canvas


def _image_size(dataset: Any, index: int) -> Tuple[int, int]:
    info = dataset.get_img_info(index)
    return int(info["width"]), int(info["height"])


def prepare(
    predictions: Sequence[Any], dataset: Any, iou_types: Sequence[str], times: Dict[str, float]
) -> Dict[str, List[Dict[str, Any]]]:
    """{iou_type: result dicts}; adds the seconds of "paste", "encode" and "dicts" to `times`."""
    results: Dict[str, List[Dict[str, Any]]] = {t: [] for t in iou_types}
    for index, prediction in enumerate(predictions):
        if len(prediction) == 0:
            continue
        start = time.perf_counter()
        image_id = dataset.id_to_img_map[index]
        width, height = _image_size(dataset, index)
        prediction = prediction.resize((width, height))
        scores = prediction.get_field("scores").tolist()
        labels = [dataset.contiguous_category_id_to_json_id[i] for i in prediction.get_field("labels").tolist()]
        if "bbox" in iou_types:
            boxes = prediction.convert("xywh").bbox.tolist()
            results["bbox"].extend(
                {"image_id": image_id, "category_id": labels[k], "bbox": box, "score": scores[k]}
                for k, box in enumerate(boxes)
            )
        if "keypoints" in iou_types:
            kps = prediction.get_field("keypoints").keypoints
            kps = kps.reshape(kps.shape[0], -1).tolist()
            results["keypoints"].extend(
                {"image_id": image_id, "category_id": labels[k], "keypoints": kp, "score": scores[k]}
                for k, kp in enumerate(kps)
            )
        times["dicts"] += time.perf_counter() - start
        if "segm" not in iou_types:
            continue
        start = time.perf_counter()
        probs = prediction.get_field("mask")
        masks = [paste_one(probs[k, 0], prediction.bbox[k], height, width) for k in range(len(prediction))]
        pasted = time.perf_counter()
        times["paste"] += pasted - start
        rles = [mask_util.encode(np.array(m[:, :, None].numpy(), order="F"))[0] for m in masks]
        for rle in rles:
            rle["counts"] = rle["counts"].decode("utf-8")
        encoded = time.perf_counter()
        times["encode"] += encoded - pasted
        results["segm"].extend(
            {"image_id": image_id, "category_id": labels[k], "segmentation": rle, "score": scores[k]}
            for k, rle in enumerate(rles)
        )
        times["dicts"] += time.perf_counter() - encoded
    return results


def evaluate(coco_gt: Any, results: List[Dict[str, Any]], iou_type: str, folder: str) -> np.ndarray:
    """pycocotools' COCOeval of `results` through a json file in `folder`; returns the stats."""
    path = os.path.join(folder, iou_type + ".json")
    with open(path, "w") as f:
        json.dump(results, f)
    coco_dt = coco_gt.loadRes(path)
    coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return np.asarray(coco_eval.stats)
