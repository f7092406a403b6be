"""maskrcnn_benchmark: Faster / Mask / Keypoint R-CNN, RetinaNet and friends on PyTorch.

torch is imported first because the compiled ops (maskrcnn_benchmark._C) link against its shared
libraries (libc10.so, libtorch*.so), which the dynamic loader only finds once torch is loaded;
every part of the package needs torch anyway.
"""

import torch  # noqa: F401
