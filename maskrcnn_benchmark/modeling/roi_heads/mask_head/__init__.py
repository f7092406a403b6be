"""Mask head: per-RoI, per-class mask logits; targets, loss and pasting into the image."""
