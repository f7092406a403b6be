"""The original's layers._utils: `_C` (the compiled ops) and `_load_C_extensions()`, which builds
them just in time from the csrc/ sources of a source checkout (torch.utils.cpp_extension.load).

Importing this module does not compile anything: `_C` is the extension built by setup.py.
"""

import glob
import os

import torch

from .. import _C  # noqa: F401  (registers torch.ops.maskrcnn_benchmark.*)

CSRC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "csrc")


def _load_C_extensions(csrc_dir: str = CSRC_DIR):  # noqa: N802 (the original's name)
    """Compile csrc/ (CPU sources, plus CUDA ones when a GPU and toolkit are present) into a module
    of its own and return it. Needs a source checkout; pip-installed packages have no csrc/."""
    from torch.utils.cpp_extension import CUDA_HOME, load

    main_files = glob.glob(os.path.join(csrc_dir, "*.cpp"))
    if not main_files:
        raise FileNotFoundError(f"no C++ sources in {csrc_dir!r}: just-in-time builds need a source checkout")
    sources = main_files + glob.glob(os.path.join(csrc_dir, "cpu", "*.cpp"))
    extra_cflags = ["-O3", "-fopenmp"]
    if torch.cuda.is_available() and CUDA_HOME is not None:
        sources += glob.glob(os.path.join(csrc_dir, "cuda", "*.cu"))
        extra_cflags.append("-DWITH_CUDA")
    return load(
        "maskrcnn_benchmark_jit_C",
        sorted(sources),
        extra_cflags=extra_cflags,
        extra_ldflags=["-fopenmp"],
        extra_include_paths=[csrc_dir],
    )
