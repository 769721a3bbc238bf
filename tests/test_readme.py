"""The README's example runs as written (it is the user's first page)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs(capsys):
    text = README.read_text(encoding="utf-8")
    code = re.search(r"## Example\n\n```python\n(.*?)```", text, re.DOTALL).group(1)
    exec(compile(code, str(README), "exec"), {})  # noqa: S102 (the README, as a user runs it)
    assert "((M0 M1) M2) 7500" in capsys.readouterr().out


def test_readme_dask_example_runs(capsys):
    # "Beyond one machine": a LocalCluster of two processes on the loopback interface.
    text = README.read_text(encoding="utf-8")
    code = re.search(r"## Beyond one machine\n.*?```python\n(.*?)```", text,
                     re.DOTALL).group(1)
    exec(compile(code, str(README), "exec"), {"__name__": "__main__"})  # noqa: S102
    assert capsys.readouterr().out.split() == ["True", "True"]
