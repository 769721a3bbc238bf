"""The kron benchmark suite runs end to end on tiny sizes and its checks catch errors.

Timings are not asserted (they belong in the benchmark); these tests run the suite's code
paths: the cells, the checks before timing, the table, the CSV and the target lines of
``python -m matkron bench kron``.
"""

import csv

import numpy as np
import pytest

from matkron._bench import cli, kron
from matkron._bench.suite import Config


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the sweep so that a --quick run takes well under a second."""
    monkeypatch.setattr(cli, "QUICK_DEFAULTS", (1, 1e-5, 0.25))  # samples of 10 µs
    monkeypatch.setattr(kron, "QUICK_SIZES", (4, 8))


def test_registered():
    assert cli.SUITES["kron"] == "matkron._bench.kron"
    assert kron.SUITE.name == "kron"


def test_run_rows_and_checks(tiny):
    # A memory cap between the dense matrices of n = 4 (2 KiB) and n = 8 (32 KiB).
    outcome = kron.SUITE.run(Config(quick=True, repeat=1, min_time=1e-5, mem_cap=2**14))
    keys = [column.key for column in outcome.columns]
    assert [(row["n"], row["m"], row["x"]) for row in outcome.rows] == [
        (n, m, x) for n in (4, 8) for m, x in ((1, "1-D"), (16, "C"), (16, "F"))]
    for row in outcome.rows:
        assert set(keys) <= set(row)
        assert row["kron_matvec_s"] > 0 and row["gemm_floor_s"] > 0
        assert row["kron_matvec/floor"] == row["kron_matvec_s"] / row["gemm_floor_s"]
        assert (row["naive_matvec_s"] is None) == (row["n"] == 8)
        assert (row["naive_matvec/kron_matvec"] is None) == (row["n"] == 8)
        assert row["kron_matvec_gflops"] == pytest.approx(
            4 * row["n"] ** 3 * row["m"] / row["kron_matvec_s"] / 1e9)
        assert row["kron_matvec_peak_pct"] > 0 and row["gemm_floor_peak_pct"] > 0
        assert row["kron_matvec_out_s"] > 0
    assert len(outcome.checks) == 10
    # No n >= 64 in the sweep, no dense matrix for n >= 8: those targets say so, unpassed.
    assert [outcome.checks[i].detail for i in (0, 1, 2, 5)] == ["not measured"] * 4
    assert not any(outcome.checks[i].passed for i in (0, 1, 2, 5))
    assert outcome.checks[3].detail.startswith("worst ")
    # Issue 9: every cell against the floor (new result, out=) and the vec trick measured;
    # no compute-bound n >= 128 here.
    assert all(outcome.checks[i].detail.startswith("worst ") for i in (6, 7, 8))
    assert outcome.checks[9].detail == "not measured"
    assert any(note.startswith("skipped      np.kron") for note in outcome.notes)


def test_command_line(tiny, tmp_path, capsys):
    csv_path = tmp_path / "kron.csv"
    status = cli.main(["bench", "kron", "--quick", "--check", "--repeat", "1",
                       "--mem-cap-gb", "0.001", "--csv",
                       str(csv_path), "--plot", str(tmp_path / "kron.png")])
    assert status == 0
    out = capsys.readouterr().out
    assert "kron suite" in out and "summary (" in out and "targets (" in out
    assert out.count("PASS  ") + out.count("MISS  ") == 10
    assert "FMA peak   " in out and "GFLOP/s float64" in out
    assert (tmp_path / "kron.png").stat().st_size > 0
    with csv_path.open() as f:
        table = list(csv.reader(f))
    assert table[0][:3] == ["n", "m", "x"] and len(table) == 1 + 6


@pytest.mark.parametrize("layout", kron.LAYOUTS)
def test_every_method_computes_the_product(layout):
    A, B = kron.factors(5)
    case = kron.Case(A, B, layout, np.kron(A, B))
    expected = np.kron(A, B) @ case.x
    for name, call in case.statements.items():
        if name != "gemm_floor":
            np.testing.assert_allclose(call(), expected, rtol=1e-12, atol=1e-12)
    if layout == "1-D":
        np.testing.assert_allclose(case.statements["gemm_floor"]().ravel(order="F"),
                                   expected, rtol=1e-12, atol=1e-12)


def test_check_catches_a_wrong_method():
    case = kron.Case(*kron.factors(4), "C")
    case.statements["kron_operator"] = lambda: 2 * (case.K @ case.x)
    with pytest.raises(RuntimeError, match="kron_operator does not compute"):
        case.check()
