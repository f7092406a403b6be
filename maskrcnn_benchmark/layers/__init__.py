"""Layers and compiled ops (the original's `maskrcnn_benchmark.layers`).

Importing this package loads `maskrcnn_benchmark._C`, which registers the ops under
`torch.ops.maskrcnn_benchmark`, and registers their autograd formulas and fake kernels.
"""
