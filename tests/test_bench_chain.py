"""The chain benchmark suite runs end to end on tiny chains and its checks catch errors.

Timings are not asserted (they belong in the benchmark); these tests run the suite's code
paths: the plan and multi_dot rows, the checks before timing, the table, the CSV and the
target lines of ``python -m matkron bench chain``.
"""

import csv

import numpy as np
import pytest

from matkron._bench import chain, cli
from matkron._bench.suite import Config


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the sweep so that a --quick run takes well under a second."""
    monkeypatch.setattr(cli, "QUICK_DEFAULTS", (1, 1e-5, 0.25))  # samples of 10 µs
    monkeypatch.setattr(chain, "PLAN_KS", {True: (10, 30)})
    monkeypatch.setattr(chain, "DP_MAX_K", 10)
    monkeypatch.setattr(chain, "NUMPY_DP_MAX_K", 30)
    monkeypatch.setattr(chain, "OPT_EINSUM_MAX_K", 10)
    monkeypatch.setattr(chain, "MULTI_DOT_CASES", {"3x(4x4)+vec": [(4, 4)] * 3 + [(4,)],
                                                   "16x(4x4)": [(4, 4)] * 16})


def test_registered():
    assert cli.SUITES["chain"] == "matkron._bench.chain"
    assert chain.SUITE.name == "chain"


def test_run_rows_and_checks(tiny):
    outcome = chain.SUITE.run(Config(quick=True, repeat=1, min_time=1e-5, mem_cap=2**20))
    keys = [column.key for column in outcome.columns]
    assert [row["case"] for row in outcome.rows] == [
        "plan k=10", "plan k=30", "multi_dot 3x(4x4)+vec", "multi_dot 16x(4x4)"]
    for row in outcome.rows:
        assert set(keys) <= set(row)
    k10, k30, _, md16 = outcome.rows
    assert k10["matkron_s"] > 0 and k10["numpy/matkron"] == k10["numpy_s"] / k10["matkron_s"]
    assert k30["matkron_s"] is None and k30["hu_shing_s"] > 0 and k30["numpy_s"] > 0
    assert k10["reverse/optimal"] >= 1 and k10["forward/optimal"] >= 1
    assert md16["k"] == 16 and md16["floor_s"] > 0 and md16["hu_shing_s"] is None
    assert len(outcome.checks) == 5
    # The k = 100, 500 and 1000 targets are not in this sweep: not measured, not passed.
    assert [check.detail for check in outcome.checks[:3]] == ["not measured"] * 3
    assert "16x(4x4)" in outcome.checks[3].detail
    assert any("matkron's DP for k = 30" in note for note in outcome.notes)


def test_command_line(tiny, tmp_path, capsys):
    csv_path = tmp_path / "chain.csv"
    status = cli.main(["bench", "chain", "--quick", "--check", "--repeat", "1", "--csv",
                       str(csv_path), "--plot", str(tmp_path / "chain.png")])
    assert status == 0
    out = capsys.readouterr().out
    assert "chain suite" in out and "summary (" in out and "targets (" in out
    assert out.count("PASS  ") + out.count("MISS  ") == 5
    with csv_path.open() as f:
        table = list(csv.reader(f))
    assert table[0][:2] == ["case", "k"] and len(table) == 1 + 4


def test_multi_dot_statements_compute_the_product():
    arrays, statements = chain.multi_dot_case("8x(64x64)+vec")
    expected = arrays[0]
    for a in arrays[1:]:
        expected = expected @ a
    for name, call in statements.items():
        got = call().reshape(expected.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-10, err_msg=name)


def test_numpy_dp_costs_what_chain_order_does():
    dims = chain.chain_dims(12)
    split = chain.numpy_dp(dims)
    from matkron import chain_order

    assert chain._order_cost(split, dims, 0, len(dims) - 2) == chain_order(dims).cost
