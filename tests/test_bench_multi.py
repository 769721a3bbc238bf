"""The multi benchmark suite runs end to end on tiny factors and its checks catch errors.

Timings are not asserted (they belong in the benchmark); these tests run the suite's code
paths: the cells, the checks against an einsum before timing, the floors, the table, the
CSV and the target lines of ``python -m matkron bench multi``. Peers are left out (they
are optional, and their imports take seconds).
"""

import csv

import numpy as np
import pytest

from matkron._bench import cli, multi
from matkron._bench.suite import Config

NO_PEERS = ({name: None for name in multi.PEER_NAMES},
            {name: "not installed (left out by the test)" for name in multi.PEER_NAMES})


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the sweep so that a --quick run takes well under a second, without peers."""
    monkeypatch.setattr(cli, "QUICK_DEFAULTS", (1, 1e-5, 0.25))  # samples of 10 µs
    monkeypatch.setattr(multi, "CASES", {"3^3": ((3, 3),) * 3, "2x5,4x3": ((2, 5), (4, 3))})
    monkeypatch.setattr(multi, "QUICK_CASES", ("3^3", "2x5,4x3"))
    monkeypatch.setattr(multi, "RHS", 2)
    monkeypatch.setattr(multi, "load_peers", lambda: NO_PEERS)


def test_registered():
    assert cli.SUITES["multi"] == "matkron._bench.multi"
    assert multi.SUITE.name == "multi" and multi.SUITE.one_cpu


def test_run_rows_and_checks(tiny):
    outcome = multi.SUITE.run(Config(quick=True, repeat=1, min_time=1e-5, mem_cap=2**20))
    keys = [column.key for column in outcome.columns]
    assert [(row["case"], row["m"], row["x"]) for row in outcome.rows] == [
        (case, m, x) for case in ("3^3", "2x5,4x3") for m, x in ((1, "1-D"), (2, "C"),
                                                                 (2, "F"))]
    for row in outcome.rows:
        assert set(keys) <= set(row)
        assert row["kron_matvec_s"] > 0 and row["dgemm_floor_s"] > 0
        assert row["kron_matvec/floor"] == row["kron_matvec_s"] / row["gemm_floor_s"]
        assert row["shuffle_s"] == row[f"shuffle_{row['shuffle_form']}_s"]
        assert all(row[f"{peer}_s"] is None for peer in multi.PEER_NAMES)
    # Without peers, the three floor targets, then issue 9's: the floor for a new result
    # and out=, the shuffle, and the FMA peak on compute-bound cells (3^3 with m = 2).
    assert len(outcome.checks) == 7
    assert all(check.detail.startswith("worst ") for check in outcome.checks)
    assert "3^3 (x C)" in outcome.checks[6].detail or "3^3 (x F)" in outcome.checks[6].detail
    assert all(row["kron_matvec_peak_pct"] > 0 for row in outcome.rows)


def test_command_line(tiny, tmp_path, capsys):
    csv_path = tmp_path / "multi.csv"
    status = cli.main(["bench", "multi", "--quick", "--check", "--repeat", "1", "--csv",
                       str(csv_path), "--plot", str(tmp_path / "multi.png")])
    assert status == 0
    out = capsys.readouterr().out
    assert "multi suite" in out and "summary (" in out and "targets (" in out
    assert out.count("PASS  ") + out.count("MISS  ") == 7
    with csv_path.open() as f:
        table = list(csv.reader(f))
    assert table[0][:3] == ["case", "m", "x"] and len(table) == 1 + 6


@pytest.mark.parametrize("layout", multi.LAYOUTS)
def test_methods_are_closures_computing_the_product(layout):
    case = multi.Case("8^5", layout, peers=False)
    expected = multi.reference(case.factors, case.x)
    for name, call in case.statements.items():
        assert callable(call)
        if name not in multi.FLOORS:
            np.testing.assert_allclose(np.asarray(call()).reshape(expected.shape), expected,
                                       rtol=1e-10, atol=1e-10, err_msg=name)


def test_check_catches_a_wrong_method():
    case = multi.Case("8^5", "C", peers=False)
    case.statements["kron_operator"] = lambda: 2 * (case.K @ case.x)
    with pytest.raises(RuntimeError, match="kron_operator does not compute"):
        case.check()
