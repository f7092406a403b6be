"""Mask targets and loss.

For each positive proposal, the matched ground-truth mask is cropped to the (float) proposal box
and resized to M x M (M = ROI_MASK_HEAD.RESOLUTION): polygons are shifted and scaled, then
rasterised; binary masks are cropped and resized bilinearly. The loss is the binary cross-entropy
of the logits of the ground-truth class against that target, mean over all M*M*num_pos pixels.
Without any positive proposal (e.g. images whose objects were all removed) the loss is 0.

Ground-truth masks live on the host (polygons are rasterised by pycocotools), so the proposal
boxes and their matches are read on the host once per batch and the targets copied back once.
"""

from typing import Sequence, Tuple

import torch
from torch.nn import functional as F

from ....config import CfgNode
from ....structures._polygon_targets import polygons_in_boxes
from ....structures.bounding_box import BoxList
from ....structures.segmentation_mask import SegmentationMask
from ...matcher import Matcher
from ...utils import host_values
from ..matching import background_labels, match_proposals, nothing_to_match


def masks_on_boxes_on_host(
    segmentation_masks, boxes: Sequence[Sequence[float]], discretization_size: int
) -> torch.Tensor:
    """[P, M, M] float32 CPU targets: mask i of `segmentation_masks` cropped to `boxes[i]` (xyxy
    numbers) and resized to M x M."""
    M = discretization_size
    if isinstance(segmentation_masks, SegmentationMask) and segmentation_masks.mode == "poly":
        return polygons_in_boxes(segmentation_masks.instances.polygons, boxes, M).to(torch.float32)
    masks = [
        segmentation_mask.crop(box).resize((M, M)).get_mask_tensor().reshape(M, M)
        for segmentation_mask, box in zip(segmentation_masks, boxes)
    ]
    if not masks:
        return torch.empty(0, M, M, dtype=torch.float32)
    return torch.stack(masks).to(torch.float32)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host -> device without waiting: pinned memory and a non-blocking copy on a GPU."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def project_masks_on_boxes(segmentation_masks, proposals: BoxList, discretization_size: int) -> torch.Tensor:
    """[P, M, M] float32 targets of the P masks in `segmentation_masks` inside the P `proposals`."""
    if len(proposals) != len(segmentation_masks):
        raise ValueError(f"{len(segmentation_masks)} masks for {len(proposals)} proposals")
    boxes = host_values(proposals.convert("xyxy").bbox)
    targets = masks_on_boxes_on_host(segmentation_masks, boxes, discretization_size)
    return to_device(targets, proposals.bbox.device)


class MaskRCNNLossComputation:
    def __init__(self, proposal_matcher: Matcher, discretization_size: int):
        self.proposal_matcher = proposal_matcher
        self.discretization_size = discretization_size

    def prepare_targets(
        self, proposals: Sequence[BoxList], targets: Sequence[BoxList]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(labels [K] int64 of the K proposals of all images: the matched class, 0 or -1 below or
        between the thresholds; targets [K, M, M] float32, zero where the label is not positive)."""
        labels, rows = [], []
        for proposals_per_image, targets_per_image in zip(proposals, targets):
            proposals_per_image = proposals_per_image.convert("xyxy")
            if nothing_to_match(proposals_per_image, targets_per_image):
                label = background_labels(proposals_per_image)
                matched = label - 1
            else:  # the masks are indexed on the host below, with the matches read there
                _, matched, label = match_proposals(
                    self.proposal_matcher, proposals_per_image, targets_per_image, ["labels"]
                )
            labels.append(label)
            # box, matched ground truth, positive: one float32 row per proposal (indices are exact)
            columns = [proposals_per_image.bbox.float(), matched[:, None].float(), (label > 0)[:, None].float()]
            rows.append(torch.cat(columns, dim=1))
        labels = torch.cat(labels)
        M = self.discretization_size
        mask_targets = torch.zeros(len(labels), M, M)
        position = 0
        host_rows = host_values(torch.cat(rows)) if rows else []  # the one host read of the batch
        for targets_per_image, proposals_per_image in zip(targets, proposals):
            image_rows = host_rows[position : position + len(proposals_per_image)]
            positive = [i for i, row in enumerate(image_rows) if row[5] > 0]
            if positive:
                gt_masks = targets_per_image.get_field("masks")[[int(image_rows[i][4]) for i in positive]]
                on_host = masks_on_boxes_on_host(gt_masks, [image_rows[i][:4] for i in positive], M)
                mask_targets[[position + i for i in positive]] = on_host
            position += len(proposals_per_image)
        return labels, to_device(mask_targets, labels.device)

    def __call__(
        self, proposals: Sequence[BoxList], mask_logits: torch.Tensor, targets: Sequence[BoxList]
    ) -> torch.Tensor:
        """mask_logits [K, num_classes, M, M] for the K proposals (all images); returns the loss."""
        labels, mask_targets = self.prepare_targets(proposals, targets)
        if len(labels) == 0:
            return mask_logits.sum() * 0
        positive = labels > 0
        # Each RoI's logits of its own class; non-positive RoIs count zero (no host-side selection).
        logits = mask_logits[torch.arange(len(labels), device=labels.device), labels.clamp(min=0)].float()
        per_pixel = F.binary_cross_entropy_with_logits(logits, mask_targets, reduction="none")
        num_pixels = (positive.sum() * mask_targets[0].numel()).clamp(min=1)
        return torch.where(positive[:, None, None], per_pixel, 0).sum() / num_pixels


def make_roi_mask_loss_evaluator(cfg: CfgNode) -> MaskRCNNLossComputation:
    heads = cfg.MODEL.ROI_HEADS
    return MaskRCNNLossComputation(
        Matcher(heads.FG_IOU_THRESHOLD, heads.BG_IOU_THRESHOLD, allow_low_quality_matches=False),
        cfg.MODEL.ROI_MASK_HEAD.RESOLUTION,
    )
