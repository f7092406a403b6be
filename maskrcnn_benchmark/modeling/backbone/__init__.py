"""Backbones: ResNet/ResNeXt bodies (C4, C5) with optional FPN; `build_backbone(cfg)`."""

from .backbone import build_backbone

__all__ = ["build_backbone"]
