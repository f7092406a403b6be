"""Data: datasets, transforms, samplers and batch collation."""

from .build import make_data_loader

__all__ = ["make_data_loader"]
