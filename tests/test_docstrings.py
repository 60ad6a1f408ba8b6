"""The examples in public docstrings run and print what they say."""

import doctest
import importlib
import pkgutil

import pytest

import data_loaders
import neuro

MODULES = sorted(
    m.name
    for pkg in (neuro, data_loaders)
    for m in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + ".")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
