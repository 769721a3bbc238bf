"""The spectral benchmark suite runs end to end on tiny sizes and its checks catch errors.

Timings are not asserted (they belong in the benchmark); these tests run the suite's code
paths: the cells, the checks before timing, the table, the CSV and the target lines of
``python -m matkron bench spectral``.
"""

import csv
import re

import numpy as np
import pytest

from matkron._bench import cli, spectral
from matkron._bench.suite import Config


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(spectral, "GP", {True: ((2, 5), (3, 3))})
    monkeypatch.setattr(spectral, "SYLVESTER", {True: (6,)})
    monkeypatch.setattr(spectral, "EXPM", {True: ((2, 5),)})


def test_registered():
    assert cli.SUITES["spectral"] == "matkron._bench.spectral"
    assert spectral.SUITE.name == "spectral"


def test_run_rows_and_checks(tiny):
    outcome = spectral.SUITE.run(Config(quick=True, repeat=1, min_time=1e-5, mem_cap=2**20))
    problems = [row["problem"] for row in outcome.rows]
    assert problems == ["GP 2×5", "GP 3×3", "sylvester general", "sylvester symmetric",
                        "lyapunov general", "lyapunov symmetric", "expm 1 t", "expm 10 t"]
    for row in outcome.rows:
        assert row["matkron_s"] > 0 and row["baseline_s"] > 0
        assert row["baseline/matkron"] == row["baseline_s"] / row["matkron_s"]
        assert float(row["error"]) <= 1e-8
    for row in outcome.rows[2:6]:
        assert row["second_s"] > 0
    assert len(outcome.checks) == 6


def test_command_line(tiny, tmp_path, capsys):
    csv_path = tmp_path / "spectral.csv"
    status = cli.main(["bench", "spectral", "--quick", "--check", "--repeat", "1", "--csv",
                       str(csv_path), "--plot", str(tmp_path / "spectral.png")])
    assert status == 0
    out = capsys.readouterr().out
    assert "spectral suite" in out and "targets (" in out
    with csv_path.open() as f:
        table = list(csv.reader(f))
    assert table[0][:3] == ["problem", "n", "unknowns"] and len(table) == 1 + 8


def test_checks_catch_wrong_results(monkeypatch):
    statements, check = spectral.sylvester_case("sylvester", "general", 5)
    statements["matkron"] = lambda: np.ones((5, 5))
    with pytest.raises(RuntimeError, match="residual"):
        check()
    statements, check = spectral.expm_case(2, 4, spectral.EXPM_T)
    statements["matkron"] = lambda: statements["baseline"]() * (1 + 1e-6)
    with pytest.raises(RuntimeError, match="relative difference"):
        check()


def test_targets_only_with_check(tiny, tmp_path, capsys):
    # By default the report ends with a summary of the ratios, without PASS/MISS.
    status = cli.main(["bench", "spectral", "--quick", "--repeat", "1", "--csv",
                       str(tmp_path / "s.csv"), "--plot", str(tmp_path / "s.png")])
    assert status == 0
    out = capsys.readouterr().out
    # Headers are padded to the widest (lin_op/mk appears only with linear_operator).
    assert "summary (" in out and re.search(r"base/mk +median", out)
    assert "targets (" not in out and "PASS  " not in out and "MISS  " not in out
