"""Data: datasets, transforms, samplers and batch collation."""
