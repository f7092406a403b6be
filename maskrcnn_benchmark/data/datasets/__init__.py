"""Datasets: COCO-format data, PASCAL VOC (VOCdevkit layout) and Cityscapes (the gtFine polygons or
instanceIds images read directly, CityScapesDataset; or its COCO-format conversion from
tools/cityscapes/, the *_cocostyle catalog entries). Nothing optional (e.g. cityscapesscripts) is
imported here."""

from .abstract import AbstractDataset
from .cityscapes import CityScapesDataset
from .coco import COCODataset
from .concat_dataset import ConcatDataset
from .voc import PascalVOCDataset

__all__ = ["AbstractDataset", "CityScapesDataset", "COCODataset", "ConcatDataset", "PascalVOCDataset"]
