"""Keypoint head: per-RoI heat maps (one per keypoint), targets, loss and decoding."""
