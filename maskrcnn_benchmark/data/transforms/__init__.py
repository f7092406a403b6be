"""Transforms applied to (image, target) pairs."""

from .build import build_transforms
from .transforms import ColorJitter, Compose, Normalize, RandomHorizontalFlip, RandomVerticalFlip, Resize, ToTensor

__all__ = [
    "build_transforms",
    "Compose",
    "Resize",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "ColorJitter",
    "ToTensor",
    "Normalize",
]
