"""Run a trained detector on images: `Predictor` (this project's API) and `COCODemo` (the original
demo's API, built on Predictor).

    from maskrcnn_benchmark.config import cfg
    from maskrcnn_benchmark.engine.predictor import Predictor
    cfg.merge_from_file("configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml")
    predictor = Predictor(cfg, weights="output/demo/model_final.pth", score_threshold=0.5)
    result = predictor(cv2.imread("image.jpg"))           # one image -> one BoxList
    results = predictor([pil_image, rgb_tensor, bgr_array])  # a list -> a list, batched

Image conventions (see predictor_inputs.py): numpy arrays are BGR uint8 [H, W, 3] (OpenCV's order);
PIL images and torch tensors [3, H, W] are RGB (tensors uint8 0..255 or float 0..1). Each image is
resized by the dataset's test transform (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST, normalised as
INPUT.TO_BGR255 / PIXEL_MEAN / PIXEL_STD say), so predictions match tools/test_net.py's.

Results are BoxLists on the CPU in each ORIGINAL image's size, xyxy pixel boxes, sorted by decreasing
score, with "scores", "labels" (contiguous ids; names in predictor.class_names) and, as the model
predicts them, "mask" (pasted at image size: bool [N, 1, H, W], or uint8 0..255 probabilities when
mask_threshold < 0) and "keypoints" (PersonKeypoints in image pixels, with "logits" scores).
"""

import logging
import math
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.nn import functional as F

from ..config import CfgNode
from ..data.transforms import build_transforms
from ..data.transforms.transforms import Resize
from ..modeling.detector import build_detection_model
from ..modeling.roi_heads.mask_head.inference import Masker
from ..structures.bounding_box import BoxList
from ..structures.image_list import to_image_list
from ..structures.keypoint import PersonKeypoints
from ..utils import visualization as vis
from ..utils.checkpoint import DetectronCheckpointer, WeightsCoverageError
from ..utils.visualization import vis_keypoints  # noqa: F401  (the original module exported it)
from .class_names import COCO_CATEGORIES, resolve_class_names
from .compile import maybe_compile
from .precision import autocast, autocast_dtype
from .predictor_inputs import check_image, to_rgb_pil

logger = logging.getLogger(__name__)

ImageInput = Any  # numpy BGR uint8 [H, W, 3], PIL image, or RGB tensor [3, H, W]


def default_weights(cfg: CfgNode) -> str:
    """The weights tools/test_net.py and the original demo load: the last checkpoint of
    cfg.OUTPUT_DIR if there is one, else cfg.MODEL.WEIGHT ("" = none)."""
    checkpointer = DetectronCheckpointer(cfg, torch.nn.Module(), save_dir=cfg.OUTPUT_DIR)
    if checkpointer.has_checkpoint():
        last = checkpointer.get_checkpoint_file()
        if last:
            return last
    return cfg.MODEL.WEIGHT


class Predictor:
    """A detector in eval mode plus its pre- and post-processing (see the module docstring).

    Arguments:
        cfg: the model's config (frozen or not; it is cloned, not changed).
        weights: a .pth / .pkl path, "catalog://..." or a URL; None uses cfg.MODEL.WEIGHT; "" keeps
            the random initialisation (with a loud warning). Given weights must cover the whole
            model (WeightsCoverageError otherwise: e.g. an ImageNet-pretrained backbone only).
        allow_random_weights: accept weights that leave part of the model random.
        class_names: names by label (with or without the background); None looks for labels.json
            next to the weights, then in cfg.OUTPUT_DIR, else a default (engine/class_names.py).
        device: where the model runs; None uses cfg.MODEL.DEVICE.
        score_threshold: detections scoring below it are dropped.
        mask_threshold: masks are pasted as probability > mask_threshold (bool); a negative value
            keeps the probabilities as uint8 0..255 (heat maps).
        batch_size: images per forward pass when given a list; None uses cfg.TEST.IMS_PER_BATCH.
    """

    def __init__(
        self,
        cfg,
        weights: Optional[str] = None,
        class_names: Optional[Sequence[str]] = None,
        device: Union[None, str, torch.device] = None,
        score_threshold: float = 0.0,
        mask_threshold: float = 0.5,
        batch_size: Optional[int] = None,
        allow_random_weights: bool = False,
    ):
        self.cfg = cfg.clone()
        self.device = torch.device(device if device is not None else cfg.MODEL.DEVICE)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {str(self.device)!r} asked for but no GPU is available: use MODEL.DEVICE cpu")
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size or max(cfg.TEST.IMS_PER_BATCH, 1))
        self.autocast_dtype = autocast_dtype(cfg)
        self.model = build_detection_model(self.cfg)
        self.model.eval()
        self.model.to(self.device)
        maybe_compile(self.model, self.cfg)  # MODEL.COMPILE: in place; the weights below load either way
        self.weights = cfg.MODEL.WEIGHT if weights is None else weights
        if self.weights:
            # save_dir="": load exactly this file, never a last_checkpoint found somewhere else.
            checkpointer = DetectronCheckpointer(self.cfg, self.model, save_dir="")
            try:
                checkpointer.load(self.weights, use_latest=False, require="none" if allow_random_weights else "all")
            except WeightsCoverageError as e:
                raise e.with_hint("Pass allow_random_weights=True to predict with them anyway.") from None
            result = checkpointer.last_load_result
            if result is not None and not result.complete:
                logger.warning(
                    "Predictor: %d model tensors were not loaded from %s and keep RANDOM values "
                    "(allow_random_weights=True)",
                    len(result.missing) + len(result.mismatched),
                    self.weights,
                )
        else:
            message = (
                "Predictor: no weights given (weights='' or MODEL.WEIGHT empty): the model keeps its RANDOM "
                "initialisation and its predictions are meaningless"
            )
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        self.class_names = resolve_class_names(self.cfg, self.weights, class_names)
        self.transform = build_transforms(self.cfg, is_train=False)
        self._resize = next((t for t in self.transform.transforms if isinstance(t, Resize)), None)
        self.masker = Masker(threshold=mask_threshold, padding=1)

    def preprocess(self, image: ImageInput, name: str = "image") -> torch.Tensor:
        """One image (any accepted type) -> the normalised network input [3, H', W'] (CPU)."""
        return self.transform(to_rgb_pil(image, name))[0]

    def __call__(self, images: Union[ImageInput, Sequence[ImageInput]]) -> Union[BoxList, List[BoxList]]:
        """One image -> one BoxList; a list or tuple of images (any mix of sizes and types) -> a
        list of BoxLists in the same order.

        Images share a forward pass (up to batch_size of them) only with images of the same padded
        network-input size, so a result never depends on the other images of the call: zero padding
        would change GroupNorm statistics and the features near the borders.
        """
        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        names = ["image"] if single else [f"image {i}" for i in range(len(batch))]
        # Check every image before any model work, so that a bad one fails fast with its index.
        sizes = [check_image(image, name) for image, name in zip(batch, names)]
        groups: Dict[Tuple[int, int], List[int]] = {}
        for index, size in enumerate(sizes):
            groups.setdefault(self._padded_input_size(size), []).append(index)
        results: List[Optional[BoxList]] = [None] * len(batch)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                outputs = self._predict_batch([to_rgb_pil(batch[i], names[i]) for i in chunk])
                for index, output in zip(chunk, outputs):
                    results[index] = output
        return results[0] if single else results

    def _padded_input_size(self, size: Tuple[int, int]) -> Tuple[int, int]:
        """(height, width) of the padded network input of an image of (width, height) `size`."""
        height, width = self._resize.get_size(size) if self._resize is not None else (size[1], size[0])
        divisor = self.cfg.DATALOADER.SIZE_DIVISIBILITY
        if divisor > 0:
            height, width = math.ceil(height / divisor) * divisor, math.ceil(width / divisor) * divisor
        return height, width

    @torch.no_grad()
    def _predict_batch(self, pil_images: list) -> List[BoxList]:
        tensors = [self.transform(image)[0] for image in pil_images]
        image_list = to_image_list(tensors, self.cfg.DATALOADER.SIZE_DIVISIBILITY).to(self.device)
        with autocast(self.device.type, self.autocast_dtype):
            outputs = self.model(image_list)
        return [self._postprocess(output, image.size) for output, image in zip(outputs, pil_images)]

    def _postprocess(self, prediction: BoxList, original_size: tuple) -> BoxList:
        """Network-input-size detections -> original size, sorted, thresholded, masks pasted."""
        prediction = prediction.resize(original_size)  # boxes and keypoints; tensor fields unchanged
        score_field = "scores" if prediction.has_field("scores") else "objectness"
        if prediction.has_field(score_field):
            scores = prediction.get_field(score_field).float()
            order = torch.sort(scores, descending=True, stable=True).indices
            prediction = prediction[order[scores[order] >= self.score_threshold]]
        if self.cfg.MODEL.MASK_ON and prediction.has_field("mask"):
            prediction.add_field("mask", self._masks_at_image_size(prediction))
        return self._with_all_fields(prediction).to("cpu")

    def _masks_at_image_size(self, prediction: BoxList) -> torch.Tensor:
        masks = prediction.get_field("mask")
        if not self.cfg.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS:
            return self.masker([masks], [prediction])[0]
        # The model pasted them already, at its input size: scale them to the original image.
        width, height = (int(v) for v in prediction.size)
        if masks.shape[-2:] == (height, width):
            return masks
        scaled = F.interpolate(masks.float(), size=(height, width), mode="nearest")
        return scaled.to(masks.dtype)

    def _with_all_fields(self, prediction: BoxList) -> BoxList:
        """Empty results keep the fields a caller indexes into (e.g. a frame with no detection)."""
        width, height = (int(v) for v in prediction.size)
        if self.cfg.MODEL.MASK_ON and not prediction.has_field("mask"):
            dtype = torch.bool if self.masker.threshold >= 0 else torch.uint8
            prediction.add_field("mask", torch.zeros((len(prediction), 1, height, width), dtype=dtype))
        if self.cfg.MODEL.KEYPOINT_ON and not prediction.has_field("keypoints"):
            num = self.cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_CLASSES
            keypoints = PersonKeypoints(torch.zeros((len(prediction), num, 3)), prediction.size)
            keypoints.add_field("logits", torch.zeros((len(prediction), num)))
            prediction.add_field("keypoints", keypoints)
        return prediction


class COCODemo:
    """The original demo/predictor.py API on top of Predictor; images are OpenCV BGR uint8 arrays.

    Weights: `weight_loading` if given, else the last checkpoint of cfg.OUTPUT_DIR, else
    cfg.MODEL.WEIGHT (the original loaded the latter two, then `weight_loading` over them).
    `min_image_size` is stored but unused, as in the original: the input size is
    cfg.INPUT.MIN_SIZE_TEST. CATEGORIES are the model's class names (labels.json, else COCO's for an
    81-class model, see engine/class_names.py).
    """

    CATEGORIES = COCO_CATEGORIES

    def __init__(
        self,
        cfg,
        confidence_threshold: float = 0.7,
        show_mask_heatmaps: bool = False,
        masks_per_dim: int = 2,
        min_image_size: int = 224,
        weight_loading: Optional[str] = None,
    ):
        self.predictor = Predictor(
            cfg,
            weights=weight_loading or default_weights(cfg),
            score_threshold=0.0,
            mask_threshold=-1 if show_mask_heatmaps else 0.5,
        )
        self.cfg = self.predictor.cfg
        self.model = self.predictor.model
        self.device = self.predictor.device
        self.masker = self.predictor.masker
        self.CATEGORIES = self.predictor.class_names
        self.min_image_size = min_image_size
        self.transforms = self.build_transform()
        self.palette = torch.tensor([2**25 - 1, 2**15 - 1, 2**21 - 1])
        self.cpu_device = torch.device("cpu")
        self.confidence_threshold = confidence_threshold
        self.show_mask_heatmaps = show_mask_heatmaps
        self.masks_per_dim = masks_per_dim

    def build_transform(self) -> Callable[[np.ndarray], torch.Tensor]:
        """A BGR uint8 image -> the normalised network input [3, H', W'] (Predictor's path)."""
        return self.predictor.preprocess

    def run_on_opencv_image(self, image: np.ndarray) -> np.ndarray:
        """A copy of the BGR image with the detections scoring above confidence_threshold drawn
        (boxes, mask outlines, keypoints, "name: score"); with show_mask_heatmaps, the mask montage."""
        return self._draw(image, self.compute_prediction(image))

    def run_on_opencv_images(self, images: Sequence[np.ndarray]) -> List[np.ndarray]:
        """run_on_opencv_image for several images, batched (cfg.TEST.IMS_PER_BATCH per pass)."""
        return [self._draw(image, p) for image, p in zip(images, self.predictor(list(images)))]

    def _draw(self, image: np.ndarray, predictions: BoxList) -> np.ndarray:
        top_predictions = self.select_top_predictions(predictions)
        result = image.copy()
        if self.show_mask_heatmaps:
            return self.create_mask_montage(result, top_predictions)
        result = self.overlay_boxes(result, top_predictions)
        if self.cfg.MODEL.MASK_ON:
            result = self.overlay_mask(result, top_predictions)
        if self.cfg.MODEL.KEYPOINT_ON:
            result = self.overlay_keypoints(result, top_predictions)
        return self.overlay_class_names(result, top_predictions)

    def compute_prediction(self, original_image: np.ndarray) -> BoxList:
        """All detections of a BGR image, in its size, masks pasted (self.masker's threshold)."""
        return self.predictor(original_image)

    def select_top_predictions(self, predictions: BoxList) -> BoxList:
        """Detections with score > confidence_threshold, by decreasing score."""
        scores = predictions.get_field("scores")
        keep = torch.nonzero(scores > self.confidence_threshold).squeeze(1)
        predictions = predictions[keep]
        order = torch.sort(predictions.get_field("scores"), descending=True, stable=True).indices
        return predictions[order]

    def compute_colors_for_labels(self, labels: torch.Tensor) -> np.ndarray:
        """The original's colour per label, [N, 3] uint8 (used as BGR)."""
        return vis.legacy_label_colors(labels)

    def overlay_boxes(self, image: np.ndarray, predictions: BoxList) -> np.ndarray:
        colors = self.compute_colors_for_labels(predictions.get_field("labels"))
        return vis.overlay_boxes(image, predictions.convert("xyxy").bbox, colors, thickness=1)

    def overlay_mask(self, image: np.ndarray, predictions: BoxList) -> np.ndarray:
        masks = predictions.get_field("mask")
        if masks.dtype == torch.uint8:  # heat-map probabilities 0..255: outline the > 0.5 part
            masks = masks > 127
        colors = self.compute_colors_for_labels(predictions.get_field("labels"))
        return vis.overlay_mask_contours(image, masks, colors, thickness=3)

    def overlay_keypoints(self, image: np.ndarray, predictions: BoxList) -> np.ndarray:
        for person in vis.keypoints_as_rows(predictions.get_field("keypoints")):
            image = vis_keypoints(image, person)
        return image

    def create_mask_montage(self, image: np.ndarray, predictions: BoxList) -> np.ndarray:
        """The first masks_per_dim**2 masks tiled over an image-sized JET-coloured canvas (BGR)."""
        height, width = image.shape[:2]
        return vis.mask_montage(predictions.get_field("mask"), height, width, self.masks_per_dim)

    def overlay_class_names(self, image: np.ndarray, predictions: BoxList) -> np.ndarray:
        scores = predictions.get_field("scores").tolist()
        labels = predictions.get_field("labels").tolist()
        names = [self.CATEGORIES[i] if 0 <= i < len(self.CATEGORIES) else str(i) for i in labels]
        texts = [f"{name}: {score:.2f}" for name, score in zip(names, scores)]
        return vis.overlay_class_names(image, predictions.convert("xyxy").bbox, texts)
