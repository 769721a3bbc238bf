"""Every public operator pickles and deep-copies, its products unchanged, also when pickle
hands its arrays back unaligned (protocol 5 with out-of-band buffers, as distributed
schedulers send them)."""

import copy
import pickle

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
from scipy.sparse.linalg import aslinearoperator

import matkron

from .conftest import frechet_dense

rng = np.random.default_rng(7)
A = rng.standard_normal((4, 4)) + 4 * np.eye(4)
B = rng.standard_normal((3, 3)) + 3 * np.eye(3)
H = A + A.T
S = scipy.sparse.csr_array(B)
D = np.array([1.0, 2.0, 3.0, 4.0])
I3, I4 = np.eye(3), np.eye(4)
R = rng.standard_normal((3, 4))


def _power3(X):
    """d(X³) on vec(E): E X² + X E X + X² E as a dense Kronecker sum."""
    return np.kron((X @ X).T, np.eye(len(X))) + np.kron(X.T, X) + np.kron(np.eye(len(X)), X @ X)


# (operator, its dense matrix built without matkron, whether it has solve)
CASES = {
    "kron": (lambda: matkron.kron(A, B), np.kron(A, B), True),
    "scaled sparse diagonal": (
        lambda: 2 * matkron.kron(A, S, matkron.diagonal(D)),
        2 * np.kron(np.kron(A, B), np.diag(D)), True),
    "operator factor": (
        lambda: matkron.kron(aslinearoperator(A + 1j * A), B).conj(),
        np.kron((A + 1j * A).conj(), B), False),
    "sum_of_kron": (
        lambda: matkron.sum_of_kron([(A, B), (A, matkron.identity(3))], [1.0, -2.0]),
        np.kron(A, B) - 2 * np.kron(A, I3), False),
    "kronsum": (lambda: matkron.kronsum(B, A), np.kron(I4, B) + np.kron(A, I3), True),
    "lyapunov": (lambda: matkron.lyapunov(A), np.kron(I4, A) + np.kron(A, I4), True),
    "sylvester inverse": (lambda: matkron.sylvester(A, B).inv(),
                          np.linalg.inv(np.kron(I3, A) + np.kron(B.T, I4)), True),
    "kronsum inverse": (lambda: matkron.kronsum(H, H).inv(),
                        np.linalg.inv(np.kron(np.eye(4), H) + np.kron(H, np.eye(4))), False),
    "sparse kronsum": (
        lambda: matkron.kronsum(scipy.sparse.csr_array(np.diag(np.arange(1.0, 10.0))), S),
        np.kron(I3, np.diag(np.arange(1.0, 10.0))) + np.kron(B, np.eye(9)), True),
    "power_jacobian binary": (lambda: matkron.power_jacobian(A, 3, method="binary"),
                              _power3(A), False),
    "power_jacobian eig": (lambda: matkron.power_jacobian(H, 3, method="eig"),
                           _power3(H), False),
    "jacobian_chain": (
        lambda: matkron.jacobian_chain([aslinearoperator(A), R, S], costs=[(5, 7), None, None]),
        B @ R @ A, False),
    "polynomial_jacobian": (lambda: matkron.polynomial_jacobian(A, [0.0, 0.0, 0.0, 1.0]),
                            _power3(A), False),
    "frechet expm": (lambda: matkron.frechet("expm", A),
                     frechet_dense(scipy.linalg.expm, A), False),
    "frechet sqrtm": (lambda: matkron.frechet("sqrtm", A),
                      frechet_dense(scipy.linalg.sqrtm, A), False),
    "frechet logm eig": (lambda: matkron.frechet("logm", H),
                         frechet_dense(scipy.linalg.logm, H), False),
    "derived (scaled, summed, transposed, composed)": (
        lambda: 2 * matkron.power_jacobian(A, 3) - matkron.frechet("expm", A).T
        @ matkron.power_jacobian(A, 3),
        2 * _power3(A) - frechet_dense(scipy.linalg.expm, A).T @ _power3(A), False),
    "frechet callable": (lambda: matkron.frechet(np.exp, H, fprime=np.exp),
                         frechet_dense(scipy.linalg.expm, H), False),
}


def _shifted_round_trip(op):
    """pickle protocol 5 with out-of-band buffers, each handed back one byte off."""
    buffers = []
    data = pickle.dumps(op, protocol=5, buffer_callback=buffers.append)
    shifted = []
    for buf in buffers:
        raw = buf.raw()
        holder = bytearray(raw.nbytes + 1)
        holder[1:] = raw
        shifted.append(memoryview(holder)[1:])
    return pickle.loads(data, buffers=shifted)


def _read_only_round_trip(op):
    """pickle protocol 5 with out-of-band buffers handed back read-only (bytes), as from
    a memory map or a shared-memory store."""
    buffers = []
    data = pickle.dumps(op, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=[bytes(buf.raw()) for buf in buffers])


ROUND_TRIPS = {
    "pickle": lambda op: pickle.loads(pickle.dumps(op)),
    "pickle 5 unaligned": _shifted_round_trip,
    "pickle 5 read-only": _read_only_round_trip,
    "deepcopy": copy.deepcopy,
}


@pytest.mark.parametrize("trip", sorted(ROUND_TRIPS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip(case, trip):
    make, dense, solves = CASES[case]
    op = make()
    x = rng.standard_normal((op.shape[1], 2))
    y = rng.standard_normal(op.shape[0])
    # Fill the caches first (adjoint, factorizations, plans): they must not break pickling.
    op @ x, op.H @ y
    if solves:
        op.solve(y)
    back = ROUND_TRIPS[trip](op)
    assert type(back) is type(op) and back.shape == op.shape and back.dtype == op.dtype
    tol = dict(rtol=1e-10, atol=1e-10 * np.abs(dense).max())
    np.testing.assert_allclose(back @ x, dense @ x, **tol)
    np.testing.assert_allclose(back.H @ y, dense.conj().T @ y, **tol)
    if solves:
        np.testing.assert_allclose(back.solve(y), np.linalg.solve(dense, y), rtol=1e-9,
                                   atol=1e-12)
