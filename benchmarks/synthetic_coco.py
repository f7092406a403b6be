"""A COCO-like evaluation set made in memory: ground truth (a COCO json dict) and a detector's raw
per-image outputs (BoxList in the network's input size), for benchmarks/eval.py and the evaluation tests.

Ground truth: images of COCO's sizes (640 on the long side, 480-640 on the other, both orientations),
80 categories with COCO's non-contiguous json ids, about 7 instances per image with polygon masks
(jittered ellipses, so that polygon areas and pixel masks agree roughly), some crowd regions (RLE), some
images without any annotation. The keypoint variant has one category, person, with 17 keypoints of which
some are not labelled (v = 0, x = y = 0), and some persons without any labelled keypoint.

Predictions: `dets_per_image` detections per image: 1-3 near each ground-truth object (boxes jittered,
mostly the right label, higher scores) and false positives elsewhere; each with a 28 x 28 mask
probability map of an ellipse close to the object's, and (keypoint variant) 17 keypoints near the
ground truth's. Boxes are legacy inclusive xyxy (docs/CONVENTIONS.md#inclusive-pixels) scaled to the
network's input size (shorter side 800, longer side at most 1333), as a model returns them.

Everything is drawn from `numpy.random.default_rng([seed, image index])`, so image i is the same
whichever subset is made and whichever process makes it.
"""

from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch

from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints

# COCO's 80 json category ids (1..90 with gaps).
COCO_CATEGORY_IDS: Tuple[int, ...] = tuple(i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
MASK_SIZE = 28
INPUT_MIN, INPUT_MAX = 800, 1333
_ELLIPSE_VERTICES = 16


def input_size(width: int, height: int) -> Tuple[int, int]:
    """(w, h) the network sees an image of (width, height) at (Resize of the test transform)."""
    scale = INPUT_MIN / min(width, height)
    if max(width, height) * scale > INPUT_MAX:
        scale = INPUT_MAX / max(width, height)
    return int(round(width * scale)), int(round(height * scale))


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def _image_size(rng: np.random.Generator) -> Tuple[int, int]:
    short = int(rng.integers(480, 641))
    return (640, short) if rng.random() < 0.7 else (short, 640)


def _objects(rng: np.random.Generator, width: int, height: int, count: int) -> np.ndarray:
    """[count, 4] ellipses (cx, cy, rx, ry) inside the image; sqrt(area) log-uniform in [6, 300] pixels,
    which gives COCO's mix of sizes (about 41 % small, 34 % medium, 24 % large by area)."""
    side = np.exp(rng.uniform(np.log(6.0), np.log(300.0), count)) / np.sqrt(np.pi)  # area = pi * rx * ry
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0), count))
    rx, ry = side * np.sqrt(aspect), side / np.sqrt(aspect)
    rx, ry = np.minimum(rx, width / 2 - 1), np.minimum(ry, height / 2 - 1)
    cx = rng.uniform(rx, width - rx)
    cy = rng.uniform(ry, height - ry)
    return np.stack([cx, cy, rx, ry], axis=1)


def _polygon(rng: np.random.Generator, ellipse: np.ndarray, width: int, height: int) -> List[float]:
    cx, cy, rx, ry = ellipse
    angles = np.linspace(0, 2 * np.pi, _ELLIPSE_VERTICES, endpoint=False)
    radius = rng.uniform(0.85, 1.0, _ELLIPSE_VERTICES)
    xs = np.clip(cx + rx * radius * np.cos(angles), 0, width - 1)
    ys = np.clip(cy + ry * radius * np.sin(angles), 0, height - 1)
    return np.round(np.stack([xs, ys], axis=1).reshape(-1), 2).tolist()


def _keypoints(rng: np.random.Generator, ellipse: np.ndarray, width: int, height: int) -> List[float]:
    cx, cy, rx, ry = ellipse
    xs = np.clip(cx + rx * rng.uniform(-0.8, 0.8, 17), 0, width - 1)
    ys = np.clip(cy + ry * np.linspace(-0.8, 0.8, 17) + rng.normal(0, 0.05 * ry, 17), 0, height - 1)
    visible = rng.random(17) < (0.0 if rng.random() < 0.1 else 0.8)  # some persons have none labelled
    v = np.where(visible, 2, 0)
    kps = np.stack([np.where(visible, np.round(xs, 1), 0), np.where(visible, np.round(ys, 1), 0), v], axis=1)
    return kps.reshape(-1).tolist()


def _image_annotations(seed: int, index: int, keypoints: bool) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    rng = _rng(seed, index)
    width, height = _image_size(rng)
    image = {"id": 1000 + 7 * index, "width": width, "height": height, "file_name": f"{index:012d}.jpg"}
    count = 0 if rng.random() < 0.03 else max(1, int(rng.poisson(7)))
    ellipses = _objects(rng, width, height, count)
    weights = 1.0 / np.arange(1, len(COCO_CATEGORY_IDS) + 1) ** 0.8  # a long tail, like COCO's
    labels = rng.choice(len(COCO_CATEGORY_IDS), size=count, p=weights / weights.sum())
    crowd = rng.random(count) < 0.01
    anns = []
    for k in range(count):
        ann: Dict[str, Any] = {"image_id": image["id"], "iscrowd": int(crowd[k])}
        ann["category_id"] = 1 if keypoints else COCO_CATEGORY_IDS[labels[k]]
        if crowd[k]:  # crowd regions are (uncompressed) RLEs in COCO
            cx, cy, rx, ry = ellipses[k]
            ys, xs = np.mgrid[0:height, 0:width]
            pixels = (((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1).astype(np.uint8)
            rle = mask_util.encode(np.asfortranarray(pixels))
            ann["segmentation"] = {"size": [height, width], "counts": _uncompressed_counts(pixels)}
            ann["area"] = float(mask_util.area(rle))
            ann["bbox"] = [float(v) for v in mask_util.toBbox(rle)]
        else:
            poly = _polygon(rng, ellipses[k], width, height)
            rle = mask_util.merge(mask_util.frPyObjects([poly], height, width))
            ann["segmentation"] = [poly]
            ann["area"] = float(mask_util.area(rle))
            xs, ys = poly[0::2], poly[1::2]
            ann["bbox"] = [min(xs), min(ys), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)]
        if keypoints:
            ann["keypoints"] = _keypoints(rng, ellipses[k], width, height)
            ann["num_keypoints"] = int(sum(1 for v in ann["keypoints"][2::3] if v > 0))
        anns.append(ann)
    return image, anns


def _uncompressed_counts(pixels: np.ndarray) -> List[int]:
    flat = pixels.reshape(-1, order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    return ([0] + counts) if flat[0] else counts


def make_ground_truth(num_images: int, seed: int = 0, keypoints: bool = False) -> Dict[str, Any]:
    """The COCO json dict (images, annotations with ids from 1, categories) of images 0..num_images-1."""
    images, annotations = [], []
    for index in range(num_images):
        image, anns = _image_annotations(seed, index, keypoints)
        images.append(image)
        annotations.extend(anns)
    for ann_id, ann in enumerate(annotations, 1):
        ann["id"] = ann_id
    if keypoints:
        from maskrcnn_benchmark.structures.keypoint import PersonKeypoints as _P

        categories = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(_P.NAMES)}]
    else:
        categories = [{"id": c, "name": f"class_{c}", "supercategory": "thing"} for c in COCO_CATEGORY_IDS]
    return {
        "info": {"description": "synthetic"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def _box_masks(boxes: np.ndarray, ellipses: np.ndarray, sharpness: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N, 28, 28] probabilities of the ellipse (cx, cy, rx, ry) over the cells of each xyxy box."""
    steps = (np.arange(MASK_SIZE) + 0.5) / MASK_SIZE
    xs = boxes[:, 0:1] + steps[None] * (boxes[:, 2:3] - boxes[:, 0:1])
    ys = boxes[:, 1:2] + steps[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    dx = (xs - ellipses[:, 0:1]) / ellipses[:, 2:3]
    dy = (ys - ellipses[:, 1:2]) / ellipses[:, 3:4]
    d = dy[:, :, None] ** 2 + dx[:, None, :] ** 2
    logits = sharpness[:, None, None] * (1 - d) + rng.normal(0, 0.7, d.shape)
    return (1 / (1 + np.exp(-logits))).astype(np.float32)


def make_prediction(
    gt: Dict[str, Any], index: int, seed: int = 0, dets_per_image: int = 100, masks: bool = True
) -> BoxList:
    """The raw output of image `index` of `gt` (made by make_ground_truth with the same seed): a BoxList
    in the network's input size with "scores", "labels" (contiguous 1..C), "mask" [N, 1, 28, 28]
    probabilities (with `masks`) and, when the ground truth has keypoints, "keypoints" (PersonKeypoints)."""
    rng = _rng(seed + 1, index)
    image = gt["images"][index]
    width, height = image["width"], image["height"]
    anns = (
        gt["_by_image"][image["id"]]
        if "_by_image" in gt
        else [a for a in gt["annotations"] if a["image_id"] == image["id"]]
    )
    anns = [a for a in anns if not a["iscrowd"]]
    cat_ids = [c["id"] for c in gt["categories"]]
    contiguous = {c: i + 1 for i, c in enumerate(sorted(cat_ids))}
    with_keypoints = "keypoints" in gt["categories"][0]

    boxes, ellipses, labels, scores, sharp, kps = [], [], [], [], [], []
    for ann in anns:
        x, y, w, h = ann["bbox"]
        ellipse = np.array([x + w / 2, y + h / 2, max(w / 2, 1), max(h / 2, 1)])
        for _ in range(int(rng.integers(1, 4))):
            if len(boxes) >= dets_per_image:
                break
            jitter = rng.normal(0, 0.08, 4) * np.array([w, h, w, h])
            boxes.append([x + jitter[0], y + jitter[1], x + w - 1 + jitter[2], y + h - 1 + jitter[3]])
            ellipses.append(ellipse * np.array([1, 1, rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15)]))
            right = rng.random() < 0.85 or with_keypoints
            labels.append(contiguous[ann["category_id"]] if right else int(rng.integers(1, len(cat_ids) + 1)))
            scores.append(rng.uniform(0.3, 1.0))
            sharp.append(rng.uniform(3, 8))
            if with_keypoints:
                kp = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)
                noise = rng.normal(0, 0.08 * np.sqrt(max(ann["area"], 1.0)), (17, 2))
                guess = np.where(kp[:, 2:] > 0, kp[:, :2], ellipse[:2]) + noise
                kps.append(np.concatenate([guess, np.ones((17, 1))], axis=1))
    extra = dets_per_image - len(boxes)
    if extra > 0:
        fp = _objects(rng, width, height, extra)
        fp_boxes = np.stack([fp[:, 0] - fp[:, 2], fp[:, 1] - fp[:, 3], fp[:, 0] + fp[:, 2], fp[:, 1] + fp[:, 3]], 1)
        boxes.extend(fp_boxes.tolist())
        ellipses.extend((fp * np.array([1, 1, 0.9, 0.9])).tolist())
        labels.extend(rng.integers(1, len(cat_ids) + 1, extra).tolist())
        scores.extend(rng.uniform(0.0, 0.6, extra).tolist())
        sharp.extend(rng.uniform(2, 6, extra).tolist())
        if with_keypoints:
            for cx, cy, rx, ry in fp:
                pts = np.stack([cx + rng.uniform(-rx, rx, 17), cy + rng.uniform(-ry, ry, 17), np.ones(17)], 1)
                kps.append(pts)
    box_arr = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    box_arr[:, 0::2] = np.clip(box_arr[:, 0::2], 0, width - 1)
    box_arr[:, 1::2] = np.clip(box_arr[:, 1::2], 0, height - 1)
    box_arr[:, 2:] = np.maximum(box_arr[:, 2:], box_arr[:, :2])
    order = np.argsort(-np.array(scores), kind="stable")  # a detector returns them per class; order is free
    probs = _box_masks(box_arr, np.array(ellipses).reshape(-1, 4), np.array(sharp), rng) if masks else None

    pred = BoxList(torch.tensor(box_arr[order], dtype=torch.float32), (width, height), mode="xyxy")
    pred.add_field("scores", torch.tensor(np.array(scores)[order], dtype=torch.float32))
    pred.add_field("labels", torch.tensor(np.array(labels)[order], dtype=torch.int64))
    if with_keypoints:
        pred.add_field(
            "keypoints", PersonKeypoints(torch.tensor(np.array(kps)[order], dtype=torch.float32), (width, height))
        )
    pred = pred.resize(input_size(width, height))
    if probs is not None:
        pred.add_field("mask", torch.from_numpy(probs[order])[:, None])
    return pred


def index_by_image(gt: Dict[str, Any]) -> None:
    """Adds gt["_by_image"] (image id -> annotations) so that make_prediction need not scan them all."""
    by_image: Dict[int, List[Dict[str, Any]]] = {img["id"]: [] for img in gt["images"]}
    for ann in gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    gt["_by_image"] = by_image


def iter_predictions(
    gt: Dict[str, Any], indices: Sequence[int], seed: int = 0, dets_per_image: int = 100, masks: bool = True
) -> Iterator[BoxList]:
    """make_prediction of each image index, one at a time."""
    if "_by_image" not in gt:
        index_by_image(gt)
    for index in indices:
        yield make_prediction(gt, index, seed, dets_per_image, masks)


class COCODataset(object):
    """What the COCO evaluation reads of a COCODataset, over a ground-truth dict (named so that
    `evaluate()`, which dispatches on class names, treats it as COCO)."""

    def __init__(self, gt: Dict[str, Any]) -> None:
        import contextlib
        import io

        from pycocotools.coco import COCO

        self.coco = COCO()
        self.coco.dataset = {k: v for k, v in gt.items() if not k.startswith("_")}
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            self.coco.createIndex()
        self.ids = [img["id"] for img in gt["images"]]
        self.id_to_img_map = dict(enumerate(self.ids))
        cat_ids = sorted(self.coco.getCatIds())
        self.json_category_id_to_contiguous_id = {c: i + 1 for i, c in enumerate(cat_ids)}
        self.contiguous_category_id_to_json_id = {v: k for k, v in self.json_category_id_to_contiguous_id.items()}

    def get_img_info(self, index: int) -> Dict[str, Any]:
        return self.coco.imgs[self.id_to_img_map[index]]

    def __len__(self) -> int:
        return len(self.ids)
