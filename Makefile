# `make demo` and `make test` each set everything up from nothing (a `.venv`,
# torch for this machine, the package with its extras), then run.
# Variables you may override: PYTHON, VENV, TORCH_VERSION, TORCH_INDEX_URL,
# PYTEST_ARGS, OUT.

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_INDEX_URL ?=
EXTRAS ?= dev,notebooks,backbones,3d
PYTEST_ARGS ?=
OUT ?= runs/demo

PY := $(VENV)/bin/python
STAMP := $(VENV)/.neuro-installed

.PHONY: setup demo test test-all lint format notebooks clean bench gpu-check

setup: $(STAMP)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "neuro needs Python >= 3.10; this is " + sys.version.split()[0] + ". Run make with PYTHON=/path/to/python3.10+")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml tools/install_torch.sh | $(PY)
	TORCH_VERSION="$(TORCH_VERSION)" TORCH_INDEX_URL="$(TORCH_INDEX_URL)" bash tools/install_torch.sh "$(PY)"
	$(PY) -m pip install --disable-pip-version-check -q -e ".[$(EXTRAS)]"
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/neuro demo --out $(OUT) --overwrite

test: $(STAMP)
	$(PY) -m pytest -n auto $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -n auto -m "slow or not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Runs every tutorial at full size and writes it, outputs and figures included,
# to notebooks/<name>.ipynb (git-ignored); exits non-zero if any tutorial fails.
notebooks: $(STAMP)
	$(PY) tools/build_notebooks.py

# every benchmark at its real size (long on a CPU), numpy's OpenBLAS at its best kernel,
# with the optional peers (the bench extra: tensortools)
bench: $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -e ".[$(EXTRAS),bench]"
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/run_all.py $(BENCH_ARGS)

# the GPU tests and every benchmark on CUDA (< 8 min on one H200); stops at once without CUDA
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
