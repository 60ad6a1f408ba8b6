#!/usr/bin/env bash
# Install PyTorch into the environment of the given python, choosing the build
# for this machine, before the package itself is installed (so that pip never
# resolves a bare `torch` requirement to a multi-GB CUDA build on a CPU-only box).
#
#   tools/install_torch.sh .venv/bin/python
#
# Environment:
#   TORCH_VERSION     version to install (default 2.13.0; empty = newest)
#   TORCH_INDEX_URL   a PyTorch wheel index to use instead of the automatic choice,
#                     e.g. https://download.pytorch.org/whl/cu126 for CUDA 12.6
#   NEURO_FORCE_CPU=1 install the CPU build even where a GPU is visible
set -euo pipefail
py=${1:?usage: install_torch.sh PYTHON}
version=${TORCH_VERSION-2.13.0}
spec=torch${version:+==$version}
pip=("$py" -m pip install --disable-pip-version-check -q)

if "$py" -c 'import torch' 2>/dev/null; then
    echo "torch $("$py" -c 'import torch; print(torch.__version__)') is already installed; keeping it."
    exit 0
fi

if [ -n "${TORCH_INDEX_URL:-}" ]; then
    echo "Installing $spec from $TORCH_INDEX_URL"
    "${pip[@]}" "$spec" --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple
    exit 0
fi

if [ -z "${NEURO_FORCE_CPU:-}" ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    # The default PyPI wheels for Linux are CUDA builds.
    echo "NVIDIA GPU found: installing the CUDA build of $spec from PyPI"
    "${pip[@]}" "$spec"
    exit 0
fi

if [ "$(uname -s)" = "Darwin" ]; then
    # PyPI's macOS wheels are CPU/MPS builds already.
    echo "macOS: installing $spec from PyPI (CPU and MPS)"
    "${pip[@]}" "$spec"
    exit 0
fi

# No GPU: a CPU wheel in pip's configured --find-links folders is used first,
# then PyTorch's CPU index.
if "${pip[@]}" --no-index --no-deps "$spec" 2>/dev/null; then
    echo "No GPU: installed the local CPU build of $spec; now its dependencies"
    "${pip[@]}" "$spec"
else
    echo "No GPU: installing the CPU build of $spec from https://download.pytorch.org/whl/cpu"
    "${pip[@]}" "$spec" --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
fi
"$py" -c 'import torch; print("installed torch", torch.__version__)'
