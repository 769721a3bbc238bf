"""The Examples sections of every matkron module run and print what they show.

Each example runs in a copy of its module's namespace, as with pytest --doctest-modules.
"""

import doctest
import importlib
import pkgutil

import pytest

import matkron

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(matkron.__path__, prefix="matkron.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    for test in finder.find(module, name):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} docstring example(s) of {name} failed"
