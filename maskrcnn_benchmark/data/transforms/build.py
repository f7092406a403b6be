"""The training / test transform pipelines from the config (docs/CONVENTIONS.md#input-transforms)."""

from typing import Optional, Sequence, Union

from ...config import CfgNode
from . import transforms as T


def build_transforms(
    cfg: CfgNode,
    is_train: bool = True,
    *,
    min_size: Union[None, int, Sequence[int]] = None,
    max_size: Optional[int] = None,
    horizontal_flip_prob: Optional[float] = None,
) -> T.Compose:
    """Train: ColorJitter -> Resize(MIN_SIZE_TRAIN, MAX_SIZE_TRAIN) -> flips -> ToTensor -> Normalize.
    Test: Resize(MIN_SIZE_TEST, MAX_SIZE_TEST) -> ToTensor -> Normalize.

    `min_size`, `max_size` and `horizontal_flip_prob` replace the config's values when given (the
    other views of test-time augmentation: engine/bbox_aug.py)."""
    inp = cfg.INPUT
    if is_train:
        min_size_cfg, max_size_cfg = inp.MIN_SIZE_TRAIN, inp.MAX_SIZE_TRAIN
        flip_h, flip_v = inp.HORIZONTAL_FLIP_PROB_TRAIN, inp.VERTICAL_FLIP_PROB_TRAIN
        brightness, contrast, saturation, hue = inp.BRIGHTNESS, inp.CONTRAST, inp.SATURATION, inp.HUE
    else:
        min_size_cfg, max_size_cfg = inp.MIN_SIZE_TEST, inp.MAX_SIZE_TEST
        flip_h = flip_v = 0.0
        brightness = contrast = saturation = hue = 0.0
    min_size = min_size_cfg if min_size is None else min_size
    max_size = max_size_cfg if max_size is None else max_size
    flip_h = flip_h if horizontal_flip_prob is None else horizontal_flip_prob
    return T.Compose(
        [
            T.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue),
            T.Resize(min_size, max_size),
            T.RandomHorizontalFlip(flip_h),
            T.RandomVerticalFlip(flip_v),
            T.ToTensor(),
            T.Normalize(mean=inp.PIXEL_MEAN, std=inp.PIXEL_STD, to_bgr255=inp.TO_BGR255),
        ]
    )
