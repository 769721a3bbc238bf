"""The power benchmark suite runs end to end on tiny sizes and its checks catch errors.

Timings are not asserted (they belong in the benchmark); these tests run the suite's code
paths: the cells, the checks before timing, the quick run's caps, the table, the CSV and
the target lines of ``python -m matkron bench power``. JAX is left out (its compilation
takes seconds).
"""

import csv

import numpy as np
import pytest

import matkron
from matkron._bench import cli, power
from matkron._bench.suite import Config

CONFIG = Config(quick=True, repeat=1, min_time=1e-5, mem_cap=2**20)


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the sweep so that a --quick run takes well under a second, without JAX."""
    monkeypatch.setattr(cli, "QUICK_DEFAULTS", (1, 1e-5, 0.25))  # samples of 10 µs
    monkeypatch.setattr(power, "ORDERS", (3, 5))
    monkeypatch.setattr(power, "POWERS", {True: (2, 7)})
    monkeypatch.setattr(power, "_jax", lambda: None)


def test_registered():
    assert cli.SUITES["power"] == "matkron._bench.power"
    assert power.SUITE.name == "power" and power.SUITE.one_cpu


def test_run_rows_and_checks(tiny):
    outcome = power.SUITE.run(CONFIG)
    keys = [column.key for column in outcome.columns]
    assert [(row["A"], row["m"], row["n"]) for row in outcome.rows] == [
        (a, m, n) for a in ("general", "Hermitian") for m in (3, 5) for n in (2, 7)]
    for row in outcome.rows:
        assert set(keys) <= set(row)
        assert row["binary_s"] > 0 and row["auto_s"] > 0 and row["auto/best"] > 0
        assert row["jax_s"] is None and row["jax/auto"] is None
    general, hermitian = outcome.rows[0], outcome.rows[-1]
    assert general["explicit_build_s"] > 0 and general["dgemm_s"] > 0
    assert general["horner/binary"] == general["horner_s"] / general["binary_s"]
    assert hermitian["eig_s"] > 0 and hermitian["horner_s"] is None
    assert hermitian["binary/eig"] == hermitian["binary_s"] / hermitian["eig_s"]
    assert len(outcome.checks) == 5
    assert outcome.checks[0].detail.startswith("worst ")
    # No n = 1024, no JAX, no m = 256 here: those targets are not measured.
    assert [check.detail for check in outcome.checks[1:]] == ["not measured"] * 4
    assert any(note.startswith("skipped      JAX") for note in outcome.notes)


def test_quick_caps_skip_the_slow_methods(tiny, monkeypatch):
    monkeypatch.setattr(power, "QUICK_MAX_FLOPS", 0)
    monkeypatch.setattr(power, "QUICK_MAX_EXPLICIT", 0)
    row, skipped = power._measure_cell(3, 2, False, CONFIG, None)
    assert row["naive_s"] is None and row["horner_s"] is None
    assert row["explicit_matvec_s"] is None and row["binary_s"] > 0
    assert len(skipped) == 3 and all("with --quick" in reason for reason in skipped)


def test_command_line(tiny, tmp_path, capsys):
    csv_path = tmp_path / "power.csv"
    status = cli.main(["bench", "power", "--quick", "--check", "--repeat", "1", "--csv",
                       str(csv_path), "--plot", str(tmp_path / "power.png")])
    assert status == 0
    out = capsys.readouterr().out
    assert "power suite" in out and "summary (" in out and "targets (" in out
    assert out.count("PASS  ") + out.count("MISS  ") == 5
    with csv_path.open() as f:
        table = list(csv.reader(f))
    assert table[0][:3] == ["A", "m", "n"] and len(table) == 1 + 8


def test_explicit_matrix_is_the_jacobian():
    A, E = power.matrices(3, False)
    D = power.explicit_matrix(A, 4)
    J = matkron.power_jacobian(A, 4)
    np.testing.assert_allclose(D @ matkron.vec(E), J.matvec(matkron.vec(E)), rtol=1e-12,
                               atol=1e-14)
