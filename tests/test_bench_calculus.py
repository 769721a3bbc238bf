"""The calculus benchmark suite runs end to end on tiny sizes and its checks catch errors.

Timings are not asserted (they belong in the benchmark); these tests only run the suite's
code paths: the sections, the correctness checks before timing, the table, the CSV and the
target lines of ``python -m matkron bench calculus``.
"""

import csv

import numpy as np
import pytest

from matkron._bench import calculus, cli
from matkron._bench.suite import Config


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the suite's sizes so that a --quick run takes a second or two."""
    monkeypatch.setattr(calculus, "COND_ORDERS", {True: (3, 4)})
    monkeypatch.setattr(calculus, "EXPM_ORDERS", {True: (5,)})
    monkeypatch.setattr(calculus, "DIRECTIONS", {True: 2})
    monkeypatch.setattr(calculus, "SQRTM_ORDER", {True: 6})
    monkeypatch.setattr(calculus, "POWER_ORDERS", {True: (3,)})
    monkeypatch.setattr(calculus, "POWER_EXPONENTS", {True: (2, 5)})
    monkeypatch.setattr(calculus, "_jax", lambda: None)  # JAX's compiles take seconds
    monkeypatch.setattr(calculus.chain_section, "CASES", {True: (
        ("tiny chain", [("dense", 4, 3), ("diag", 4), ("dense", 2, 4)]),)})


def test_registered():
    assert cli.SUITES["calculus"] == "matkron._bench.calculus"
    assert calculus.SUITE.name == "calculus"


def test_run_rows_and_checks(tiny):
    config = Config(quick=True, repeat=1, min_time=1e-5, mem_cap=2**20)
    outcome = calculus.SUITE.run(config)
    assert [(row["section"], row["m"], row["k"]) for row in outcome.rows] == [
        ("cond expm", 3, None), ("cond expm", 4, None),
        ("frechet expm", 5, 1), ("frechet expm", 5, 2), ("frechet sqrtm", 6, 2),
        ("frechet_power", 3, 2), ("frechet_power", 3, 5),
    ]
    keys = {column.key for column in outcome.columns}
    for row in outcome.rows:
        assert keys <= set(row) and row["matkron_s"] > 0
        assert row["jax_s"] is None  # JAX switched off
    for row in outcome.rows[:2]:
        assert row["rel_diff"] <= 1e-3
        assert row["scipy/matkron"] == row["scipy_s"] / row["matkron_s"]
    assert len(outcome.checks) == 9
    assert any("jacobian_chain" in note for note in outcome.notes)
    assert any("tiny chain" in note for note in outcome.notes)


def test_scipy_cond_skipped_over_budget(tiny, monkeypatch):
    monkeypatch.setattr(calculus, "SCIPY_COND_BUDGET_S", {True: 0.0})
    outcome = calculus.SUITE.run(Config(quick=True, repeat=1, min_time=1e-5, mem_cap=2**20))
    first, second = outcome.rows[:2]
    assert first["scipy_s"] is not None and second["scipy_s"] is None
    assert any("skipped      scipy.linalg.expm_cond at m=4" in n for n in outcome.notes)


def test_command_line(tiny, tmp_path, capsys):
    csv_path = tmp_path / "calculus.csv"
    status = cli.main(["bench", "calculus", "--quick", "--check", "--repeat", "1", "--csv",
                       str(csv_path), "--plot", str(tmp_path / "calculus.png")])
    assert status == 0
    out = capsys.readouterr().out
    assert "calculus suite" in out and "targets (" in out
    assert out.count("PASS  ") + out.count("MISS  ") == 9
    with csv_path.open() as f:
        table = list(csv.reader(f))
    assert table[0][:3] == ["section", "m", "k"] and len(table) == 1 + 7


def test_check_catches_a_wrong_result():
    with pytest.raises(RuntimeError, match="matkron does not compute L_exp"):
        calculus._close(np.ones(3), np.ones(3) + 1e-6, what="L_exp")
