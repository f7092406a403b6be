"""Data structures shared by the whole library: BoxList, ImageList, SegmentationMask, Keypoints.

Import them from their modules (e.g. `maskrcnn_benchmark.structures.bounding_box`), as in the original.
"""
