"""`build_detection_model(cfg)`: the detector described by a config."""

from .detectors import build_detection_model

__all__ = ["build_detection_model"]
