"""Several threads sharing one KronOperator (and one set of factors) at the same time, and
matkron's own threads splitting one product.

Every thread checks each of its results against dense results computed beforehand.
"""

import itertools
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import matkron
from matkron import _kron_cy

from .conftest import (
    DTYPES,
    assert_allclose_bound,
    assert_product,
    columns,
    kron_abs_dense,
    kron_dense,
    kron_einsum,
    make_factors,
    operand_shape,
    random_array,
    rows,
    to_dense,
    with_layout,
)
from .test_kernel_steps import SPECS as STEP_SPECS
from .test_kron_matvec import IDENTITY_SHAPES, SHAPES

N_THREADS = 8
ROUNDS = 25


def _run_concurrently(work):
    barrier = threading.Barrier(N_THREADS)

    def job(t):
        barrier.wait()
        return work(t)

    with ThreadPoolExecutor(max_workers=N_THREADS) as pool:
        results = list(pool.map(job, range(N_THREADS)))
    assert results == list(range(N_THREADS))


def test_shared_operator_products(rng):
    spec = [(6, 5), (7, 8), (4, 3)]
    factors = [random_array(rng, s, np.complex128) for s in spec]
    K = matkron.kron(*factors)
    dense = kron_dense(factors)
    # Operands of different sizes per thread (1 to 6 right-hand sides, 1-D or 2-D, C or F
    # order), so threads need scratch space of different sizes at the same time.
    cases = []
    for t in range(N_THREADS):
        mine = []
        for r in range(4):
            m = (t + r) % 6
            shape = (K.shape[1],) if m == 0 else (K.shape[1], m)
            x = random_array(rng, shape, np.complex128)
            if r % 2:
                x = np.asfortranarray(x)
            z = random_array(rng, (K.shape[0],) + shape[1:], np.complex128)
            mine.append((x, dense @ x, z, dense.conj().T @ z))
        cases.append(mine)

    def work(t):
        for i in range(ROUNDS):
            x, y_ref, z, w_ref = cases[t][i % len(cases[t])]
            np.testing.assert_allclose(K @ x, y_ref, rtol=1e-11, atol=1e-11)
            np.testing.assert_allclose(K.H @ z, w_ref, rtol=1e-11, atol=1e-11)
            if x.ndim == 1:
                np.testing.assert_allclose(K.rmatvec(z), w_ref, rtol=1e-11, atol=1e-11)
            else:
                np.testing.assert_allclose(K.matmat(x), y_ref, rtol=1e-11, atol=1e-11)
        return t

    _run_concurrently(work)


def test_shared_operator_mixed_dtypes(rng):
    # Threads use one float32 operator with operands of different dtypes, so the per-dtype
    # caches of converted factors are filled concurrently.
    A = (4 * np.eye(4) + random_array(rng, (4, 4), np.float64)).astype(np.float32)
    B = (5 * np.eye(5) + random_array(rng, (5, 5), np.float64)).astype(np.float32)
    K = matkron.kron(A, B)
    dense = np.kron(A.astype(np.float64), B.astype(np.float64))
    dtypes = [np.float32, np.float64, np.complex64, np.complex128]
    cases = []
    for t in range(N_THREADS):
        dt = np.dtype(dtypes[t % 4])
        x = random_array(rng, (20, 1 + t % 3), dt)
        z = random_array(rng, 20, dt)
        cases.append((dt, x, dense @ x.astype(np.complex128), z, dense.T @ z.astype(complex)))

    def work(t):
        dt, x, y_ref, z, w_ref = cases[t]
        tol = 1e-4 if dt in (np.float32, np.complex64) else 1e-11
        for _ in range(ROUNDS):
            y = K @ x
            assert y.dtype == dt
            np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol * np.abs(y_ref).max())
            w = K.rmatvec(z)
            assert w.dtype == dt
            np.testing.assert_allclose(w, w_ref, rtol=tol, atol=tol * np.abs(w_ref).max())
        return t

    _run_concurrently(work)


# Run in a child process: a crash there (rather than in pytest's own process) is reported as
# this test's failure instead of ending the whole session.
_SOLVE_SCRIPT = """
import threading
from concurrent.futures import ThreadPoolExecutor
import numpy as np
import matkron

rng = np.random.default_rng(1)
factors = [n * np.eye(n) + rng.standard_normal((n, n)) for n in (6, 5)]
K = matkron.kron(*factors)
dense = np.kron(*factors)
bs = [rng.standard_normal((30, 1 + t % 3)) for t in range(8)]
refs = [np.linalg.solve(dense, b) for b in bs]
barrier = threading.Barrier(8)

def work(t):
    barrier.wait()
    for _ in range(50):
        np.testing.assert_allclose(K.solve(bs[t]), refs[t], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(K.solve(bs[t][:, 0]), refs[t][:, 0], rtol=1e-10, atol=1e-12)
    return t

with ThreadPoolExecutor(8) as pool:
    assert list(pool.map(work, range(8))) == list(range(8))
print("ok")
"""


def _run_script(script, cwd):
    """Run `script` in a fresh interpreter (a crash fails only it) and check it says ok."""
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (
        f"exit status {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    )


def test_shared_operator_solve(tmp_path):
    # Eight threads call solve (cached LU factors) on one operator at the same time.
    _run_script(_SOLVE_SCRIPT, tmp_path)


def test_shared_factors_kron_matvec_with_out(rng):
    spec = [(30, 25), (20, 28), (12, 14)]
    factors = [random_array(rng, s, np.float64) for s in spec]
    factors[1] = np.asfortranarray(factors[1])
    n_in = 25 * 28 * 14
    xs = [random_array(rng, (n_in, 1 + t % 3), np.float64) for t in range(N_THREADS)]
    refs = [kron_einsum(factors, x).real for x in xs]

    def work(t):
        x, ref = xs[t], refs[t]
        out = np.empty(ref.shape, order="F" if t % 2 else "C")
        for _ in range(4):
            assert matkron.kron_matvec(factors, x, out=out) is out
            np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
            y = matkron.kron_matvec(factors, x[:, 0])
            np.testing.assert_allclose(y, ref[:, 0], rtol=1e-10, atol=1e-10 * np.abs(ref).max())
        return t

    _run_concurrently(work)


def test_threads_with_different_operators(rng):
    # Each thread alternates between a small problem (scratch on the stack) and a large one
    # (per-thread workspace), so workspace growth happens while other threads compute.
    small = [random_array(rng, (3, 2), np.float64), random_array(rng, (2, 4), np.float64)]
    big = [random_array(rng, (40, 30), np.float64), random_array(rng, (25, 35), np.float64)]
    K_small, K_big = matkron.kron(*small), matkron.kron(*big)
    d_small, d_big = kron_dense(small).real, kron_dense(big).real
    xs = [
        (random_array(rng, (8, 2), np.float64), random_array(rng, (1050, 1 + t % 4), np.float64))
        for t in range(N_THREADS)
    ]
    refs = [(d_small @ a, d_big @ b) for a, b in xs]

    def work(t):
        (a, b), (ra, rb) = xs[t], refs[t]
        for _ in range(6):
            np.testing.assert_allclose(K_small @ a, ra, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(K_big @ b, rb, rtol=1e-10, atol=1e-10 * np.abs(rb).max())
        return t

    _run_concurrently(work)


_MUTATION_SCRIPT = r"""
import sys
import threading
import numpy as np
import matkron
from matkron import _kron_cy

rng = np.random.default_rng(2)
n = 120
A = rng.standard_normal((n, n))
B = rng.standard_normal((n, n))
x = rng.standard_normal((n * n, 4))
# (A ⊗ B) vec(X) = vec(B X Aᵀ), column by column
X = x.reshape(n, n, 4, order="F")
kron_ref = np.stack([(B @ X[:, :, c] @ A.T).ravel(order="F") for c in range(4)], axis=1)
chain_ref = A @ B @ A
# Hand the GIL over often: the mutating thread gets more chances to run during a call, and
# the caller waits less for it afterwards.
sys.setswitchinterval(1e-4)

def mutating(seq, i, value):
    # Replace seq[i] by fresh copies (equal values) while the main thread computes: the
    # array replaced is freed unless the callee holds its own reference.
    stop = threading.Event()
    def run():
        while not stop.is_set():
            seq[i] = value.copy()
    thread = threading.Thread(target=run)
    thread.start()
    return stop, thread

def check(name, compute, ref, seq, i, value, rounds=30):
    stop, thread = mutating(seq, i, value)
    try:
        for _ in range(rounds):
            np.testing.assert_allclose(compute(), ref, rtol=1e-9, atol=1e-9, err_msg=name)
    finally:
        stop.set()
        thread.join()

facs = [A.copy(), B.copy()]
check("kron_matvec", lambda: matkron.kron_matvec(facs, x), kron_ref, facs, 0, A)
out = np.empty_like(kron_ref)
check("kron_matvec out=", lambda: matkron.kron_matvec(facs, x, out=out), kron_ref,
      facs, 1, B)
mats = [A.copy(), B.copy()]
terms = ((1.0, mats),)
check("kron_apply", lambda: _kron_cy.kron_apply(terms, x, np.empty_like(kron_ref)),
      kron_ref, mats, 0, A)
arrays = [A.copy(), B.copy(), A.copy()]
check("multi_dot", lambda: matkron.multi_dot(arrays), chain_ref, arrays, 1, B)
plan = matkron.chain_order([n, n, n, n])
check("ChainPlan.execute", lambda: plan.execute(arrays), chain_ref, arrays, 2, A)
print("ok")
"""


def test_entry_points_own_their_operands(tmp_path):
    # Another thread replaces the elements of the list a compiled entry point was given
    # while it computes without the GIL (this crashed kron_matvec: use after free).
    _run_script(_MUTATION_SCRIPT, tmp_path)


# -- matkron's own threads: 1, 2 and 4 threads give the single-thread results ----------------
#
# _kron_cy._force_threads(n) makes every product run on n of matkron's threads however small,
# so the splits (outer indices, a GEMM's free dimension, the own kernel's columns, the
# columns of by-column plans) run on the small shapes of the kernel suites. The split never
# cuts the contracted dimension, so each entry is summed in the same order: the results are
# bit-equal where the same code computes every piece (the registry's step kernels, asserted
# below on the reference rows). A BLAS may choose another kernel for a thinner block
# (OpenBLAS: its small-matrix kernels, GEMV for one column), which changes the rounding:
# BLAS steps are compared within the error bound of the product.

THREAD_COUNTS = (2, 4)
X_LAYOUTS = ("vector", "C", "F", "strided")
MULTI_SPECS = ([(2, 3), (3, 4), (4, 2), (1, 3), (3, 3)], [(3, 2), (2, 4), (4, 3), (2, 2)])


@pytest.fixture
def forced():
    yield _kron_cy._force_threads
    _kron_cy._force_threads(0)
    _kron_cy._set_planner(None, own_kernel=True)


def _operand(rng, spec, layout, dtype, m=9):
    n = columns(spec)
    if layout == "vector":
        return random_array(rng, n, dtype)
    return with_layout(random_array(rng, operand_shape(n, m), dtype), layout)


def _bound(factors, x):
    """(|F1| ⊗ … ⊗ |Fk|) |x|: the scale of a product's rounding error."""
    return kron_einsum([np.abs(to_dense(f)) for f in factors], np.abs(x)).real


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "spec", SHAPES + IDENTITY_SHAPES + list(STEP_SPECS) + list(MULTI_SPECS), ids=str
)
def test_threads_equal_single_thread(spec, dtype, forced, rng):
    factors = make_factors(rng, spec, dtype)
    for layout in X_LAYOUTS:
        # 9 columns: by-column plans split their columns on 2 and 4 threads (>= 2 each).
        x = _operand(rng, spec, layout, dtype)
        forced(1)
        y1 = matkron.kron_matvec(factors, x)
        assert_product(y1, factors, x, dtype)
        bound = _bound(factors, x)
        for t in THREAD_COUNTS:
            forced(t)
            yt = matkron.kron_matvec(factors, x)
            assert yt.dtype == y1.dtype and yt.shape == y1.shape
            assert_allclose_bound(yt, y1, bound, dtype)


VARIANTS = ("normal", "rotate-front", "rotate-back")


@pytest.mark.parametrize("spec", STEP_SPECS, ids=str)
def test_threads_bit_equal_on_step_kernels(spec, forced, rng):
    # Every step on the reference step kernel (plain C, columns independent): every plan
    # the variant constraints admit, on 2 and 4 threads, bit-equal to one thread.
    dtype = np.dtype("float64")
    factors = make_factors(rng, spec, dtype)
    for layout in X_LAYOUTS:
        x = _operand(rng, spec, layout, dtype, m=5)
        seen = set()
        for variants in itertools.product(VARIANTS, repeat=len(spec)):
            _kron_cy._set_planner(variants, own_kernel="reference_f64")
            plan = _kron_cy.kron_plan(tuple(factors), x)
            if plan in seen:
                continue
            seen.add(plan)
            forced(1)
            y1 = matkron.kron_matvec(factors, x)
            for t in THREAD_COUNTS:
                forced(t)
                np.testing.assert_array_equal(matkron.kron_matvec(factors, x), y1)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_threads_out_and_accumulate(layout, dtype, forced, rng):
    # Two terms through kron_apply: the first writes out (or adds to it), the second adds
    # (beta = 1), also when every step is split; and kron_matvec into out=.
    coeffs = (1.5 - 0.5j, -0.75 + 2j)
    terms = tuple((c, tuple(make_factors(rng, [(6, 5), (7, 4)], dtype))) for c in coeffs)
    x = with_layout(random_array(rng, (20, 6), dtype), layout)
    start = random_array(rng, (42, 6), dtype)
    dense = sum((c if dtype.kind == "c" else c.real) * kron_dense(f) for c, f in terms)
    bound = sum(abs(c) * kron_abs_dense(f) for c, f in terms) @ np.abs(x) + np.abs(start)
    for t in (1,) + THREAD_COUNTS:
        forced(t)
        for accumulate in (False, True):
            out = with_layout(start.copy(), layout)
            assert _kron_cy.kron_apply(terms, x, out, accumulate) is out
            expected = dense @ x + (start if accumulate else 0)
            assert_allclose_bound(out, expected, bound, dtype)
        out = with_layout(start.copy(), layout)
        assert matkron.kron_matvec(terms[0][1], x, out=out) is out
        assert_product(out, terms[0][1], x, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_threads_split_copies(layout, accumulate, dtype, forced, rng):
    # Operands of 300 rows or more: the copies of x into the workspace and of the result
    # out of it are split too (whole blocks of 64 rows per task, the last one short).
    factors = make_factors(rng, [(3, 2), (13, 12), (11, 13)], dtype)
    x = with_layout(random_array(rng, (2 * 12 * 13, 7), dtype), layout)
    start = with_layout(random_array(rng, (3 * 13 * 11, 7), dtype), layout)
    terms = ((0.5, tuple(factors)),)
    expected = 0.5 * kron_dense(factors) @ x + (start if accumulate else 0)
    bound = 0.5 * kron_abs_dense(factors) @ np.abs(x) + np.abs(start)
    for t in (1,) + THREAD_COUNTS:
        forced(t)
        out = start.copy(order="K") if layout != "strided" else with_layout(start.copy(), layout)
        _kron_cy.kron_apply(terms, x, out, accumulate)
        assert_allclose_bound(out, expected, bound, dtype)
        assert_product(matkron.kron_matvec(factors, x), factors, x, dtype)


@pytest.mark.parametrize("dtype", [np.dtype("float64"), np.dtype("complex64")], ids=str)
def test_threads_sum_of_kron_and_kronsum(dtype, forced, rng):
    A, B, C, D = (random_array(rng, s, dtype) for s in [(7, 7), (9, 9), (7, 7), (9, 9)])
    ops = [matkron.sum_of_kron([(A, B), (C, D)], [2.0, -1.0]), matkron.kronsum(B, A)]
    denses = [2 * np.kron(A, B) - np.kron(C, D), np.kron(np.eye(7), B) + np.kron(A, np.eye(9))]
    for op, dense in zip(ops, denses):
        for x in (random_array(rng, 63, dtype), random_array(rng, (63, 9), dtype)):
            forced(1)
            y1 = op @ x
            bound = np.abs(dense) @ np.abs(x)
            assert_allclose_bound(y1, dense @ x, bound, dtype)
            for t in THREAD_COUNTS:
                forced(t)
                assert_allclose_bound(op @ x, y1, bound, dtype)


def test_concurrent_callers_while_pool_runs(forced, rng):
    # Eight Python threads call products that ask for the pool (forced to 2 threads):
    # one call at a time gets it, the others run inline on their own threads.
    forced(2)
    spec = [(30, 25), (20, 28), (12, 14)]
    factors = make_factors(rng, spec, np.dtype("float64"))
    xs = [random_array(rng, (columns(spec), 1 + t % 4), np.float64) for t in range(N_THREADS)]
    refs = [kron_einsum(factors, x).real for x in xs]

    def work(t):
        for _ in range(6):
            y = matkron.kron_matvec(factors, xs[t])
            np.testing.assert_allclose(y, refs[t], rtol=1e-10, atol=1e-10 * np.abs(refs[t]).max())
            y0 = matkron.kron_matvec(factors, xs[t][:, 0])
            np.testing.assert_allclose(
                y0, refs[t][:, 0], rtol=1e-10, atol=1e-10 * np.abs(refs[t]).max()
            )
        return t

    _run_concurrently(work)


_BLAS_COUNT_SCRIPT = """
import numpy as np
import threadpoolctl
import matkron
from matkron import _kron_cy

def scipy_blas():
    return [d for d in threadpoolctl.threadpool_info()
            if d["user_api"] == "blas" and "scipy.libs" in d["filepath"]] or [
            d for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"][-1:]

rng = np.random.default_rng(3)
A, B = rng.standard_normal((120, 120)), rng.standard_normal((130, 130))
x = rng.standard_normal((120 * 130, 4))
T = rng.standard_normal((40, 40))
with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
    before = [d["num_threads"] for d in scipy_blas()]
    assert before == [2], before
    for t in (0, 1, 2):
        _kron_cy._force_threads(t)
        matkron.kron_matvec([A, B], x)
        matkron.kron_matvec([A, B], x[:, 0])
        matkron.sum_of_kron([(A, B), (A, B)]) @ x
    _kron_cy._force_threads(0)
    matkron.power_jacobian(T, 3) @ rng.standard_normal(1600)
    matkron.multi_dot([T, T, T, T])
    after = [d["num_threads"] for d in scipy_blas()]
    assert after == before, (before, after)
print("ok")
"""


def test_scipy_blas_thread_count_unchanged(tmp_path):
    # SciPy's OpenBLAS is held at one thread only while matkron runs: its count (2 here,
    # set by threadpoolctl) is the same after products, split or not.
    pytest.importorskip("threadpoolctl")
    _run_script(_BLAS_COUNT_SCRIPT, tmp_path)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_threads_by_column_plans(layout, forced, rng):
    # The measuring planner runs its candidates, among them columns one at a time (with x
    # copied first when BLAS cannot read it), on 2 and 4 forced threads: each run's result
    # is checked, accumulated terms included.
    from matkron import _kron_plan_cy

    old = _kron_plan_cy._set_measure_threshold(0.0)
    matkron.forget_wisdom()
    try:
        with matkron.planner("measure"):
            for t in THREAD_COUNTS:
                forced(t)
                for spec in ([(6, 5), (7, 4)], [(3, 4), (5, 2), (4, 4)]):
                    factors = make_factors(rng, spec, np.float64)
                    x = _operand(rng, spec, layout, np.float64, m=9)
                    seen_by_column = False
                    for _ in range(15):
                        assert_product(matkron.kron_matvec(factors, x), factors, x,
                                       np.dtype("float64"))
                        cands, _ = _kron_plan_cy._last_measurement()
                        seen_by_column |= any(c["by_column"] for c in cands)
                    assert seen_by_column
                    start = random_array(rng, (rows(spec), 9), np.float64)
                    for accumulate in (False, True):
                        out = start.copy(order="F")
                        terms = ((1.0, tuple(factors)),)
                        for _ in range(15):
                            out[...] = start
                            _kron_cy.kron_apply(terms, x, out, accumulate)
                            expected = kron_dense(factors) @ x + (start if accumulate else 0)
                            np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
                matkron.forget_wisdom()
    finally:
        _kron_plan_cy._set_measure_threshold(old)
        matkron.forget_wisdom()
