"""The user guide's examples run and print what the pages show.

Each page of docs/user_guide checks the identity it derives with a few lines of NumPy; they
run here as doctests, as tests/test_docstrings.py runs the docstrings'. Building the HTML
is not a test: `.ci/run` does it with Sphinx (`-W`, no warnings).
"""

import doctest
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "user_guide"
PAGES = sorted(GUIDE.glob("*.rst"))


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_user_guide_examples(page):
    results = doctest.testfile(
        str(page),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        report=True,
        verbose=False,
    )
    assert results.failed == 0, f"{results.failed} example(s) of {page.name} failed"


def test_user_guide_pages_found():
    if not GUIDE.is_dir():
        pytest.skip("no docs/ beside these tests (run from a source checkout)")
    assert len(PAGES) >= 5, f"docs/user_guide has {len(PAGES)} pages"
