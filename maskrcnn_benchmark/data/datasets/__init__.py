"""Datasets. Only COCO-format data is built in (VOC and Cityscapes have *_cocostyle catalog
entries); nothing optional (e.g. cityscapesscripts) is imported here."""

from .coco import COCODataset
from .concat_dataset import ConcatDataset

__all__ = ["COCODataset", "ConcatDataset"]
