"""The dask suite: matkron operators on Dask arrays, on a ``distributed.LocalCluster``.

Three parts (float64):

- many right-hand sides: ``K @ X`` for K = A ⊗ B (two n×n factors, N = n²) and X of m
  columns in chunks of c columns, X generated and kept on the workers
  (``client.persist``) and the result persisted there too (nothing gathered), on a
  LocalCluster of 2 worker processes × 1 thread, against the same product in this
  process on one BLAS thread (``K @ X`` on the NumPy array); and the time the graph adds
  for a single chunk (N, c): the synchronous scheduler and the cluster against ``K @ X``;
- one vector larger than a worker: x of q³ entries for K = A ⊗ B ⊗ C (three q×q
  factors), generated lazily on the workers (``dask.array.random``) and reduced to
  ‖K x‖ (nothing gathered), on 2 workers with a memory limit each; its time per byte
  against the in-memory ``K @ x`` of a size that fits (q_mem³), in this process, also
  per multiply-add (a q-point factor costs q per entry, so bytes alone flatter the
  smaller product);
- on paper, how both scale to 16 and 128 workers: tasks of the graph and bytes moved per
  rechunk (an all-to-all moves (1 − 1/W) of the vector between W workers).

Worker processes run BLAS on one thread (``distributed``'s nanny sets
OPENBLAS_NUM_THREADS=1), so workers × threads = 2 stays within the 2 cores measured on.
"""

import math
import os
import resource
import statistics
import time

import numpy as np

import matkron

from .report import Progress, format_bytes
from .suite import Check, Column, Outcome, Suite

__all__ = ["SUITE"]

# (n, m, chunk columns) of the many-RHS product; (q, chunk entries, worker memory limit)
# of the larger-than-a-worker vector; the in-memory q; by config.quick.
MANY = {False: (64, 4096, 256), True: (32, 512, 64)}
VECTOR = {False: (736, 2**23, 2 * 2**30), True: (96, 2**16, 512 * 2**20)}
IN_MEMORY_Q = {False: 384, True: 96}
WORKERS = 2
PAPER_WORKERS = (16, 128)
# The p2p rechunk's buffers, sized for memory-limited workers (its comm buffer defaults to
# 1 GiB, more than a small worker holds).
DASK_CONFIG = {"distributed.p2p.comm.buffer": "64MiB", "distributed.p2p.storage.buffer":
               "64MiB"}

# Targets.
SPEEDUP_TARGET = 1.7
VECTOR_TARGET = 2.0

COLUMNS = [
    Column("case", "case", "text"),
    Column("N", "N", "int"),
    Column("m", "m", "int"),
    Column("chunk", "chunk", "int"),
    Column("bytes", "operand", "bytes"),
    Column("numpy_s", "in memory", "time"),
    Column("dask_s", "dask", "time"),
    Column("ratio", "mem/dask", "ratio"),
]

LEGEND = [
    "in memory    K @ X (or K @ x) on NumPy arrays in this process, one BLAS thread; for "
    "the vector, the time per multiply-add of a q_mem^3 product times the vector's "
    "multiply-adds",
    f"dask         the same through Dask: LocalCluster of {WORKERS} processes x 1 thread "
    "unless the case says sync",
    "mem/dask     in-memory time / Dask time (per multiply-add for the vector): > 1 is "
    "faster",
]


def _dask_missing():
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def _median_time(func, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cluster(memory_limit):
    import logging

    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(DASK_CONFIG):
        cluster = LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=":0",
                               memory_limit=memory_limit, silence_logs=logging.ERROR)
    return cluster, Client(cluster)


def _many_rows(config, progress, client):
    """The many-RHS product and the single-chunk overhead."""
    import dask.array as da
    from distributed import wait

    n, m, c = MANY[config.quick]
    g = np.random.default_rng(0)
    K = matkron.kron(g.standard_normal((n, n)), g.standard_normal((n, n)))
    N = n * n
    X = g.standard_normal((N, m))
    repeat = min(config.repeat, 5)
    progress.step(f"many RHS in memory: N={N} m={m}")
    numpy_s = _median_time(lambda: K @ X, repeat)
    one = X[:, :c]
    one_s = _median_time(lambda: K @ one, config.repeat)
    lazy_one = da.from_array(one, chunks=(N, c))
    sync_s = _median_time(lambda: (K @ lazy_one).compute(scheduler="sync"), config.repeat)
    progress.step(f"many RHS on the cluster: {m // c} chunks")
    Xd = client.persist(da.random.default_rng(1).standard_normal((N, m), chunks=(N, c)))
    wait(Xd)
    # The check: the first chunk's columns, gathered only here.
    got = client.compute((K @ Xd)[:, :c], sync=True)
    expected = K @ client.compute(Xd[:, :c], sync=True)
    if not np.allclose(got, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max()):
        raise RuntimeError("matkron on Dask does not compute K @ X")
    dask_s = _median_time(lambda: wait(client.persist(K @ Xd)), repeat)
    X1 = client.persist(Xd[:, :c])
    wait(X1)
    cluster_one_s = _median_time(lambda: wait(client.persist(K @ X1)), config.repeat)
    graph_tasks = len(dict((K @ Xd).__dask_graph__()))
    client.cancel([Xd, X1])
    rows = [
        dict(case=f"K @ X, {WORKERS} workers", N=N, m=m, chunk=c, bytes=X.nbytes,
             numpy_s=numpy_s, dask_s=dask_s, ratio=numpy_s / dask_s),
        dict(case="one chunk, sync", N=N, m=c, chunk=c, bytes=one.nbytes, numpy_s=one_s,
             dask_s=sync_s, ratio=one_s / sync_s),
        dict(case=f"one chunk, {WORKERS} workers", N=N, m=c, chunk=c, bytes=one.nbytes,
             numpy_s=one_s, dask_s=cluster_one_s, ratio=one_s / cluster_one_s),
    ]
    return rows, graph_tasks, K


def _vector_row(config, progress, client):
    """The larger-than-a-worker vector, and the in-memory product of a size that fits."""
    import dask.array as da

    q, chunk, limit = VECTOR[config.quick]
    g = np.random.default_rng(2)
    factors = [np.linalg.qr(g.standard_normal((q, q)))[0] for _ in range(3)]
    K = matkron.kron(*factors)  # orthogonal: ‖K x‖ = ‖x‖ checks the result
    qm = IN_MEMORY_Q[config.quick]
    small = matkron.kron(*(f[:qm, :qm] for f in factors))
    xs = g.standard_normal(qm**3)
    progress.step(f"vector in memory: {qm}^3")
    numpy_s = _median_time(lambda: small @ xs, min(config.repeat, 3))
    progress.step(f"vector on the cluster: {q}^3, {format_bytes(8 * q**3)}")
    status = "completed"
    pids = client.run(os.getpid)
    x = da.random.default_rng(3).standard_normal(q**3, chunks=chunk)
    y = K @ x
    graph = y.__dask_graph__()
    start = time.perf_counter()
    try:
        ny, nx = client.compute([da.linalg.norm(y), da.linalg.norm(x)], sync=True)
        dask_s = time.perf_counter() - start
        if not math.isclose(ny, nx, rel_tol=1e-9):
            raise RuntimeError("matkron on Dask does not compute K @ x (‖K x‖ ≠ ‖x‖)")
    except Exception as exc:  # a worker killed past its limit: reported as a MISS
        dask_s, status = None, f"failed: {type(exc).__name__}: {str(exc)[:120]}"
    restarted = client.run(os.getpid) != pids
    peaks = [usage.ru_maxrss * 1024  # kB on Linux
             for usage in client.run(resource.getrusage, resource.RUSAGE_SELF).values()]
    # Multiply-adds of K @ x for three q-point factors: q³ · 3q.
    scale = (3 * q**4) / (3 * qm**4)
    per_flop = None if dask_s is None else numpy_s * scale / dask_s
    per_byte = None if dask_s is None else (numpy_s / xs.nbytes) / (dask_s / (8 * q**3))
    row = dict(case=f"‖K x‖, {WORKERS} workers", N=q**3, m=1, chunk=chunk, bytes=8 * q**3,
               numpy_s=numpy_s * scale, dask_s=dask_s, ratio=per_flop, per_byte=per_byte)
    return row, status, restarted, peaks, limit, graph, (q, chunk)


def _paper(K_many, many_tasks, graph, vector_shape, config):
    """How each case scales to more workers, from the graphs and the pencil plan."""
    from matkron._dask import pencil_plan

    n, m, c = MANY[config.quick]
    q, chunk = vector_shape
    nbytes = 8 * q**3
    passes, final = pencil_plan([(q, q)] * 3, (), chunk)
    all_to_all = len(passes) - 1 + (final != passes[-1][0])
    op_bytes = sum(f.nbytes for f in K_many.factors)
    return [
        "on paper     W workers; tasks from the graphs built above; bytes moved between "
        "workers",
        f"  K @ X      {many_tasks} tasks ({m // c} column blocks, whatever W); the operator "
        f"({format_bytes(op_bytes)}) sent once to each worker, no column moves: "
        + ", ".join(f"W={w}: {format_bytes(op_bytes * w)}" for w in PAPER_WORKERS),
        f"  ‖K x‖      {len(dict(graph))} tasks (x in {math.ceil(nbytes / (8 * chunk))} "
        f"chunks, whatever W); {len(passes)} blockwise passes, {all_to_all} all-to-all "
        f"rechunks of {format_bytes(nbytes)}, each moving (1 - 1/W) of x: "
        + ", ".join(f"W={w}: {format_bytes(nbytes * (1 - 1 / w))} per rechunk "
                    f"({format_bytes(nbytes / w)} per worker)" for w in PAPER_WORKERS),
    ]


def plan(config):
    """What a run with `config` measures, as lines for the report header."""
    n, m, c = MANY[config.quick]
    q, chunk, limit = VECTOR[config.quick]
    lines = ["dask suite: matkron operators on Dask arrays (float64)"]
    missing = _dask_missing()
    if missing:
        return lines + [f"  skipped: Dask is not installed ({missing}); "
                        "pip install 'matkron[dask]'"]
    return lines + [
        f"  many RHS: K = A ⊗ B, n={n} (N={n * n}), m={m} in chunks of {c}, LocalCluster "
        f"{WORKERS} processes x 1 thread vs this process, one thread; one chunk's overhead",
        f"  one vector: K = A ⊗ B ⊗ C, q={q} (x {format_bytes(8 * q**3)}, chunks of "
        f"{format_bytes(8 * chunk)}), {WORKERS} workers of {format_bytes(limit)}, ‖K x‖; "
        f"in memory q={IN_MEMORY_Q[config.quick]}",
        f"  medians of up to {min(config.repeat, 5)} samples (the large vector: one run)",
    ]


def run(config):
    """Run the dask suite with `config` (see :class:`~.suite.Config`); its outcome."""
    missing = _dask_missing()
    if missing:
        return Outcome(COLUMNS, [], [f"skipped      Dask is not installed ({missing}); "
                                     "pip install 'matkron[dask]'"])
    with Progress(5) as progress:
        progress.step(f"LocalCluster of {WORKERS} workers")
        cluster, client = _cluster(VECTOR[config.quick][2])
        try:
            rows, many_tasks, K_many = _many_rows(config, progress, client)
            row, status, restarted, peaks, limit, graph, shape = _vector_row(
                config, progress, client)
        finally:
            client.close()
            cluster.close()
    rows.append(row)
    notes = list(LEGEND)
    larger = "larger" if row["bytes"] > limit else "smaller (--quick)"
    notes.append(f"vector       x {larger} than a worker's limit; {status}; worker peak RSS "
                 + ", ".join(format_bytes(p) for p in peaks)
                 + f" of {format_bytes(limit)}; workers restarted: {restarted}")
    notes += _paper(K_many, many_tasks, graph, shape, config)
    speedup = rows[0]["ratio"]
    checks = [
        Check(speedup >= SPEEDUP_TARGET,
              f"many RHS: {WORKERS} workers >= {SPEEDUP_TARGET:g}x one process",
              f"{speedup:.2f}x"),
        Check(row["dask_s"] is not None and not restarted and max(peaks) < limit,
              f"vector ({larger} than a worker): completes, no worker restarted, every "
              "worker under its limit", f"{status}; peak {format_bytes(max(peaks))}"),
        Check(row["ratio"] is not None and row["ratio"] >= 1 / VECTOR_TARGET,
              f"vector: time per multiply-add within {VECTOR_TARGET:g}x of the in-memory "
              "product", "not measured" if row["ratio"] is None else
              f"{1 / row['ratio']:.2f}x the in-memory time per multiply-add "
              f"({1 / row['per_byte']:.2f}x per byte)"),
    ]
    return Outcome(COLUMNS, rows, notes, checks)


SUITE = Suite(
    name="dask",
    summary="operators on Dask arrays: many right-hand sides, a vector larger than a worker",
    plan=plan,
    run=run,
)
