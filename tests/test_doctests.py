"""The examples in the package's docstrings run, and give what they show.

Each module with examples is run through :mod:`doctest`; one whose examples are all skipped
(they fit UMAP or write a whole run: :func:`personas.pipeline.run`) is still imported and
parsed. None of these examples fits UMAP, so none is ``slow``.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "personas",
    "personas.load.stage",
    "personas.features",
    "personas.migration",
    "personas.model",
    "personas.pipeline",
    "personas.profile",
    "personas.progress",
    "personas.results",
    "personas.sample",
    "personas.worlds",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
    examples = sum(len(t.examples) for t in doctest.DocTestFinder().find(module))
    assert examples > 0, f"{name} has no examples: drop it from MODULES"
