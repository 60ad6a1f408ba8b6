"""``data_loaders`` is the data package: importing any of it must not import ``neuro``."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import data_loaders

ROOT = Path(__file__).resolve().parents[2]

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(data_loaders.__path__, prefix="data_loaders.")
    if not m.name.endswith("__main__")
)

# Imports every module, then lists what of neuro got imported along the way, and which
# data_loaders module pulled each one in first.
_PROBE = """
import importlib, json, sys
found = {}
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
    for mod in sys.modules:
        if (mod == "neuro" or mod.startswith("neuro.")) and mod not in found:
            found[mod] = name
print(json.dumps(found))
"""


def test_the_package_lists_its_modules():
    for expected in (
        "data_loaders.fmri.nifti",
        "data_loaders.fmri.geometry",
        "data_loaders.simulate.fmri",
        "data_loaders.stimuli",
        "data_loaders.calcium",
    ):
        assert expected in MODULES


def test_no_data_loaders_module_imports_neuro():
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(MODULES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert imported == {}, (
        f"data_loaders must not import neuro; imported (module: first importer): {imported}"
    )


def test_the_probe_sees_an_import_of_neuro():
    """The probe itself works: importing neuro is reported."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(["neuro.io"])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "neuro.io" in json.loads(result.stdout.strip().splitlines()[-1])
