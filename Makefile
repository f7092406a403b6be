# Two commands do everything on a fresh machine:
#   make test   set-up (virtual env, pinned torch, deps, compiled ops), then the whole test suite
#   make demo   set-up, then generate the synthetic dataset, train a CPU-sized Mask R-CNN on it,
#               evaluate it (COCO AP) and draw its predictions (output/demo/)
# A second run skips what is already done.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deps-installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
MAX_JOBS ?= 2
export MAX_JOBS

.PHONY: setup build test demo bench lint format clean

setup: $(STAMP)

# requirements-export.txt: the optional ONNX export dependencies, which the tests use.
$(STAMP): requirements.txt requirements-export.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS) -r requirements.txt -r requirements-export.txt
	@touch $(STAMP)

# Compiles maskrcnn_benchmark._C in place (ninja: only what changed) and makes the package importable
# from the virtual environment (editable install, done once).
build: $(STAMP)
	@mkdir -p build
	flock build/.lock $(PY) setup.py --quiet build_ext --inplace
	@test -f $(VENV)/.editable || (MASKRCNN_SKIP_EXTENSIONS=1 $(PY) -m pip install --quiet --no-build-isolation --no-deps -e . && touch $(VENV)/.editable)

test: build
	$(PY) -m pytest -q tests

demo: build
	$(PY) tools/run_demo.py

# Style: ruff (Python lint + format, pyproject.toml) and clang-format (csrc/, .clang-format), pinned in
# requirements-lint.txt. `make lint` checks and changes nothing; `make format` applies both.
LINT_STAMP  := $(VENV)/.lint-installed
CSRC_FILES   = $(shell find csrc -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh')

$(LINT_STAMP): requirements-lint.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-lint.txt
	@touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/clang-format --dry-run --Werror $(CSRC_FILES)

format: $(LINT_STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/clang-format -i $(CSRC_FILES)

bench: build
	$(PY) benchmarks/ops.py

clean:
	rm -rf build maskrcnn_benchmark/_C*.so
