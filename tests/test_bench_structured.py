"""The structured benchmark suite runs end to end on tiny sizes and its checks catch errors.

Timings are not asserted (they belong in the benchmark); these tests only run the suite's
code paths: the cell definitions, the correctness checks before timing, the table, the CSV
and the target lines of ``python -m matkron bench structured``.
"""

import csv

import numpy as np
import pytest

from matkron._bench import cli, structured
from matkron._bench.suite import Config


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the suite's sizes so that a --quick run takes well under a second."""
    monkeypatch.setattr(structured, "POISSON", {True: ((2, 8), (3, 4)), False: ((2, 8),)})
    monkeypatch.setattr(structured, "FACTORS", (("diagonal", 4), ("operator", 3)))
    monkeypatch.setattr(structured, "RHS", 2)


def test_registered():
    assert cli.SUITES["structured"] == "matkron._bench.structured"
    assert structured.SUITE.name == "structured"


def test_run_rows_and_checks(tiny):
    config = Config(quick=True, repeat=1, min_time=1e-5, mem_cap=2**20)
    outcome = structured.SUITE.run(config)
    keys = [column.key for column in outcome.columns]
    assert [(row["problem"], row["size"], row["m"]) for row in outcome.rows] == [
        ("2-D Poisson", 8, 1), ("3-D Poisson", 4, 1),
        ("diag(d)⊗B", 4, 1), ("diag(d)⊗B", 4, 2), ("LinOp(A)⊗B", 3, 1), ("LinOp(A)⊗B", 3, 2),
    ]
    for row in outcome.rows:
        assert set(keys) <= set(row)
        assert row["matkron_s"] > 0 and row["dense_factors_s"] > 0
    for row in outcome.rows[:2]:
        assert row["cg_matkron_iters"] == row["cg_csr_iters"] > 0
        assert row["csr/matkron"] == row["csr_s"] / row["matkron_s"]
    assert len(outcome.checks) == 3


def test_command_line(tiny, tmp_path, capsys):
    csv_path = tmp_path / "structured.csv"
    status = cli.main(["bench", "structured", "--quick", "--check", "--repeat", "1", "--csv",
                       str(csv_path), "--plot", str(tmp_path / "structured.png")])
    assert status == 0
    out = capsys.readouterr().out
    assert "structured suite" in out and "targets (" in out
    assert out.count("PASS  ") + out.count("MISS  ") == 3
    with csv_path.open() as f:
        table = list(csv.reader(f))
    assert table[0][:3] == ["problem", "size", "unknowns"] and len(table) == 1 + 6


def test_check_catches_a_wrong_matvec():
    case = structured.PoissonCase(2, 5, dense=False)
    case.statements["matkron"] = lambda: case.C @ case.x + 1e-6 * np.abs(case.x)
    with pytest.raises(RuntimeError, match="matkron does not compute"):
        case.check()


def test_check_catches_a_wrong_factor_product():
    case = structured.FactorCase("diagonal", 4, 1)
    case.statements["matkron"] = lambda: case.Kd @ (2 * case.x)
    with pytest.raises(RuntimeError, match="matkron does not compute"):
        case.check()

