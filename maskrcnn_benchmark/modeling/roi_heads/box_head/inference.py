"""Box head inference (PostProcessor): class scores + deltas -> final detections per image.

Softmax, decoding and clipping, then score threshold, per-class NMS and the per-image limit:
docs/CONVENTIONS.md#box-head-detections. Output: BoxList in network-input pixels with "scores" and
"labels".

Degenerate inputs: images without proposals (or a batch without any) give empty BoxLists with the
usual fields; (box, class) pairs whose score or decoded box is not finite (a diverged model: NaN
logits or deltas) are never candidates, so no NaN reaches NMS or the output. For finite inputs
this changes nothing.
"""

from typing import List, Sequence, Tuple

import torch
from torch import nn

from ....config import CfgNode
from ....layers.nms import batched_nms
from ....structures.bounding_box import BoxList
from ...box_coder import BoxCoder
from ...utils import nonzero_per_image, within_detection_limit


class PostProcessor(nn.Module):
    def __init__(
        self,
        score_thresh: float = 0.05,
        nms: float = 0.5,
        detections_per_img: int = 100,
        box_coder: BoxCoder = None,
        cls_agnostic_bbox_reg: bool = False,
        bbox_aug_enabled: bool = False,
    ):
        super().__init__()
        self.score_thresh = score_thresh
        self.nms = nms
        self.detections_per_img = detections_per_img
        self.box_coder = box_coder or BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
        self.cls_agnostic_bbox_reg = cls_agnostic_bbox_reg
        self.bbox_aug_enabled = bbox_aug_enabled

    def forward(self, x: Tuple[torch.Tensor, torch.Tensor], boxes: Sequence[BoxList]) -> List[BoxList]:
        """x = (class_logits [K, C], box_regression [K, 4C or 8]); boxes: the proposals per image."""
        class_logits, box_regression = x
        class_prob = torch.softmax(class_logits.float(), -1)
        box_regression = box_regression.float()
        boxes_per_image = [len(b) for b in boxes]
        concat_boxes = torch.cat([b.bbox for b in boxes], dim=0)
        if self.cls_agnostic_bbox_reg:
            box_regression = box_regression[:, -4:]
        # flatten(1), not view(K, -1): K may be 0 (no proposals in the whole batch).
        proposals = self.box_coder.decode(box_regression.flatten(1), concat_boxes)
        num_classes = class_prob.shape[1]
        if self.cls_agnostic_bbox_reg:
            proposals = proposals.repeat(1, num_classes)

        results = []
        for prob, boxes_per_img, proposal in zip(
            class_prob.split(boxes_per_image), proposals.split(boxes_per_image), boxes
        ):
            boxlist = BoxList(boxes_per_img.reshape(-1, 4), proposal.size, mode="xyxy")
            boxlist.add_field("scores", prob.reshape(-1))
            results.append(boxlist.clip_to_image(remove_empty=False))
        if self.bbox_aug_enabled:
            return results
        return self.filter_batch(results, num_classes)

    def filter_results(self, boxlist: BoxList, num_classes: int) -> BoxList:
        """Score threshold, per-class NMS and the per-image limit (see the module docstring) for one
        image: boxes [R * num_classes, 4] with "scores" [R * num_classes], class-minor."""
        return self.filter_batch([boxlist], num_classes)[0]

    def filter_batch(self, boxlists: Sequence[BoxList], num_classes: int) -> List[BoxList]:
        """`filter_results` for every image at once, with three host reads for the whole batch
        (the candidates, NMS's output, the detections per image) instead of about four per image."""
        if not boxlists:
            return []
        device = boxlists[0].bbox.device
        boxes = torch.cat([b.bbox for b in boxlists]).reshape(-1, num_classes, 4)
        scores = torch.cat([b.get_field("scores") for b in boxlists]).reshape(-1, num_classes)
        image_of_row = torch.cat(
            [torch.full((len(b) // num_classes,), i, device=device) for i, b in enumerate(boxlists)]
        )
        # NaN scores fail the comparison; NaN boxes (clipping maps +-inf into the image, not NaN)
        # are dropped here so that NMS and the output only see finite boxes.
        candidates = (scores > self.score_thresh) & torch.isfinite(boxes).all(dim=2)
        candidates[:, 0] = False  # background
        # Candidates in (image, box, class) order, so within a class they stay in box order.
        row, labels = torch.nonzero(candidates, as_tuple=True)
        cand_boxes, cand_scores, image = boxes[row, labels], scores[row, labels], image_of_row[row]
        # One NMS call for every image and class; kept indices come back by (image, class), then
        # box order: per image, the original's class-by-class concatenation.
        groups = image * num_classes + labels
        if self.nms > 0:
            keep = batched_nms(cand_boxes, cand_scores, groups, self.nms)
        else:  # no NMS at a threshold <= 0, as the original's boxlist_nms; the same (image, class) order
            keep = groups.argsort(stable=True)
        cand_boxes, cand_scores, labels, image = cand_boxes[keep], cand_scores[keep], labels[keep], image[keep]
        selected = within_detection_limit(cand_scores, image, len(boxlists), self.detections_per_img)
        results = []
        for rows, boxlist in zip(nonzero_per_image(selected, image, len(boxlists)), boxlists):
            result = BoxList(cand_boxes[rows], boxlist.size, mode="xyxy")
            result.add_field("scores", cand_scores[rows])
            result.add_field("labels", labels[rows])
            results.append(result)
        return results


def make_roi_box_post_processor(cfg: CfgNode) -> PostProcessor:
    heads = cfg.MODEL.ROI_HEADS
    return PostProcessor(
        heads.SCORE_THRESH,
        heads.NMS,
        heads.DETECTIONS_PER_IMG,
        BoxCoder(weights=heads.BBOX_REG_WEIGHTS),
        cfg.MODEL.CLS_AGNOSTIC_BBOX_REG,
        cfg.TEST.BBOX_AUG.ENABLED,
    )
