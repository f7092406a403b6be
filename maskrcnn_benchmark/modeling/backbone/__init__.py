"""Backbones: ResNet/ResNeXt bodies (C4, C5) with optional FPN, and FBNet; `build_backbone(cfg)`."""

from . import fbnet  # noqa: F401  (registers the FBNet body and its RPN / RoI heads)
from .backbone import build_backbone

__all__ = ["build_backbone"]
