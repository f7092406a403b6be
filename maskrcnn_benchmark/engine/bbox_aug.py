"""Test-time augmentation of box detections (TEST.BBOX_AUG).

Each image (a PIL image: with BBOX_AUG the test loader applies no transforms) is detected as is
(resized to INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST: the "identity" transform), optionally flipped
horizontally, and at each of BBOX_AUG.SCALES (optionally flipped too). Every result is mapped back
to the identity transform's image size, all boxes are concatenated and the box head's
`filter_results` (score threshold, per-class NMS, DETECTIONS_PER_IMG) gives the final detections.

The model must be built with TEST.BBOX_AUG.ENABLED so that its box head returns the unfiltered
per-class boxes (`[N * C, 4]` with scores `[N * C]`). Masks and keypoints are not augmented.
Box convention: legacy inclusive xyxy; a flip maps `x -> W - x - 1` (BoxList.transpose).
"""
from typing import Any, Callable, List, Optional, Sequence

import torch

from ..data.transforms import transforms as T
from ..modeling.roi_heads.box_head.inference import make_roi_box_post_processor
from ..structures.bounding_box import FLIP_LEFT_RIGHT, BoxList
from ..structures.image_list import to_image_list


def _global_cfg():
    from ..config import cfg

    return cfg


def _detect(
    model: torch.nn.Module,
    images: Sequence[Any],
    min_size: int,
    max_size: int,
    device: torch.device,
    cfg: Any,
    hflip: bool = False,
) -> List[BoxList]:
    """Resize (and flip) the images the test way, batch them, run the model."""
    steps: List[Callable] = [T.Resize(min_size, max_size)]
    if hflip:
        steps.append(T.RandomHorizontalFlip(1.0))
    steps += [
        T.ToTensor(),
        T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD, to_bgr255=cfg.INPUT.TO_BGR255),
    ]
    transform = T.Compose(steps)
    batch = to_image_list([transform(image)[0] for image in images], cfg.DATALOADER.SIZE_DIVISIBILITY)
    boxlists = model(batch.to(device))
    if hflip:
        boxlists = [boxlist.transpose(FLIP_LEFT_RIGHT) for boxlist in boxlists]
    return boxlists


def im_detect_bbox(model, images, target_scale, target_max_size, device, cfg=None) -> List[BoxList]:
    """Detections at one test scale (the images' own orientation)."""
    return _detect(model, images, target_scale, target_max_size, torch.device(device), cfg or _global_cfg())


def im_detect_bbox_hflip(model, images, target_scale, target_max_size, device, cfg=None) -> List[BoxList]:
    """Detections of the horizontally flipped images, flipped back."""
    return _detect(model, images, target_scale, target_max_size, torch.device(device), cfg or _global_cfg(), hflip=True)


def im_detect_bbox_scale(
    model, images, target_scale, target_max_size, device, hflip: bool = False, cfg=None
) -> List[BoxList]:
    """Detections at another scale (optionally of the flipped images, flipped back)."""
    return _detect(model, images, target_scale, target_max_size, torch.device(device), cfg or _global_cfg(), hflip=hflip)


def im_detect_bbox_aug(
    model: torch.nn.Module, images: Sequence[Any], device: Any, cfg: Optional[Any] = None
) -> List[BoxList]:
    """Augmented detections of a batch of PIL images: one BoxList ("scores", "labels") per image,
    in the size of the identity transform (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST). `cfg` defaults
    to the global config, as in the original."""
    cfg = cfg or _global_cfg()
    aug = cfg.TEST.BBOX_AUG
    per_image: List[List[BoxList]] = [[] for _ in images]

    def add(boxlists: Sequence[BoxList]) -> None:
        for i, boxlist in enumerate(boxlists):
            # the first (identity) result fixes the size the others are mapped to
            per_image[i].append(boxlist if not per_image[i] else boxlist.resize(per_image[i][0].size))

    add(im_detect_bbox(model, images, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, device, cfg))
    if aug.H_FLIP:
        add(im_detect_bbox_hflip(model, images, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, device, cfg))
    for scale in aug.SCALES:
        add(im_detect_bbox_scale(model, images, scale, aug.MAX_SIZE, device, cfg=cfg))
        if aug.SCALE_H_FLIP:
            add(im_detect_bbox_scale(model, images, scale, aug.MAX_SIZE, device, hflip=True, cfg=cfg))

    post_processor = make_roi_box_post_processor(cfg)
    num_classes = cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES
    results = []
    for boxlists in per_image:
        merged = BoxList(
            torch.cat([b.convert("xyxy").bbox for b in boxlists]), boxlists[0].size, mode="xyxy"
        )
        merged.add_field("scores", torch.cat([b.get_field("scores") for b in boxlists]))
        results.append(post_processor.filter_results(merged, num_classes))
    return results
