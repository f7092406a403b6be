# Two commands do everything on a fresh machine:
#   make test   set-up (virtual env, pinned torch, deps, compiled ops), then the whole test suite
#   make demo   set-up, then train + evaluate on the embedded synthetic dataset (arrives with training)
# A second run skips what is already done.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deps-installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
MAX_JOBS ?= 2
export MAX_JOBS

.PHONY: setup build test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS) -r requirements.txt
	@touch $(STAMP)

# Compiles maskrcnn_benchmark._C in place (ninja: only what changed) and makes the package importable
# from the virtual environment (editable install, done once).
build: $(STAMP)
	@mkdir -p build
	flock build/.lock $(PY) setup.py --quiet build_ext --inplace
	@test -f $(VENV)/.editable || ($(PY) -m pip install --quiet --no-build-isolation --no-deps -e . && touch $(VENV)/.editable)

test: build
	$(PY) -m pytest -q tests

bench: build
	$(PY) benchmarks/ops.py

clean:
	rm -rf build maskrcnn_benchmark/_C*.so
