"""Several threads sharing one KronOperator (and one set of factors) at the same time.

Every thread checks each of its results against dense results computed beforehand.
"""

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import matkron

from .conftest import kron_dense, kron_einsum, random_array

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
    for _ in range(200):
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
import threading
import numpy as np
import matkron
from matkron import _kron_cy

rng = np.random.default_rng(2)
n = 200
A = rng.standard_normal((n, n))
B = rng.standard_normal((n, n))
x = rng.standard_normal((n * n, 4))
# (A ⊗ B) vec(X) = vec(B X Aᵀ), column by column
X = x.reshape(n, n, 4, order="F")
kron_ref = np.stack([(B @ X[:, :, c] @ A.T).ravel(order="F") for c in range(4)], axis=1)
chain_ref = A @ B @ A

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
