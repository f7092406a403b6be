"""Deformable convolution and deformable RoI pooling at the original's import paths
(`maskrcnn_benchmark.layers.dcn.deform_conv_func`, `.deform_conv_module`, `.deform_pool_func`,
`.deform_pool_module`). The convolutions are implemented in `maskrcnn_benchmark/layers/deform_conv.py`."""
