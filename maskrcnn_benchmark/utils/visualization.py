"""Drawing detections on images: boxes, class names and scores, masks (filled and outlined) and
keypoint skeletons.

- draw_predictions / save_image: images are numpy uint8 arrays [H, W, 3] in RGB; predictions are
  BoxLists in that image's size (masks pasted at image size, [N, 1, H, W], or [N, 1, M, M] to be
  pasted here).
- The original demo's style (used by COCODemo, which works on OpenCV's BGR images): legacy label
  colours, box outlines, mask contours, "name: score" texts, mask montages (heat maps) and
  vis_keypoints. These take colours in the image's own channel order.
"""

import colorsys
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..structures.bounding_box import BoxList
from ..structures.keypoint import PersonKeypoints
from .cv2_util import findContours

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
    if masks.dtype == torch.bool:
        return masks[:, 0].cpu().numpy()
    # uint8 masks are 0..255 probabilities (Masker with a negative threshold), floats 0..1
    threshold = 127 if masks.dtype == torch.uint8 else 0.5
    return (masks[:, 0] > threshold).cpu().numpy()


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
            contours, _ = findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, contours, -1, color_for_label(label), 1)
    for k, ((x1, y1, x2, y2), label) in enumerate(zip(_int_boxes(prediction.convert("xyxy").bbox), labels)):
        color = color_for_label(label)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 1)  # box then its label, box by box
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


# ---------------------------------------------------------------------------------------------------
# The original demo's drawing style (COCODemo). These functions draw on uint8 [H, W, 3] images in
# whatever channel order the caller uses: colours are given in that same order (COCODemo works in
# BGR, OpenCV's order). Boxes are xyxy pixel coordinates of the image being drawn on.

_LEGACY_PALETTE = torch.tensor([2**25 - 1, 2**15 - 1, 2**21 - 1])


def legacy_label_colors(labels: torch.Tensor) -> np.ndarray:
    """The original demo's colour per label: `label * [2**25-1, 2**15-1, 2**21-1] % 255`, [N, 3] uint8."""
    colors = labels.to(torch.int64).cpu()[:, None] * _LEGACY_PALETTE
    return (colors % 255).numpy().astype(np.uint8)


def _as_color(color) -> Color:
    return tuple(int(c) for c in color)


def _int_boxes(boxes: torch.Tensor) -> list:
    return boxes.detach().float().cpu().round().to(torch.int64).tolist()


def overlay_boxes(image: np.ndarray, boxes: torch.Tensor, colors: Sequence, thickness: int = 1) -> np.ndarray:
    """Rectangles for [N, 4] xyxy `boxes`, one colour each; draws into `image` and returns it."""
    for (x1, y1, x2, y2), color in zip(_int_boxes(boxes), colors):
        cv2.rectangle(image, (x1, y1), (x2, y2), _as_color(color), thickness)
    return image


def overlay_mask_contours(image: np.ndarray, masks: torch.Tensor, colors: Sequence, thickness: int = 3) -> np.ndarray:
    """Outlines of binary masks [N, 1, H, W] or [N, H, W] (image size; non-zero = inside), one colour
    each, as the original demo drew them (all contours, including holes); returns `image`."""
    if masks.dim() == 4:
        masks = masks[:, 0]
    for mask, color in zip(masks.cpu(), colors):
        binary = (mask > 0).numpy().astype(np.uint8)
        contours, _ = findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(image, contours, -1, _as_color(color), thickness)
    return image


def overlay_class_names(
    image: np.ndarray,
    boxes: torch.Tensor,
    texts: Sequence[str],
    color: Color = (255, 255, 255),
    font_scale: float = 0.5,
) -> np.ndarray:
    """`texts[i]` written at the top-left corner of box i (baseline on the box's top edge, moved
    down where that would leave the image); returns `image`."""
    for (x1, y1, _, _), text in zip(_int_boxes(boxes), texts):
        (_, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        origin = (max(x1, 0), max(y1, text_height))
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, color, 1)
    return image


def mask_montage(masks: torch.Tensor, height: int, width: int, masks_per_dim: int = 2) -> np.ndarray:
    """The first masks_per_dim**2 masks tiled in a masks_per_dim x masks_per_dim grid over a
    [height, width] canvas, in OpenCV's JET colour map (a BGR uint8 [height, width, 3] image).

    masks: [N, 1, H, W] bool, uint8 probabilities 0..255 (Masker with threshold < 0: heat maps) or
    float probabilities 0..1. Tiles are height // masks_per_dim by width // masks_per_dim; the
    remainder rows / columns stay 0, so the montage has exactly the image's size (a video writer
    needs every frame the same size).
    """
    if masks_per_dim < 1:
        raise ValueError(f"masks_per_dim must be >= 1, got {masks_per_dim}")
    canvas = np.zeros((height, width), dtype=np.uint8)
    tile_h, tile_w = max(height // masks_per_dim, 1), max(width // masks_per_dim, 1)
    masks = masks[: masks_per_dim**2].detach().cpu()
    if masks.dim() == 3:
        masks = masks[:, None]
    if len(masks):
        if masks.dtype == torch.bool:
            values = masks.float() * 255
        elif masks.dtype == torch.uint8:
            values = masks.float()
        else:
            values = masks.float().clamp(0, 1) * 255
        tiles = torch.nn.functional.interpolate(values, size=(tile_h, tile_w), mode="bilinear", align_corners=False)
        tiles = tiles[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
        for k, tile in enumerate(tiles):
            row, col = divmod(k, masks_per_dim)
            y, x = row * tile_h, col * tile_w
            canvas[y : y + tile_h, x : x + tile_w] = tile[: height - y, : width - x]
    return cv2.applyColorMap(canvas, cv2.COLORMAP_JET)


def rainbow_colors(count: int) -> list:
    """`count` BGR colours evenly spaced along the "rainbow" colour map (purple -> red):
    r = |2x - 0.5|, g = sin(pi x), b = cos(pi x / 2), clipped to [0, 1]."""
    colors = []
    for x in np.linspace(0.0, 1.0, count):
        r = min(abs(2 * x - 0.5), 1.0)
        g = max(np.sin(np.pi * x), 0.0)
        b = max(np.cos(np.pi * x / 2), 0.0)
        colors.append((int(b * 255), int(g * 255), int(r * 255)))
    return colors


def vis_keypoints(img: np.ndarray, kps: np.ndarray, kp_thresh: float = 2, alpha: float = 0.7) -> np.ndarray:
    """One person's keypoint skeleton blended into a copy of a BGR image (the original's layout).

    kps: [3, K] (or [4, K]) array with rows x, y, score (pixels of `img`; the score is the keypoint
    head's logit). A point is drawn when its score > kp_thresh; for the 17 COCO keypoints the limbs
    of PersonKeypoints.CONNECTIONS plus nose - mid-shoulder and mid-shoulder - mid-hip lines are
    drawn, each in its own rainbow colour. The drawing is blended with weight `alpha`.
    """
    kps = np.asarray(kps, dtype=np.float32)
    if kps.ndim != 2 or kps.shape[0] < 3:
        raise ValueError(f"vis_keypoints: kps should be [3, K] (x, y, score rows), got shape {kps.shape}")
    overlay = img.copy()
    xy = [(int(round(x)), int(round(y))) for x, y in zip(kps[0], kps[1])]
    score = kps[2]
    names = PersonKeypoints.NAMES
    if kps.shape[1] != len(names):  # not COCO's person layout: joints only, no skeleton
        for k, color in enumerate(rainbow_colors(kps.shape[1])):
            if score[k] > kp_thresh:
                cv2.circle(overlay, xy[k], 3, color, -1, cv2.LINE_AA)
        return cv2.addWeighted(img, 1.0 - alpha, overlay, alpha, 0)

    lines = PersonKeypoints.CONNECTIONS
    colors = rainbow_colors(len(lines) + 2)
    index = {name: k for k, name in enumerate(names)}

    def middle(a: str, b: str):
        i, j = index[a], index[b]
        point = (int(round((kps[0, i] + kps[0, j]) / 2)), int(round((kps[1, i] + kps[1, j]) / 2)))
        return point, min(score[i], score[j])

    mid_shoulder, shoulder_score = middle("left_shoulder", "right_shoulder")
    mid_hip, hip_score = middle("left_hip", "right_hip")
    nose = index["nose"]
    if shoulder_score > kp_thresh and score[nose] > kp_thresh:
        cv2.line(overlay, mid_shoulder, xy[nose], colors[len(lines)], 2, cv2.LINE_AA)
    if shoulder_score > kp_thresh and hip_score > kp_thresh:
        cv2.line(overlay, mid_shoulder, mid_hip, colors[len(lines) + 1], 2, cv2.LINE_AA)
    for (a, b), color in zip(lines, colors):
        if score[a] > kp_thresh and score[b] > kp_thresh:
            cv2.line(overlay, xy[a], xy[b], color, 2, cv2.LINE_AA)
        for k in (a, b):
            if score[k] > kp_thresh:
                cv2.circle(overlay, xy[k], 3, color, -1, cv2.LINE_AA)
    return cv2.addWeighted(img, 1.0 - alpha, overlay, alpha, 0)


def keypoints_as_rows(keypoints: PersonKeypoints) -> np.ndarray:
    """[N, 3, K] arrays (x, y, score rows) for vis_keypoints: scores are the "logits" field of
    predictions, or the visibility for ground truth (so that kp_thresh=0 draws visible points)."""
    points = keypoints.keypoints.detach().float().cpu()
    if keypoints.has_field("logits"):
        scores = keypoints.get_field("logits").detach().float().cpu()
    else:
        scores = points[..., 2]
    return torch.cat([points[..., :2], scores[..., None]], dim=2).permute(0, 2, 1).numpy()
