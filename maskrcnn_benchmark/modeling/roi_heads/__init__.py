"""Per-RoI heads: box classification/regression, masks, keypoints."""
