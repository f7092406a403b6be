"""Model pieces: backbones, RPN, ROI heads, and the detector that combines them."""
