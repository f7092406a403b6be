"""Build and install maskrcnn_benchmark and its compiled ops (`maskrcnn_benchmark._C`).

C++ sources (csrc/*.cpp, csrc/cpu/*.cpp) are always built. CUDA sources (csrc/cuda/*.cu) are
added when a CUDA toolkit is found and either a GPU is visible or FORCE_CUDA=1 is set.
TORCH_CUDA_ARCH_LIST selects the GPU architectures (torch's own handling); MAX_JOBS limits ninja.

Users who bring their own torch: `pip install -e . --no-build-isolation`.
"""

import glob
import os
import shutil

from setuptools import find_packages, setup


def _locate_cuda_home() -> None:
    """Point CUDA_HOME at a real toolkit folder when it is not set.

    torch guesses the toolkit from the `nvcc` on PATH; when that is a wrapper script (as in
    /usr/local/bin/nvcc -> /usr/local/cuda-13.0/bin/nvcc) the guess has no headers or libraries.
    """
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH"):
        return
    nvcc = shutil.which("nvcc")
    candidates = [os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))] if nvcc else []
    candidates.append("/usr/local/cuda")
    for home in candidates:
        if os.path.isfile(os.path.join(home, "include", "cuda_runtime.h")):
            os.environ["CUDA_HOME"] = home
            return


_locate_cuda_home()

import torch  # noqa: E402
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension  # noqa: E402

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join("csrc")


def _want_cuda() -> bool:
    if CUDA_HOME is None:
        return False
    return torch.cuda.is_available() or os.environ.get("FORCE_CUDA", "0") == "1"


def get_extensions():
    cpp_sources = sorted(glob.glob(os.path.join(CSRC, "*.cpp")) + glob.glob(os.path.join(CSRC, "cpu", "*.cpp")))
    cuda_sources = sorted(glob.glob(os.path.join(CSRC, "cuda", "*.cu")))
    headers = sorted(glob.glob(os.path.join(CSRC, "**", "*.h"), recursive=True))

    # -fopenmp: ATen's at::parallel_for only runs in parallel when the caller is compiled with OpenMP
    # (torch's CPU backend here is OpenMP); the extension then shares torch's own libgomp.
    cxx_flags = ["-O3", "-fopenmp"]
    define_macros = []
    extension = CppExtension
    sources = cpp_sources
    extra_compile_args = {"cxx": cxx_flags}
    if _want_cuda():
        extension = CUDAExtension
        sources = cpp_sources + cuda_sources
        define_macros.append(("WITH_CUDA", None))
        extra_compile_args["nvcc"] = [
            "-O3",
            "--expt-relaxed-constexpr",
            "-D__CUDA_NO_HALF_OPERATORS__",
            "-D__CUDA_NO_HALF_CONVERSIONS__",
            "-D__CUDA_NO_HALF2_OPERATORS__",
        ]
    return [
        extension(
            "maskrcnn_benchmark._C",
            sources,
            include_dirs=[os.path.join(ROOT, CSRC)],
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
            extra_link_args=["-fopenmp"],
            depends=headers,
        )
    ]


setup(
    name="maskrcnn_benchmark",
    version="0.2.0",
    description="Faster R-CNN, Mask R-CNN and Keypoint R-CNN in PyTorch, compatible with maskrcnn-benchmark",
    packages=find_packages(exclude=("configs", "tests", "tests.*", "benchmarks", "tools")),
    python_requires=">=3.9",
    install_requires=["yacs>=0.1.8", "numpy", "pillow", "pycocotools>=2.0.7", "faster-coco-eval>=1.8.0", "tqdm"],
    # tools/export_model.py --format onnx and maskrcnn_benchmark.deploy's ONNX functions (docs/DEPLOY.md).
    extras_require={"export": ["onnx>=1.23", "onnxruntime>=1.32", "onnxscript>=0.7"]},
    # `make build` compiles the ops in place first and then sets this for its editable install, which
    # would otherwise compile everything a second time in a temporary folder.
    ext_modules=[] if os.environ.get("MASKRCNN_SKIP_EXTENSIONS") == "1" else get_extensions(),
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
