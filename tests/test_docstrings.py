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


@pytest.mark.parametrize(
    "owner, name",
    [(matkron.ChainPlan, name) for name in ("dims", "k", "cost", "method", "tree",
                                            "left_to_right_cost", "right_to_left_cost")]
    + [(matkron.SumOfKronOperator, "terms")],
)
def test_public_properties_are_documented(owner, name):
    # Properties show in help() and the API docs like methods: each says what it is and
    # shows it in a runnable example (run by test_examples).
    doc = getattr(owner, name).__doc__
    assert doc and "Examples\n" in doc and ">>> " in doc, f"{owner.__name__}.{name}"
