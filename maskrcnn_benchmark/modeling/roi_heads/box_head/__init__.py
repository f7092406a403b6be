"""Box head: RoI features -> class scores and class-specific box deltas."""
