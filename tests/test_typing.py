"""matkron's annotations under ``mypy --strict``: typical calls pass, wrong calls are
reported (each with the line and the error code expected)."""

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the test extra")

CASES = Path(__file__).parent / "typing_cases"
EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))

# (line, error code) of each wrong call in wrong_calls.py.
EXPECTED_WRONG = {(8, "arg-type"), (9, "arg-type"), (10, "attr-defined"), (11, "arg-type"),
                  (12, "arg-type")}


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory):
    """mypy --strict over both case files in one run (the cache is the slow part)."""
    cache = tmp_path_factory.mktemp("mypy_cache")
    stdout, stderr, _ = mypy_api.run([
        # Errors inside matkron itself are not the users' (silent); its annotations are.
        "--strict", "--follow-imports=silent", "--cache-dir", str(cache), "--no-error-summary",
        "--show-error-codes", "--no-color-output",
        str(CASES / "typical_calls.py"), str(CASES / "wrong_calls.py"),
        *map(str, EXAMPLES),
    ])
    assert not stderr, stderr
    errors = {}
    for line in stdout.splitlines():
        if ": note: " in line:
            continue
        match = re.match(r"(.+?):(\d+): error: .*\[([a-z-]+)\]$", line)
        assert match, f"unexpected mypy output: {line}"
        errors.setdefault(Path(match[1]).name, set()).add((int(match[2]), match[3]))
    return errors, stdout


def test_typical_calls_pass_strict(mypy_report):
    errors, stdout = mypy_report
    assert "typical_calls.py" not in errors, stdout


def test_examples_pass_strict(mypy_report):
    errors, stdout = mypy_report
    assert EXAMPLES and not {name for name in errors if name != "wrong_calls.py"}, stdout


def test_wrong_calls_are_reported(mypy_report):
    errors, stdout = mypy_report
    assert errors.get("wrong_calls.py") == EXPECTED_WRONG, stdout
