"""The jacobian_chain benchmark piece runs end to end on tiny chains and checks its results.

Timings are not asserted (they belong in the benchmark); these tests run the code paths of
``matkron._bench.jacobian_chain``: the cases, the check against multi_dot before timing, the
rows, the table and the target line.
"""

import numpy as np
import pytest

from matkron._bench import jacobian_chain as bench


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(bench.CASES, True, (
        ("reverse", [("dense", 6, 12), ("diag", 6), ("dense", 1, 6)]),
        ("forward", [("dense", 9, 2), ("kron", 3, 3), ("linop", 11, 9)]),
        ("bottleneck", [("dense", 2, 10), ("linop", 8, 2), ("linop", 2, 8),
                        ("dense", 10, 2)]),
    ))


def test_quick_run_rows_and_table(tiny):
    rows = bench.run(quick=True, repeat=1, min_time=1e-5)
    assert [(row["case"], row["mode"], row["shape"], row["k"]) for row in rows] == [
        ("reverse", "reverse", "1×12", 3), ("forward", "forward", "11×2", 3),
        ("bottleneck", "mixed", "10×10", 4)]
    assert [row["same_as"] for row in rows] == [["reverse"], ["forward"], []]
    assert rows[0]["reverse/auto"] == 1 and rows[1]["forward/auto"] == 1
    for row in rows:
        assert {column.key for column in bench.COLUMNS} <= set(row)
        assert row["auto_s"] > 0 and row["forward_s"] > 0 and row["reverse_s"] > 0
        assert row["forward/auto"] == row["forward_s"] / row["auto_s"]
        assert float(row["cost_auto"]) <= min(float(row["cost_forward"]),
                                               float(row["cost_reverse"]))
    text = bench.format_rows(rows)
    assert "fwd/opt" in text and "bottleneck: n = 10 → 2 → 8 → 2 → 10; plan" in text
    assert text.count("PASS  ") + text.count("MISS  ") == 1


def test_chain_matches_its_dense_matrices():
    ops, mats = bench.chain([("dense", 4, 3), ("diag", 4), ("kron", 2, 2), ("linop", 5, 4)])
    for op, M in zip(ops, mats):
        np.testing.assert_allclose(op @ np.eye(M.shape[1]), M, rtol=1e-14, atol=1e-15)


def test_check_catches_a_wrong_result(tiny, monkeypatch):
    real = bench.chain

    def wrong(recipe, seed=0):
        ops, mats = real(recipe, seed)
        return ops, [2 * M for M in mats]

    monkeypatch.setattr(bench, "chain", wrong)
    with pytest.raises(RuntimeError, match=r"mode='auto'\)\.todense\(\) is wrong for reverse"):
        bench.run(quick=True, repeat=1, min_time=1e-5)


def test_main_prints_the_table(tiny, capsys):
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "optimal" in out and "forward" in out and "reverse" in out
