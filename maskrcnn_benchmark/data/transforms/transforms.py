"""Image + target transforms. Each is called as t(image, target) -> (image, target); `target` (a
BoxList with its fields) may be None at test time. Images are PIL images until ToTensor, then
[3, H, W] float tensors."""

import random
from typing import Optional, Sequence, Tuple, Union

import torch
import torchvision.transforms as T
from torchvision.transforms import functional as TF

from ...structures.bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM


def _width_height(image) -> Tuple[int, int]:
    """(width, height) of a PIL image or a [..., H, W] tensor."""
    if isinstance(image, torch.Tensor):
        return image.shape[-1], image.shape[-2]
    return image.size


class Compose:
    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, image, target=None):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t}" for t in self.transforms)
        return f"{self.__class__.__name__}({inner}\n)"


class Resize:
    """Scale so the short side is min_size (drawn at random from a tuple per call) unless that makes
    the long side exceed max_size, in which case the long side becomes ~max_size."""

    def __init__(self, min_size: Union[int, Sequence[int]], max_size: int):
        self.min_size = (min_size,) if isinstance(min_size, int) else tuple(min_size)
        self.max_size = max_size

    def get_size(self, image_size: Tuple[int, int]) -> Tuple[int, int]:
        """(height, width) for an image of (width, height) image_size (the original's rounding)."""
        w, h = image_size
        size = random.choice(self.min_size)
        max_size = self.max_size
        if max_size is not None:
            min_original, max_original = float(min(w, h)), float(max(w, h))
            if max_original / min_original * size > max_size:
                size = int(round(max_size * min_original / max_original))
        if (w <= h and w == size) or (h <= w and h == size):
            return h, w
        if w < h:
            return int(size * h / w), size
        return size, int(size * w / h)

    def __call__(self, image, target=None):
        image = TF.resize(image, list(self.get_size(_width_height(image))))
        if target is not None:
            target = target.resize(_width_height(image))
        return image, target


class RandomHorizontalFlip:
    def __init__(self, prob: float = 0.5):
        self.prob = prob

    def __call__(self, image, target=None):
        if random.random() < self.prob:
            image = TF.hflip(image)
            if target is not None:
                target = target.transpose(FLIP_LEFT_RIGHT)
        return image, target


class RandomVerticalFlip:
    def __init__(self, prob: float = 0.5):
        self.prob = prob

    def __call__(self, image, target=None):
        if random.random() < self.prob:
            image = TF.vflip(image)
            if target is not None:
                target = target.transpose(FLIP_TOP_BOTTOM)
        return image, target


class ColorJitter:
    """torchvision's ColorJitter on the image; the target is unchanged."""

    def __init__(self, brightness=None, contrast=None, saturation=None, hue=None):
        self.color_jitter = T.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)

    def __call__(self, image, target=None):
        return self.color_jitter(image), target


class ToTensor:
    """PIL image -> [3, H, W] float tensor in [0, 1] (RGB)."""

    def __call__(self, image, target=None):
        return TF.to_tensor(image), target


class Normalize:
    """(image - mean) / std; with to_bgr255 the RGB [0, 1] image first becomes BGR [0, 255]
    (the Caffe2 convention the original's weights expect)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], to_bgr255: bool = True):
        self.mean = list(mean)
        self.std = list(std)
        self.to_bgr255 = to_bgr255

    def __call__(self, image: torch.Tensor, target: Optional[object] = None):
        if self.to_bgr255:
            image = image[[2, 1, 0]] * 255
        image = TF.normalize(image, mean=self.mean, std=self.std)
        return image, target
