"""Test-time augmentation of box detections (TEST.BBOX_AUG).

Each image (a PIL image: with BBOX_AUG the test loader applies no transforms) is detected as is
(resized to INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST: the "identity" transform), optionally flipped
horizontally, and at each of BBOX_AUG.SCALES (optionally flipped too). Every result is mapped back
to the identity transform's image size, all boxes are concatenated and the box head's
`filter_results` (score threshold, per-class NMS, DETECTIONS_PER_IMG) gives the final detections.

Everything comes from the config passed in (`BoxTestTimeAugmentation.from_config(cfg)`; the
original's `im_detect_bbox*` functions read the global config when none is); the views'
transforms are the test pipeline of `build_transforms` at the view's size and flip. The model must be
built with TEST.BBOX_AUG.ENABLED so that its box head returns the unfiltered
per-class boxes (`[N * C, 4]` with scores `[N * C]`). Masks and keypoints are not augmented.
Box convention: legacy inclusive xyxy; a flip maps `x -> W - x - 1` (BoxList.transpose).
"""

from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch

from ..config import CfgNode
from ..config import cfg as _global_cfg
from ..data.transforms import build_transforms
from ..modeling.roi_heads.box_head.inference import make_roi_box_post_processor
from ..structures.bounding_box import FLIP_LEFT_RIGHT, BoxList
from ..structures.image_list import to_image_list

# One view of the images: its transform (PIL image -> normalised tensor) and whether it flips them.
View = Tuple[Callable, bool]


def _detect(
    model: torch.nn.Module, images: Sequence[Any], view: View, size_divisibility: int, device: torch.device
) -> List[BoxList]:
    """Transform the images the view's way, batch them, run the model, undo the flip."""
    transform, hflip = view
    batch = to_image_list([transform(image)[0] for image in images], size_divisibility)
    boxlists = model(batch.to(device))
    if hflip:
        boxlists = [boxlist.transpose(FLIP_LEFT_RIGHT) for boxlist in boxlists]
    return boxlists


def _view(cfg: CfgNode, min_size: int, max_size: int, hflip: bool) -> View:
    transform = build_transforms(
        cfg, is_train=False, min_size=min_size, max_size=max_size, horizontal_flip_prob=1.0 if hflip else 0.0
    )
    return transform, hflip


class BoxTestTimeAugmentation:
    """Augmented box detections of a batch of PIL images: one BoxList ("scores", "labels") per image,
    in the size of the first view (the identity transform).

    Arguments:
        views: (transform, flips) pairs, the identity view first.
        size_divisibility: padding of the batched images (DATALOADER.SIZE_DIVISIBILITY).
        filter_results: the box head's (BoxList of N * C boxes with "scores", num_classes) -> detections.
        num_classes: including the background.
    """

    def __init__(self, views: Sequence[View], size_divisibility: int, filter_results: Callable, num_classes: int):
        if not views:
            raise ValueError("test-time augmentation needs at least one view")
        self.views = list(views)
        self.size_divisibility = size_divisibility
        self.filter_results = filter_results
        self.num_classes = num_classes

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "BoxTestTimeAugmentation":
        """The views of TEST.BBOX_AUG: identity, its flip (H_FLIP), each of SCALES and their flips
        (SCALE_H_FLIP); the box head's post-processing of this config."""
        aug = cfg.TEST.BBOX_AUG
        views = [_view(cfg, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, hflip=False)]
        if aug.H_FLIP:
            views.append(_view(cfg, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, hflip=True))
        for scale in aug.SCALES:
            views.append(_view(cfg, scale, aug.MAX_SIZE, hflip=False))
            if aug.SCALE_H_FLIP:
                views.append(_view(cfg, scale, aug.MAX_SIZE, hflip=True))
        post_processor = make_roi_box_post_processor(cfg)
        return cls(
            views, cfg.DATALOADER.SIZE_DIVISIBILITY, post_processor.filter_results, cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES
        )

    def __call__(self, model: torch.nn.Module, images: Sequence[Any], device: Any) -> List[BoxList]:
        device = torch.device(device)
        per_image: List[List[BoxList]] = [[] for _ in images]
        for view in self.views:
            for i, boxlist in enumerate(_detect(model, images, view, self.size_divisibility, device)):
                # the first (identity) result fixes the size the others are mapped to
                per_image[i].append(boxlist if not per_image[i] else boxlist.resize(per_image[i][0].size))
        results = []
        for boxlists in per_image:
            merged = BoxList(torch.cat([b.convert("xyxy").bbox for b in boxlists]), boxlists[0].size, mode="xyxy")
            merged.add_field("scores", torch.cat([b.get_field("scores") for b in boxlists]))
            results.append(self.filter_results(merged, self.num_classes))
        return results


# The original's functions. They read the global `maskrcnn_benchmark.config.cfg`, as the original
# did, unless a config is passed in.
def _config(cfg: Optional[CfgNode]) -> CfgNode:
    return _global_cfg if cfg is None else cfg


def im_detect_bbox(
    model, images, target_scale, target_max_size, device, cfg: Optional[CfgNode] = None
) -> List[BoxList]:
    """Detections at one test scale (the images' own orientation)."""
    cfg = _config(cfg)
    view = _view(cfg, target_scale, target_max_size, hflip=False)
    return _detect(model, images, view, cfg.DATALOADER.SIZE_DIVISIBILITY, torch.device(device))


def im_detect_bbox_hflip(
    model, images, target_scale, target_max_size, device, cfg: Optional[CfgNode] = None
) -> List[BoxList]:
    """Detections of the horizontally flipped images, flipped back."""
    cfg = _config(cfg)
    view = _view(cfg, target_scale, target_max_size, hflip=True)
    return _detect(model, images, view, cfg.DATALOADER.SIZE_DIVISIBILITY, torch.device(device))


def im_detect_bbox_scale(
    model, images, target_scale, target_max_size, device, hflip: bool = False, cfg: Optional[CfgNode] = None
) -> List[BoxList]:
    """Detections at another scale (optionally of the flipped images, flipped back)."""
    cfg = _config(cfg)
    view = _view(cfg, target_scale, target_max_size, hflip=hflip)
    return _detect(model, images, view, cfg.DATALOADER.SIZE_DIVISIBILITY, torch.device(device))


def im_detect_bbox_aug(
    model: torch.nn.Module, images: Sequence[Any], device: Any, cfg: Optional[CfgNode] = None
) -> List[BoxList]:
    """BoxTestTimeAugmentation.from_config(cfg) applied once."""
    return BoxTestTimeAugmentation.from_config(_config(cfg))(model, images, device)
