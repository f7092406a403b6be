"""Post-processing for an exported detector: the graph's flat outputs -> one BoxList per image,
exactly as engine/predictor.py's Predictor returns them (docs/DEPLOY.md#outputs).

1. `to_boxlists`: split the outputs by "batch_index" into the eager model's BoxLists, in network-input
   pixels: "scores", "labels", "mask" (probabilities [N, 1, M, M]) and "keypoints" (PersonKeypoints
   decoded from the heat maps by the eager model's Keypointer, with "logits"). What the eager model
   returns for these images.
2. `finalize`: Predictor._postprocess: resize to the original image, sort by decreasing score
   (stable), drop scores below score_threshold, paste masks at image size (Masker: bool, or uint8
   0..255 probabilities when mask_threshold < 0; MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS: pasted at the
   input size, then scaled, as the eager model and the Predictor do). Empty results keep every field.
"""

from typing import Dict, List, Sequence, Tuple

import torch
from torch.nn import functional as F

from ..config import CfgNode
from ..modeling.roi_heads.keypoint_head.inference import Keypointer
from ..modeling.roi_heads.mask_head.inference import Masker
from ..structures.bounding_box import BoxList
from ..structures.keypoint import PersonKeypoints


def to_boxlists(outputs: Dict[str, torch.Tensor], image_sizes: Sequence[Tuple[int, int]]) -> List[BoxList]:
    """Graph outputs (names of DetectorGraph.output_names) and the (h, w) of each input image ->
    the eager model's BoxList per image, in network-input pixels."""
    image = outputs["batch_index"].long()
    results = []
    for i, (height, width) in enumerate(image_sizes):
        rows = torch.nonzero(image == i).squeeze(1)
        result = BoxList(outputs["boxes"][rows].float(), (width, height), mode="xyxy")
        result.add_field("scores", outputs["scores"][rows].float())
        result.add_field("labels", outputs["labels"][rows].long())
        if "masks" in outputs:
            result.add_field("mask", outputs["masks"][rows].float())
        if "keypoint_heatmaps" in outputs:
            keypoints, scores = Keypointer()(outputs["keypoint_heatmaps"][rows], result)
            person = PersonKeypoints(keypoints, result.size)
            person.add_field("logits", scores)
            result.add_field("keypoints", person)
        results.append(result)
    return results


def finalize(
    prediction: BoxList, original_size: Tuple[int, int], cfg: CfgNode, score_threshold: float, masker: Masker
) -> BoxList:
    """The eager model's BoxList of one image (network-input pixels, from to_boxlists) -> the
    Predictor's result for that image of (width, height) `original_size` (see the module docstring)."""
    head = cfg.MODEL.ROI_MASK_HEAD
    if cfg.MODEL.MASK_ON and head.POSTPROCESS_MASKS:
        # The eager model pastes the masks itself, at its input size, with its own Masker.
        pasted = Masker(head.POSTPROCESS_MASKS_THRESHOLD, padding=1)([prediction.get_field("mask")], [prediction])[0]
        prediction.add_field("mask", pasted)
    prediction = prediction.resize(original_size)  # boxes and keypoints; tensor fields unchanged
    scores = prediction.get_field("scores").float()
    order = torch.sort(scores, descending=True, stable=True).indices
    prediction = prediction[order[scores[order] >= score_threshold]]
    if cfg.MODEL.MASK_ON:
        masks = prediction.get_field("mask")
        width, height = (int(v) for v in prediction.size)
        if not head.POSTPROCESS_MASKS:
            masks = masker([masks], [prediction])[0]
        elif masks.shape[-2:] != (height, width):  # as Predictor: scale the input-size masks
            masks = F.interpolate(masks.float(), size=(height, width), mode="nearest").to(masks.dtype)
        prediction.add_field("mask", masks)
    return prediction.to("cpu")
