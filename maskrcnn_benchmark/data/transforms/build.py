"""The training / test transform pipelines from the config (REFERENCE.md 9.1)."""
from . import transforms as T


def build_transforms(cfg, is_train: bool = True) -> T.Compose:
    """Train: ColorJitter -> Resize(MIN_SIZE_TRAIN, MAX_SIZE_TRAIN) -> flips -> ToTensor -> Normalize.
    Test: Resize(MIN_SIZE_TEST, MAX_SIZE_TEST) -> ToTensor -> Normalize."""
    inp = cfg.INPUT
    if is_train:
        min_size, max_size = inp.MIN_SIZE_TRAIN, inp.MAX_SIZE_TRAIN
        flip_h, flip_v = inp.HORIZONTAL_FLIP_PROB_TRAIN, inp.VERTICAL_FLIP_PROB_TRAIN
        brightness, contrast, saturation, hue = inp.BRIGHTNESS, inp.CONTRAST, inp.SATURATION, inp.HUE
    else:
        min_size, max_size = inp.MIN_SIZE_TEST, inp.MAX_SIZE_TEST
        flip_h = flip_v = 0.0
        brightness = contrast = saturation = hue = 0.0
    return T.Compose([
        T.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue),
        T.Resize(min_size, max_size),
        T.RandomHorizontalFlip(flip_h),
        T.RandomVerticalFlip(flip_v),
        T.ToTensor(),
        T.Normalize(mean=inp.PIXEL_MEAN, std=inp.PIXEL_STD, to_bgr255=inp.TO_BGR255),
    ])
