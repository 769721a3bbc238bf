"""The dask benchmark suite runs end to end on tiny sizes (``python -m matkron bench dask``).

Timings are not asserted (they belong in the benchmark); this runs the suite's code paths:
the cluster, the checks of the results before timing, the table, the notes on paper, the
CSV and the target lines.
"""

import csv

import pytest

from matkron._bench import cli, cluster


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(cluster, "MANY", {True: (8, 32, 8)})
    monkeypatch.setattr(cluster, "VECTOR", {True: (16, 512, 512 * 2**20)})
    monkeypatch.setattr(cluster, "IN_MEMORY_Q", {True: 8})


def test_registered():
    assert cli.SUITES["dask"] == "matkron._bench.cluster"
    assert cluster.SUITE.name == "dask"


def test_command_line(tiny, tmp_path, capsys):
    csv_path = tmp_path / "dask.csv"
    status = cli.main(["bench", "dask", "--quick", "--check", "--repeat", "1", "--csv",
                       str(csv_path)])
    assert status == 0
    out = capsys.readouterr().out
    assert "dask suite" in out and "targets (" in out and "on paper" in out
    assert "W=16" in out and "W=128" in out
    assert out.count("PASS  ") + out.count("MISS  ") == 3
    assert "vector       x smaller (--quick) than a worker's limit; completed" in out
    with csv_path.open() as f:
        table = list(csv.reader(f))
    assert table[0][:2] == ["case", "N"] and len(table) == 1 + 4


def test_skipped_without_dask(monkeypatch):
    monkeypatch.setattr(cluster, "_dask_missing", lambda: "No module named 'dask'")
    outcome = cluster.SUITE.run(None)
    assert outcome.rows == [] and "skipped" in outcome.notes[0]
    assert "skipped" in cluster.SUITE.plan(type("C", (), {"quick": True})())[-1]
