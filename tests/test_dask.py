"""matkron operators on Dask arrays: lazy results equal to the dense products and solves.

Every result is checked against a dense oracle built with ``np.kron`` in complex128 (not
against matkron), with Dask's synchronous and threaded schedulers and on a
``distributed.LocalCluster`` of two worker processes (loopback only) started once for the
module. Also: nothing is computed while the graph is built, the operator is one key of the
graph, BLAS runs on one thread inside tasks, and ``import matkron`` loads no Dask.
"""

import logging
import os
import pickle
import subprocess
import sys

import dask
import dask.array as da
import dask.callbacks
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
import threadpoolctl
from distributed import Client, LocalCluster, wait
from scipy.sparse.linalg import aslinearoperator

import matkron
import matkron._dask

from .conftest import RTOL, frechet_dense

rng = np.random.default_rng(13)


def _well(n):
    return rng.standard_normal((n, n)) + n * np.eye(n)


A43, B55, C26 = (rng.standard_normal((4, 3)), rng.standard_normal((5, 5)),
                 rng.standard_normal((2, 6)))
A4, B3, C8 = _well(4), _well(3), _well(8)
H3 = B3 + B3.T
S3 = scipy.sparse.csr_array(B3)
D4 = np.array([1.0, 2.0, 3.0, 4.0])
P4, Q6, R8, T3 = _well(4), _well(6), _well(8), _well(3)
I = np.eye


def _power3(X):
    """d(X³) on vec(E): E X² + X E X + X² E as a dense Kronecker sum."""
    n = len(X)
    return np.kron((X @ X).T, I(n)) + np.kron(X.T, X) + np.kron(I(n), X @ X)


# name: (operator of a dtype, its dense matrix built with np.kron, whether it has solve)
CASES = {
    "kron rectangular": (lambda dt: matkron.kron(*(f.astype(dt) for f in (A43, B55, C26))),
                         np.kron(np.kron(A43, B55), C26), False),
    "kron square": (lambda dt: matkron.kron(A4.astype(dt), B3.astype(dt)),
                    np.kron(A4, B3), True),
    "kron sparse diagonal scaled": (
        lambda dt: 2 * matkron.kron(A4.astype(dt), S3.astype(dt), matkron.diagonal(D4)),
        2 * np.kron(np.kron(A4, B3), np.diag(D4)), True),
    "kron identity": (lambda dt: matkron.kron(matkron.identity(2), B3.astype(dt),
                                              matkron.identity(3)),
                      np.kron(np.kron(I(2), B3), I(3)), True),
    "kron operator factor": (lambda dt: matkron.kron(aslinearoperator(A4.astype(dt)),
                                                     B3.astype(dt)),
                             np.kron(A4, B3), False),
    "sum_of_kron": (lambda dt: matkron.sum_of_kron(
        [(P4.astype(dt), Q6.astype(dt)), (R8.astype(dt), T3.astype(dt))], [1.0, -0.5]),
        np.kron(P4, Q6) - 0.5 * np.kron(R8, T3), False),
    "kron + shift": (lambda dt: matkron.kron(H3.astype(dt), H3.astype(dt))
                     + 30 * matkron.identity(9),
                     np.kron(H3, H3) + 30 * I(9), True),
    "kronsum": (lambda dt: matkron.kronsum(B3.astype(dt), A4.astype(dt)),
                np.kron(I(4), B3) + np.kron(A4, I(3)), True),
    "sparse kronsum": (
        lambda dt: matkron.kronsum(scipy.sparse.csr_array(C8.astype(dt)), S3.astype(dt)),
        np.kron(I(3), C8) + np.kron(B3, I(8)), True),
    "power_jacobian": (lambda dt: matkron.power_jacobian(A4.astype(dt) / 4, 3),
                       _power3(A4 / 4), False),
    "polynomial_jacobian": (
        lambda dt: matkron.polynomial_jacobian(A4.astype(dt) / 4, [1.0, 2.0, 0.0, 1.0]),
        2 * I(16) + _power3(A4 / 4), False),
    "kronsum inverse": (lambda dt: matkron.kronsum(B3.astype(dt), A4.astype(dt)).inv(),
                        np.linalg.inv(np.kron(I(4), B3) + np.kron(A4, I(3))), True),
    "frechet": (lambda dt: matkron.frechet("expm", A4.astype(dt) / 4),
                frechet_dense(scipy.linalg.expm, A4 / 4), False),
    # Derived operators: scaled, negated, transposed, summed and composed stay lazy.
    "2 * power_jacobian": (lambda dt: 2 * matkron.power_jacobian(A4.astype(dt) / 4, 3),
                           2 * _power3(A4 / 4), False),
    "frechet.T - power_jacobian / 2": (
        lambda dt: matkron.frechet("expm", A4.astype(dt) / 4).T
        - matkron.power_jacobian(A4.astype(dt) / 4, 3) / 2,
        frechet_dense(scipy.linalg.expm, A4 / 4).T - _power3(A4 / 4) / 2, False),
    "power_jacobian @ frechet": (
        lambda dt: matkron.power_jacobian(A4.astype(dt) / 4, 3)
        @ matkron.frechet("expm", A4.astype(dt) / 4),
        _power3(A4 / 4) @ frechet_dense(scipy.linalg.expm, A4 / 4), False),
    "funm (EigenOperator)": (lambda dt: matkron.kron(H3.astype(dt) / 8, I(2)).funm(np.exp),
                             scipy.linalg.expm(np.kron(H3 / 8, I(2))), False),
}
SOLVABLE = [name for name, (_, _, solves) in CASES.items() if solves]
DTYPES = [np.dtype(t) for t in ("float32", "float64", "complex64", "complex128")]


def _tol(dtype):
    return 50 * RTOL[np.dtype(dtype)]


def _operand(shape, dtype, seed=0):
    g = np.random.default_rng(seed)
    x = g.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * g.standard_normal(shape)
    return x.astype(dtype)


def _check(lazy, expected, dtype, scheduler="sync", *, numpy_dtype):
    """`lazy` is a Dask array that computes to `expected` (a complex128 oracle) in the dtype
    the NumPy path gives (`numpy_dtype`)."""
    assert isinstance(lazy, da.Array)
    assert lazy.dtype == numpy_dtype
    got = lazy.compute(scheduler=scheduler)
    assert got.dtype == numpy_dtype and got.shape == expected.shape
    scale = max(np.abs(expected).max(initial=0.0), 1.0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=_tol(dtype) * scale)


def _dense_operand(op):
    return lambda x: op.astype(np.complex128) @ x.astype(np.complex128)


# -- import ---------------------------------------------------------------------------------


def test_import_matkron_loads_no_dask(tmp_path):
    code = ("import sys, matkron; import numpy as np; "
            "matkron.kron(np.eye(2), np.eye(2)) @ np.ones(4); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed')))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- many right-hand sides ------------------------------------------------------------------


SCHEDULED = [("sync", dtype) for dtype in DTYPES] + [
    ("threads", np.dtype("float64")), ("threads", np.dtype("complex64"))]


@pytest.mark.parametrize("scheduler, dtype", SCHEDULED, ids=str)
@pytest.mark.parametrize("name", CASES)
def test_columns(name, dtype, scheduler):
    build, dense, _ = CASES[name]
    op = build(dtype)
    N = op.shape[1]
    X = _operand((N, 7), dtype)
    numpy_dtype = (op @ X).dtype
    for chunks in ((N, 2), (5, 3)):  # column blocks; rows split too
        Xd = da.from_array(X, chunks=chunks)
        Y = op @ Xd
        assert Y.numblocks[0] == 1  # the result's rows in one chunk, blocks of columns
        _check(Y, dense @ X.astype(complex), dtype, scheduler, numpy_dtype=numpy_dtype)
    Xd = da.from_array(X, chunks=(N, 3))
    _check(da.stack([op.matmat(Xd), op.dot(Xd)]), np.stack([dense @ X] * 2), dtype,
           scheduler, numpy_dtype=numpy_dtype)
    Z = _operand((op.shape[0], 5), dtype, seed=1)
    Zd = da.from_array(Z, chunks=(op.shape[0], 2))
    adjoint_dtype = (op.H @ Z).dtype
    _check(da.stack([op.rmatmat(Zd), op.H @ Zd]), np.stack([dense.conj().T @ Z] * 2), dtype,
           scheduler, numpy_dtype=adjoint_dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", CASES)
def test_vectors(name, dtype):
    """1-D operands: pencils for Kronecker products and their sums (chunks that split
    modes included), one block for the other operators."""
    build, dense, _ = CASES[name]
    op = build(dtype)
    N = op.shape[1]
    x = _operand(N, dtype)
    numpy_dtype = (op @ x).dtype
    for chunks in (N, 7, 5, 1):
        xd = da.from_array(x, chunks=chunks)
        _check(op @ xd, dense @ x, dtype, numpy_dtype=numpy_dtype)
    _check(op.matvec(da.from_array(x, chunks=4)), dense @ x, dtype, numpy_dtype=numpy_dtype)
    column = da.from_array(x[:, None], chunks=(N, 1))
    _check(op.matvec(column), dense @ x[:, None], dtype, numpy_dtype=numpy_dtype)
    z = _operand(op.shape[0], dtype, seed=2)
    _check(op.rmatvec(da.from_array(z, chunks=3)), dense.conj().T @ z, dtype,
           numpy_dtype=(op.H @ z).dtype)


@pytest.mark.parametrize("scheduler, dtype", SCHEDULED, ids=str)
@pytest.mark.parametrize("name", SOLVABLE)
def test_solve(name, dtype, scheduler):
    build, dense, _ = CASES[name]
    op = build(dtype)
    N = op.shape[0]
    B = _operand((N, 6), dtype)
    for b, chunks in ((B, (N, 2)), (B, (5, 4)), (B[:, 0], 5)):
        lazy = op.solve(da.from_array(b, chunks=chunks))
        expected = np.linalg.solve(dense, b.astype(complex))
        _check(lazy, expected, dtype, scheduler, numpy_dtype=op.solve(b).dtype)


@pytest.mark.parametrize("chunks", [24, 6, 5, 1])
def test_kron_matvec(chunks):
    factors = [A4, matkron.identity(2), B3]
    x = _operand(24, np.float64)
    expected = np.kron(np.kron(A4, I(2)), B3) @ x
    _check(matkron.kron_matvec(factors, da.from_array(x, chunks=chunks)), expected,
           np.float64, numpy_dtype=np.dtype(np.float64))
    X = _operand((24, 4), np.float32)
    _check(matkron.kron_matvec(factors, da.from_array(X, chunks=(8, 2))),
           np.kron(np.kron(A4, I(2)), B3) @ X, np.float32,
           numpy_dtype=matkron.kron_matvec(factors, X).dtype)


def test_no_task_holds_more_than_a_chunk():
    """A product of 9·10·11 = 990 entries, x in chunks of 90: every matkron task returns
    at most one chunk's entries, or one whole mode (11) times what the chunk leaves."""
    F = [_well(9), _well(10), _well(11)]
    x = _operand(990, np.float64)
    sizes = []

    class Record(dask.callbacks.Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if str(key).startswith("('matkron-"):
                sizes.append(result.size)

    with Record():
        y = (matkron.kron(*F) @ da.from_array(x, chunks=90)).compute(scheduler="sync")
    assert sizes and max(sizes) <= 110
    expected = np.kron(np.kron(F[0], F[1]), F[2]) @ x
    np.testing.assert_allclose(y, expected, atol=1e-12 * np.abs(expected).max())


# -- errors -----------------------------------------------------------------------------------


def test_errors_name_the_argument():
    K = matkron.kron(A4, B3)
    with pytest.raises(ValueError, match=r"x has shape \(11,\); expected \(12,\)"):
        K @ da.ones(11)
    with pytest.raises(ValueError, match=r"X must be 2-D; got shape \(12,\)"):
        K.matmat(da.ones(12))
    with pytest.raises(ValueError, match=r"b has shape \(13, 2\); expected \(12,\)"):
        K.solve(da.ones((13, 2)))
    with pytest.raises(TypeError, match="out must be None when x is a Dask array"):
        matkron.kron_matvec([A4, B3], da.ones(12), out=np.empty(12))
    with pytest.raises(TypeError) as numpy_error:
        K @ np.ones(12, dtype="M8[s]")
    with pytest.raises(TypeError) as dask_error:  # the NumPy path's error, at graph time
        K @ da.ones(12, dtype="M8[s]")
    assert str(dask_error.value) == str(numpy_error.value)


def test_errors_of_the_numpy_path_are_raised_when_the_graph_is_built():
    S = matkron.kron(A4, B3) + matkron.kron(B3, A4)
    with pytest.raises(NotImplementedError, match="iterative solver"):
        S.solve(da.ones((12, 2)))


def test_inputs_are_not_modified():
    K = matkron.kron(A4, B3)
    X = _operand((12, 4), np.float64)
    before = X.copy()
    (K @ da.from_array(X, chunks=(5, 2))).compute()
    K.solve(da.from_array(X, chunks=(12, 1))).compute()
    np.testing.assert_array_equal(X, before)


# -- laziness, the graph, threads -------------------------------------------------------------


def _boom(block):
    raise AssertionError("the operand was computed while the graph was built")


@pytest.mark.parametrize("name", ["kron square", "sum_of_kron", "kronsum", "power_jacobian",
                                  "2 * power_jacobian", "power_jacobian @ frechet"])
def test_building_the_graph_computes_nothing(name, monkeypatch):
    build, dense, solves = CASES[name]
    op = build(np.float64)
    calls = []
    cls = type(op)
    product = cls._product

    def counting(self, x):
        if x.size:  # the zero-column probe that fixes the result dtype reads no data
            calls.append(x.shape)
        return product(self, x)

    monkeypatch.setattr(cls, "_product", counting)
    N = op.shape[1]
    X = da.map_blocks(_boom, da.zeros((N, 8), chunks=(N, 2)), dtype=float)
    x = da.map_blocks(_boom, da.zeros(N, chunks=5), dtype=float)
    results = [op @ X, op.H @ X, op @ x, op.rmatvec(x)]
    if solves:
        results.append(op.solve(X))
    assert calls == []
    X = da.from_array(_operand((N, 8), np.float64), chunks=(N, 2))
    (op @ X).compute(scheduler="sync")
    assert len(calls) >= 4  # one kernel call per column block, when computed


def _pickled_sizes(graph):
    return {key: len(pickle.dumps(task)) for key, task in dict(graph).items()}


@pytest.mark.parametrize("vector", [False, True])
def test_operator_is_one_key_of_the_graph(vector):
    F = [_well(48), _well(40)]
    G = F[0] @ F[0].T
    K = matkron.kron(*F) + matkron.kron(F[1].T, G)
    size = len(pickle.dumps(K))
    N = K.shape[1]
    X = da.ones(N, chunks=160) if vector else da.ones((N, 64), chunks=(N, 8))
    Y = K @ X
    sizes = _pickled_sizes(Y.__dask_graph__())
    holding = [key for key, s in sizes.items() if s >= size]
    assert len(holding) == 1 and str(holding[0]).startswith("matkron-operator-")
    others = [s for key, s in sizes.items() if key != holding[0]]
    assert max(others) < size / 10  # the tasks refer to the operator by its key
    tasks = [key for key in sizes if str(key).startswith("('matkron-")]
    assert len(tasks) >= 8
    np.testing.assert_allclose(
        Y.compute(scheduler="threads"),
        (np.kron(*F) + np.kron(F[1].T, G)) @ X.compute(), atol=1e-8)


def test_blas_threads_pinned_from_the_main_thread_hold_in_tasks():
    """The threaded scheduler's recipe (README): BLAS limited on the main thread holds in
    the pool threads that run matkron's tasks."""
    seen = []

    def matmat(x):
        if x.size:  # not the zero-column probe run when the graph is built
            seen.append(max(info["num_threads"] for info in
                            threadpoolctl.threadpool_info() if info["user_api"] == "blas"))
        return A4 @ x

    factor = scipy.sparse.linalg.LinearOperator((4, 4), matvec=matmat, matmat=matmat,
                                                dtype=np.float64)
    K = matkron.kron(factor, B3)
    X = da.from_array(_operand((12, 16), np.float64), chunks=(12, 1))
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        got = (K @ X).compute(scheduler="threads", num_workers=4)
    assert seen and set(seen) == {1}
    np.testing.assert_allclose(got, np.kron(A4, B3) @ X.compute(), rtol=1e-12)


def test_same_plan_bit_equal():
    """Computed block by block with one BLAS thread, the Dask result is bit-equal to the
    NumPy path applied to the same column blocks (the documented guarantee)."""
    K = matkron.kron(_well(16), _well(12))
    X = _operand((192, 40), np.float64)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        got = (K @ da.from_array(X, chunks=(192, 8))).compute(scheduler="sync")
        expected = np.hstack([K @ X[:, j:j + 8] for j in range(0, 40, 8)])
    np.testing.assert_array_equal(got, expected)


# -- distributed --------------------------------------------------------------------------------


MEMORY_LIMIT = 512 * 2**20


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each on the loopback interface, with a memory
    limit; the p2p rechunk's buffers sized for it (its default comm buffer is 1 GiB)."""
    config = {"distributed.p2p.comm.buffer": "16MiB", "distributed.p2p.storage.buffer":
              "16MiB"}
    with dask.config.set(config):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=":0",
                               memory_limit=MEMORY_LIMIT, silence_logs=logging.ERROR)
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


def test_distributed(client):
    """Every operator kind on the cluster, in one computation (products of vectors, of
    column blocks, with the adjoint, and solves)."""
    lazy, expected = [], []
    for name, (build, dense, solves) in CASES.items():
        op = build(np.float64)
        N = op.shape[1]
        x = _operand(N, np.float64)
        X = _operand((N, 6), np.float64)
        Z = _operand((op.shape[0], 6), np.float64, seed=3)
        # Chunks that split a mode (the Kronecker products have modes of 2 to 16).
        lazy += [op @ da.from_array(x, chunks=N // 3 + 1),
                 op @ da.from_array(X, chunks=(N // 2 + 1, 3)),
                 op.H @ da.from_array(Z, chunks=(op.shape[0], 3))]
        expected += [dense @ x, dense @ X, dense.T @ Z]
        if solves:
            lazy.append(op.solve(da.from_array(X, chunks=(N, 2))))
            expected.append(np.linalg.solve(dense, X))
    for got, want in zip(client.compute(lazy, sync=True), expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-9 * max(np.abs(want).max(), 1))


def test_distributed_workers_run_blas_on_one_thread(client):
    # Two workers of one thread each on two cores: BLAS must not add threads of its own
    # (distributed's nanny starts workers with OPENBLAS_NUM_THREADS=1).
    for infos in client.run(threadpoolctl.threadpool_info).values():
        assert {info["num_threads"] for info in infos if info["user_api"] == "blas"} == {1}
    infos = client.submit(threadpoolctl.threadpool_info, pure=False).result()  # in a task
    assert {info["num_threads"] for info in infos if info["user_api"] == "blas"} == {1}
    # Nor matkron's own pool (it reads the OMP_NUM_THREADS=1 the nanny sets).
    assert set(client.run(matkron.get_num_threads).values()) == {1}


def _sharded_product(client, n, chunk, limit, functional=True):
    """K = P ⊗ Q ⊗ R (P an n×n signed permutation, sparse; Q, R orthogonal 64×64) on a lazy
    x of 4096 n entries in chunks of `chunk`: ‖K x‖ = ‖x‖, and (with `functional`)
    uᵀ K x = (Kᵀ u)ᵀ x for u = u₁ ⊗ u₂ ⊗ u₃ through Dask's einsum on x as a tensor; every
    worker under `limit` and none restarted."""
    # Nested, so that they are sent to the workers by value (tests is not importable
    # there).
    def reset_peak_memory():  # Linux: VmHWM, reset through /proc/self/clear_refs
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    def peak_memory():  # bytes since the reset
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f
                        if line.startswith("VmHWM:"))

    g = np.random.default_rng(5)
    P = scipy.sparse.csr_array((np.sign(g.standard_normal(n)), (np.arange(n),
                                g.permutation(n))), shape=(n, n))
    Q = np.linalg.qr(g.standard_normal((64, 64)))[0]
    R = np.linalg.qr(g.standard_normal((64, 64)))[0]
    K = matkron.kron(P, Q, R)
    x = da.random.default_rng(1).standard_normal(K.shape[1], chunks=chunk)
    u = [g.standard_normal(d) for d in (n, 64, 64)]
    pids = client.run(os.getpid)
    client.run(reset_peak_memory)  # earlier work of these workers does not count
    y = K @ x
    lazy = [da.linalg.norm(y), da.linalg.norm(x)]
    if functional:
        lazy += [da.einsum("ijk,i,j,k->", y.reshape(n, 64, 64), *u),
                 da.einsum("ijk,i,j,k->", x.reshape(n, 64, 64), P.T @ u[0], Q.T @ u[1],
                           R.T @ u[2])]
    futures = client.compute(lazy)
    wait(futures, timeout=180)  # a failure, not a hang, if the workers stall
    results = client.gather(futures)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)
    if functional:
        np.testing.assert_allclose(results[2], results[3], rtol=1e-9)
    assert client.run(os.getpid) == pids  # no worker was restarted
    peaks = client.run(peak_memory).values()
    assert all(peak < limit for peak in peaks), peaks


def test_vector_sharded_across_workers(client):
    """A 64 MiB x on workers limited to 512 MiB: the mode-sharded product completes, each
    worker holding a share."""
    _sharded_product(client, 2048, 2**18, MEMORY_LIMIT)


def test_vector_larger_than_a_worker():
    """A 384 MiB x on two workers of 320 MiB each (100 to 140 MiB of which is the worker
    itself): the product runs in blocks of 4 MiB through every rechunk. (Dask plans a
    rechunk through intermediate blocks of up to 128 MiB unless told otherwise, which
    killed such workers.) Workers do not pause near their limit, so that a product that
    needs more memory fails here rather than waits."""
    limit = 320 * 2**20
    config = {"distributed.p2p.comm.buffer": "16MiB", "distributed.p2p.storage.buffer":
              "16MiB", "distributed.worker.memory.pause": False}
    with dask.config.set(config), LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=":0", memory_limit=limit,
            silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        # ‖K x‖ = ‖x‖ only: the values are checked by the sharded test above.
        _sharded_product(client, 12288, 2**19, limit, functional=False)


def test_other_dask_collections_are_not_dask_arrays():
    # Only dask.array.Array takes the lazy path; the check imports nothing.
    from matkron._validation import is_dask_array

    assert is_dask_array(da.ones(3))
    assert not is_dask_array(dask.delayed(np.ones)(3))
    assert not is_dask_array(np.ones(3))


def test_functions_without_a_lazy_path_refuse_dask_arrays():
    # Never computed on the client silently: a TypeError naming the argument.
    A = A4 / 4
    Xd = da.from_array(np.ones((12, 2)), chunks=(12, 1))
    K = matkron.kronsum(B3, A4)
    calls = {
        "b": lambda: K.expm_multiply(Xd, 0.1),
        "q": lambda: matkron.solve_sylvester(A4, B3, da.ones((4, 3))),
        "A": lambda: matkron.frechet("expm", da.from_array(A)),
        "E": lambda: matkron.frechet("expm", A, da.from_array(A)),
        "X": lambda: matkron.vec(da.ones((2, 2))),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match=rf"^{name} is a Dask array"):
            call()
