"""Per-image COCO results in compact form: what the evaluation needs of a prediction, made as soon as the
prediction exists (per batch during inference, in every process) so that neither pasted masks nor the
model's mask probabilities need to be kept, and so that processes exchange kilobytes per image.

`encode_prediction` applies prepare.py's conventions (resize to the original image size, legacy xywh
boxes, json category ids) and the mask paste + RLE of rle.py; `result_dicts` turns a list of
`ImageResults` into exactly the dicts `prepare_for_coco_*` give.
"""

import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.nn import functional as F

from .....structures.bounding_box import BoxList
from .....utils.gc_pause import gc_paused
from .rle import EncodedMasks, encode_binary_masks, encode_pasted_masks

IOU_TYPES = ("bbox", "segm", "keypoints")


@dataclass
class ImageResults:
    """The detections of dataset index `index` (COCO image `image_id`), original image size.

    category_ids: [N] json ids; scores: [N] (the model's dtype, float16/bfloat16 as float32);
    boxes: [N, 4] float32 xywh with `w = x2 - x1 + 1`; masks: their RLEs (with "segm");
    keypoints: [N, 3K] float32 (x, y, v) (with "keypoints")."""

    index: int
    image_id: int
    category_ids: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    masks: Optional[EncodedMasks] = None
    keypoints: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def original_size(dataset: Any, index: int) -> Tuple[int, int]:
    """(width, height) of the original image of dataset index `index`."""
    info = dataset.get_img_info(index)
    return int(info["width"]), int(info["height"])


def _json_ids(dataset: Any, labels: torch.Tensor) -> np.ndarray:
    mapping = dataset.contiguous_category_id_to_json_id
    try:
        return np.array([mapping[int(lab)] for lab in labels.tolist()], dtype=np.int64)
    except KeyError as e:
        raise ValueError(
            f"prediction field 'labels' holds {e.args[0]}, which is no contiguous category id of the dataset "
            f"(known: {sorted(mapping)[:5]}...)"
        ) from None


def _as_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    return (t if t.dtype == torch.float64 else t.float()).numpy()


def decode_rle_field(rles: Sequence[Dict[str, Any]]) -> torch.Tensor:
    """[N, 1, H, W] bool masks of a "mask" field that holds COCO RLEs (MaskPostProcessorCOCOFormat)."""
    import pycocotools.mask as mask_util

    decoded = mask_util.decode(list(rles))  # [H, W, N]
    return torch.from_numpy(np.ascontiguousarray(decoded.transpose(2, 0, 1)))[:, None].bool()


def encode_masks(field: Any, prediction: BoxList, input_size: Tuple[int, int]) -> EncodedMasks:
    """The RLEs of a "mask" field at the original image size (prediction.size == (W, H)).

    Told apart by shape, as prepare.py does: masks of the image size are already pasted (thresholded
    at 0.5 if float); masks of the network's input size (pasted by the model, or given as RLEs) are
    resized bilinearly and thresholded at 0.5; anything else is [N, 1, M, M] probabilities pasted into
    the resized boxes (Masker(0.5, padding=1))."""
    width, height = (int(v) for v in prediction.size)
    if isinstance(field, (list, tuple)):
        field = decode_rle_field(field) if len(field) else torch.zeros((0, 1, height, width), dtype=torch.bool)
    masks = field.detach().cpu()
    if masks.dim() == 3:
        masks = masks[:, None]
    if masks.dim() != 4 or masks.shape[0] != len(prediction) or masks.shape[1] != 1:
        raise ValueError(
            f"prediction field 'mask' has shape {tuple(masks.shape)}; expected [{len(prediction)}, 1, M, M] "
            "probabilities or [N, 1, H, W] pasted masks"
        )
    shape = tuple(masks.shape[-2:])
    if shape == (height, width):
        return encode_binary_masks(masks[:, 0] > 0.5 if masks.is_floating_point() else masks[:, 0].bool())
    in_w, in_h = (int(v) for v in input_size)
    if shape == (in_h, in_w):
        resized = F.interpolate(masks.float(), size=(height, width), mode="bilinear", align_corners=False)
        return encode_binary_masks(resized[:, 0] >= 0.5)
    return encode_pasted_masks(masks[:, 0].float(), prediction.convert("xyxy").bbox, height, width)


def encode_prediction(prediction: BoxList, dataset: Any, index: int, iou_types: Sequence[str]) -> ImageResults:
    """The ImageResults of `prediction` (a BoxList in the network's input size) of dataset index `index`."""
    image_id = dataset.id_to_img_map[index]
    if len(prediction) == 0:
        empty = np.zeros(0, dtype=np.float32)
        return ImageResults(index, image_id, np.zeros(0, dtype=np.int64), empty, np.zeros((0, 4), np.float32))
    input_size = prediction.size
    # BoxList.resize also scales the keypoints field; the masks (possibly a list of RLEs, which
    # has no resize) are handled by encode_masks.
    masks = prediction.get_field("mask") if "segm" in iou_types else None
    others = [f for f in prediction.fields() if f != "mask"]
    resized = prediction.copy_with_fields(others).resize(original_size(dataset, index))
    boxes = resized.convert("xywh").bbox.detach().cpu().float().numpy()
    out = ImageResults(
        index, image_id, _json_ids(dataset, resized.get_field("labels")), _as_numpy(resized.get_field("scores")), boxes
    )
    if "segm" in iou_types:
        out.masks = encode_masks(masks, resized, input_size)
    if "keypoints" in iou_types:
        kps = resized.get_field("keypoints").keypoints.detach().cpu().float()
        out.keypoints = kps.reshape(kps.shape[0], -1).numpy()
    return out


def encode_predictions(
    predictions: Iterable[BoxList], dataset: Any, iou_types: Sequence[str], progress: bool = False
) -> List[ImageResults]:
    """`encode_prediction` of each prediction; the i-th belongs to dataset index i (as the original)."""
    from tqdm import tqdm

    total = len(predictions) if hasattr(predictions, "__len__") else None
    bar = tqdm(predictions, total=total, desc="encoding", unit="img", disable=not progress, mininterval=2.0)
    return [encode_prediction(p, dataset, i, iou_types) for i, p in enumerate(bar)]


def result_dicts(images: Sequence[ImageResults], iou_type: str) -> List[Dict[str, Any]]:
    """The COCO result dicts of `iou_type` (prepare_for_coco_*'s), images with detections only."""
    if iou_type not in IOU_TYPES:
        raise ValueError(f"unknown iou_type {iou_type!r}; allowed: {list(IOU_TYPES)}")
    out: List[Dict[str, Any]] = []
    with gc_paused():
        for image in images:
            if len(image) == 0:
                continue
            image_id, cats, scores = image.image_id, image.category_ids.tolist(), image.scores.tolist()
            if iou_type == "bbox":
                values, key = image.boxes.tolist(), "bbox"
            elif iou_type == "segm":
                values, key = image.masks.rles(), "segmentation"
            else:
                values, key = image.keypoints.tolist(), "keypoints"
            out.extend(
                {"image_id": image_id, "category_id": c, key: v, "score": s} for c, v, s in zip(cats, values, scores)
            )
    return out


@dataclass
class EncodedPredictions:
    """The ImageResults of a dataset's predictions in dataset order, encoded for `iou_types`: what
    `inference` hands to the COCO evaluation instead of the BoxLists (see CocoResultEncoder)."""

    images: List[ImageResults]
    iou_types: Tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)


class CocoResultEncoder(object):
    """Encodes predictions as they come (compute_on_dataset calls it with each dataset index and its
    BoxList) and keeps only the ImageResults. `seconds` is the time spent encoding."""

    def __init__(self, dataset: Any, iou_types: Sequence[str]) -> None:
        unknown = [t for t in iou_types if t not in IOU_TYPES]
        if unknown:
            raise ValueError(f"unknown iou_types {unknown}; allowed: {list(IOU_TYPES)}")
        self.dataset = dataset
        self.iou_types = tuple(iou_types)
        self.results: Dict[int, ImageResults] = {}
        self.seconds = 0.0

    def __call__(self, index: int, prediction: BoxList) -> None:
        start = time.perf_counter()
        self.results[int(index)] = encode_prediction(prediction, self.dataset, int(index), self.iou_types)
        self.seconds += time.perf_counter() - start

    def merged(self, per_process: Sequence[Dict[int, ImageResults]]) -> EncodedPredictions:
        """The results gathered from all processes ({index: ImageResults} each), in dataset order."""
        merged: Dict[int, ImageResults] = {}
        for results in per_process:
            merged.update(results)
        return EncodedPredictions([merged[i] for i in sorted(merged)], self.iou_types)

    @staticmethod
    def compact(prediction: BoxList) -> BoxList:
        """`prediction` to keep for predictions.pth: the same BoxList, except that masks the model pasted
        at image size ([N, 1, H, W]) become a list of COCO RLEs (as MaskPostProcessorCOCOFormat's), so
        that a large dataset's predictions do not hold every pasted mask."""
        if "mask" not in prediction.fields():
            return prediction
        masks = prediction.get_field("mask")
        width, height = (int(v) for v in prediction.size)
        if not isinstance(masks, torch.Tensor) or tuple(masks.shape[-2:]) != (height, width) or len(prediction) == 0:
            return prediction
        binary = masks[:, 0] if masks.dim() == 4 else masks
        binary = binary > 0.5 if binary.is_floating_point() else binary.bool()
        kept = prediction.copy_with_fields([f for f in prediction.fields() if f != "mask"])
        kept.add_field("mask", encode_binary_masks(binary).rles())
        return kept
