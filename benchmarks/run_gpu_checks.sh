#!/usr/bin/env bash
# Everything we check on a lent GPU machine, in one go (its Python already holds torch/torchvision):
# build the CUDA ops for that GPU, run the op tests (CUDA cases included), the GPU benchmark, the
# model-zoo table, then the whole suite. Logs go to $OUT (or ./gpu_logs). Wheels of missing
# pure/binary packages may be put in .whl/ beforehand (yacs, pycocotools; zoo.py also needs OpenCV).
set -o pipefail
OUT=${OUT:-gpu_logs}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-16}
# The lent machines' default /opt/gcc/bin/g++ links its own libstdc++ into the extension, which then
# crashes formatting error messages next to torch's libstdc++: build with the system compilers.
if [ -x /usr/bin/g++ ]; then export CC=/usr/bin/gcc CXX=/usr/bin/g++; fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda)"
start=$(date +%s)
python3 setup.py -q build_ext --inplace > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/layers 2>&1 | tee "$OUT/layers.log" | tail -25
timeout 200 python3 benchmarks/gpu.py --repeats 20 2>&1 | tee "$OUT/gpu_bench.log"
timeout 120 python3 benchmarks/syncs.py --device cuda 2>&1 | tee "$OUT/syncs.log"
# The model-zoo table (9 configs + torchvision's 3; float32, bfloat16, compiled): about 7 minutes of
# the device's time, so ZOO=0 leaves it out (one command on a lent machine may run 10 minutes at most).
if [ "${ZOO:-1}" != 0 ]; then
  timeout 540 python3 benchmarks/zoo.py --compile --budget-s 400 --json "$OUT/zoo.json" 2>&1 | tee "$OUT/zoo.log"
fi
timeout 150 python3 -m pytest -q -p no:cacheprovider -x --ignore=tests/layers tests 2>&1 | tee "$OUT/suite.log" | tail -15
