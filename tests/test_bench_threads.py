"""The threads benchmark suite runs end to end on tiny sizes; its spinning child always stops.

Timings are not asserted; these tests run the suite's code paths (the scaling cells, the
busy-core rows beside a spinning child process, the table and the target lines of
``python -m matkron bench threads``), the helpers they use (pinning switched off and on,
cg's iteration count, the FMA peak probe, plan flops) and the feature detection of
matkron's own threads and measuring planner, with a stand-in planner.
"""

import math
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import matkron
from matkron._bench import cli, features, machine, pinning, threads
from matkron._bench.report import NA, format_value
from matkron._bench.rows import check
from matkron._bench.suite import Config


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the suite: one scaling case, a 16×16 T and 10 cg iterations."""
    monkeypatch.setattr(cli, "QUICK_DEFAULTS", (1, 1e-5, 0.25))
    monkeypatch.setattr(threads, "QUICK_SCALING_CASES", ("16^4",))
    monkeypatch.setitem(threads.BUSY_N, True, 16)
    monkeypatch.setitem(threads.CG_ITERATIONS, True, 10)


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_registered():
    assert cli.SUITES["threads"] == "matkron._bench.threads"
    assert threads.SUITE.name == "threads" and not threads.SUITE.one_cpu


def test_run_rows_and_checks(tiny):
    outcome = threads.SUITE.run(Config(quick=True, repeat=1, min_time=1e-5, mem_cap=2**20))
    scaling, idle, busy, numpy_one, own, waiting = outcome.rows
    assert scaling["section"] == "scaling" and scaling["mk1_s"] > 0 and scaling["floor2_s"] > 0
    if not features.has_threads():
        assert scaling["mk2_s"] is NA and scaling["speedup"] is NA
        assert [c.passed for c in outcome.checks[:2]] == [None, None]
    for row in (idle, busy, numpy_one, own, waiting):
        assert row["cg_iterations"] == 10 and row["matvec_s"] > 0 and row["cg_s"] > 0
    assert idle["cg/idle"] == 1.0
    assert waiting["matvec_s"] >= idle["matvec_s"]  # it waits (a)'s product time
    assert threads.cg_bound(outcome.rows[1:]) == pytest.approx(waiting["cg_s"] / idle["cg_s"])
    assert any(note.startswith("cg bound") for note in outcome.notes)
    assert len(outcome.checks) == 6
    assert all(c.detail.startswith("worst ") for c in outcome.checks[2:])
    assert _gone(busy["spinner_pid"]) and busy["spinner_pid"] == numpy_one["spinner_pid"]
    assert own["spinner_pid"] == waiting["spinner_pid"] == busy["spinner_pid"]


def test_command_line(tiny, tmp_path, capsys):
    status = cli.main(["bench", "threads", "--quick", "--check", "--csv",
                       str(tmp_path / "threads.csv"), "--plot", str(tmp_path / "t.png")])
    assert status == 0
    out = capsys.readouterr().out
    assert "threads suite" in out and "FMA peak" in out and "targets (" in out
    assert sum(out.count(f"\n  {status}  ") for status in ("PASS", "MISS", "n/a ")) == 6


def test_busy_core_stops_its_child_on_interrupt():
    with pytest.raises(KeyboardInterrupt), threads.busy_core() as child:
        assert child.poll() is None
        raise KeyboardInterrupt
    assert child.poll() is not None and _gone(child.pid)


def test_cg_runs_every_iteration():
    T = threads.laplacian(32)
    K = matkron.kronsum(T, T)
    b = np.random.default_rng(0).standard_normal(32 * 32)
    assert threads.cg_iterations(K, b, 25)() == 25


def _blas_threads():
    return {info["filepath"]: info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas"}


def test_unpinned_restores_the_defaults_then_pins_again():
    before = _blas_threads()
    with matkron.threads(3):
        with pinning.pinned(1):
            assert set(_blas_threads().values()) == {1}
            assert matkron.get_num_threads() == 1
            with pinning.unpinned():
                assert _blas_threads() == before
                assert matkron.get_num_threads() == 3
            assert set(_blas_threads().values()) == {1}
            assert matkron.get_num_threads() == 1
        assert matkron.get_num_threads() == 3
    assert _blas_threads() == before


def test_fma_peak_and_plan_flops():
    peak = machine.fma_peak()
    assert peak is not None and peak.gflops > 0 and "GFLOP/s" in peak.describe()
    mats = [np.ones((2, 5)), np.ones((3, 4))]
    x = np.ones((20, 3))
    order, multiplications = matkron.kron_order([(2, 5), (3, 4)], 3)
    assert machine.plan_flops(mats, x) == 2 * multiplications
    assert math.isclose(machine.percent_of_peak(peak.gflops), 100.0)


def test_not_available_cells():
    assert format_value(NA, "time") == "n/a"
    result = check([{"v": NA}], "v", "v <= 1", __import__("operator").le, 1.0, str)
    assert result.passed is None and result.detail == "n/a"


def test_first_calls_with_a_stand_in_planner(monkeypatch):
    state = {"mode": "estimate", "measured": 0}

    def product():
        if state["mode"] == "measure":
            state["measured"] += 1

    monkeypatch.setattr(matkron, "set_planner", lambda mode: state.update(mode=mode),
                        raising=False)
    monkeypatch.setattr(matkron, "get_planner", lambda: state["mode"], raising=False)
    monkeypatch.setattr(matkron, "export_wisdom", lambda: str(min(state["measured"], 3)),
                        raising=False)
    monkeypatch.setattr(matkron, "forget_wisdom", lambda: state.update(measured=0),
                        raising=False)
    found = features.first_calls(product, lambda f: 0.0)
    assert found["calls"] == 1  # the wisdom changes after the first measuring call
    assert found["first+ estimate"] >= 0 and found["first+ measure"] >= 0
    assert state["mode"] == "estimate"


def test_first_calls_without_a_planner(monkeypatch):
    # As the benchmark reports a matkron without a measuring planner: n/a, not an error.
    for name in ("set_planner", "get_planner", "export_wisdom", "forget_wisdom"):
        monkeypatch.delattr(matkron, name, raising=False)
    assert not features.has_planner()
    assert set(features.first_calls(lambda: None, lambda f: 0.0).values()) == {NA}
