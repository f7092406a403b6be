"""Datasets: COCO-format data and PASCAL VOC (VOCdevkit layout). Cityscapes is read through its
COCO-format conversion (tools/cityscapes/, the *_cocostyle catalog entries); nothing optional (e.g.
cityscapesscripts) is imported here."""

from .coco import COCODataset
from .concat_dataset import ConcatDataset
from .voc import PascalVOCDataset

__all__ = ["COCODataset", "ConcatDataset", "PascalVOCDataset"]
