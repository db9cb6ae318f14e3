"""The examples in the public API's docstrings run, and give what they show (doctest)."""

from __future__ import annotations

import doctest
import importlib

import pytest

# Modules whose docstrings carry examples (the pages of the API reference link to them).
DOCUMENTED = (
    "darklens.citations",
    "darklens.simulate.api",
    "darklens.data.memory",
    "darklens.data.exchange",
    "darklens.data.torch_dataset",
    "darklens.lightning",
)


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} example(s) in {name} failed (see the output)"
