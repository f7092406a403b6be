"""RetinaNet: a one-stage detector on P3-P7 that takes the place of the RPN (MODEL.RETINANET_ON)."""

from .retinanet import RetinaNetHead, RetinaNetModule, build_retinanet

__all__ = ["RetinaNetHead", "RetinaNetModule", "build_retinanet"]
