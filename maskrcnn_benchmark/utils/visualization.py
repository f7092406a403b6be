"""Drawing detections on images: boxes, class names and scores, masks (filled and outlined) and
keypoint skeletons. Images are numpy uint8 arrays [H, W, 3] in RGB; predictions are BoxLists in
that image's size (masks pasted at image size, [N, 1, H, W], or [N, 1, M, M] to be pasted here).
"""
import colorsys
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..structures.bounding_box import BoxList
from ..structures.keypoint import PersonKeypoints

Color = Tuple[int, int, int]


def color_for_label(label: int) -> Color:
    """A distinct, stable RGB colour per label (golden-ratio hues)."""
    hue = (label * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _pasted_masks(prediction: BoxList) -> Optional[np.ndarray]:
    if not prediction.has_field("mask"):
        return None
    masks = prediction.get_field("mask")
    width, height = prediction.size
    if masks.shape[-2:] != (height, width):
        from ..modeling.roi_heads.mask_head.inference import Masker

        masks = Masker(threshold=0.5, padding=1)([masks], [prediction])[0]
    return (masks[:, 0] > 0.5).cpu().numpy() if masks.dtype != torch.bool else masks[:, 0].cpu().numpy()


def draw_predictions(
    image: np.ndarray,
    prediction: BoxList,
    class_names: Optional[Sequence[str]] = None,
    score_threshold: float = 0.5,
    mask_alpha: float = 0.45,
    keypoint_threshold: float = 2.0,
) -> np.ndarray:
    """A copy of `image` (uint8 [H, W, 3] RGB) with the detections whose "scores" (if present) reach
    score_threshold: filled and outlined masks, boxes, "name score" labels, keypoint skeletons."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"draw_predictions: expected a uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if tuple(prediction.size) != (width, height):
        prediction = prediction.resize((width, height))
    canvas = image.copy()
    keep = torch.ones(len(prediction), dtype=torch.bool)
    if prediction.has_field("scores"):
        keep = prediction.get_field("scores").cpu() >= score_threshold
    prediction = prediction[keep.nonzero().squeeze(1)]
    if len(prediction) == 0:
        return canvas
    labels = prediction.get_field("labels").tolist() if prediction.has_field("labels") else [1] * len(prediction)
    scores = prediction.get_field("scores").tolist() if prediction.has_field("scores") else None
    masks = _pasted_masks(prediction)
    if masks is not None:
        for mask, label in zip(masks, labels):
            color = np.array(color_for_label(label), dtype=np.float32)
            region = mask.astype(bool)
            canvas[region] = (canvas[region] * (1 - mask_alpha) + color * mask_alpha).astype(np.uint8)
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, contours, -1, color_for_label(label), 1)
    boxes = prediction.convert("xyxy").bbox.round().to(torch.int64).tolist()
    for k, ((x1, y1, x2, y2), label) in enumerate(zip(boxes, labels)):
        color = color_for_label(label)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 1)
        name = class_names[label] if class_names is not None and 0 <= label < len(class_names) else str(label)
        text = name if scores is None else f"{name} {scores[k]:.2f}"
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
        top = max(y1 - th - baseline, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + tw, top + th + baseline), color, -1)
        cv2.putText(canvas, text, (x1, top + th), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    if prediction.has_field("keypoints"):
        _draw_keypoints(canvas, prediction.get_field("keypoints"), keypoint_threshold)
    return canvas


def _draw_keypoints(canvas: np.ndarray, keypoints: PersonKeypoints, threshold: float) -> None:
    """Skeleton lines and joints. Predictions carry per-keypoint scores in the "logits" field (drawn
    above `threshold`, as the original's vis_keypoints); ground truth uses visibility > 0."""
    points = keypoints.keypoints.cpu()  # [N, K, 3]: x, y, visibility
    if keypoints.has_field("logits"):
        visible = keypoints.get_field("logits").cpu() > threshold
    else:
        visible = points[..., 2] > 0
    for person, person_visible in zip(points, visible):
        xy = [tuple(p) for p in person[:, :2].round().to(torch.int64).tolist()]
        for a, b in PersonKeypoints.CONNECTIONS:
            if person_visible[a] and person_visible[b]:
                cv2.line(canvas, xy[a], xy[b], color_for_label(a + 3 * b), 2, cv2.LINE_AA)
        for k, point in enumerate(xy):
            if person_visible[k]:
                cv2.circle(canvas, point, 2, color_for_label(k), -1)


def save_image(path: str, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG or JPEG (by the extension)."""
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write image {path}")
