"""Every power API with misaligned and byte-swapped operands in every memory layout.

A, E and x are passed in C, Fortran, strided and negative-stride layouts, each aligned or
one byte off alignment, in native and non-native byte order. Oracles: the dense matrix
Σ_{k<n} (A^{n-1-k})ᵀ ⊗ A^k from np.kron and Σ_{k<n} A^k E A^{n-1-k} from explicit powers,
in complex128, never matkron.
"""

import numpy as np
import pytest

import matkron

from .conftest import rtol

# (given dtype, native dtype); '<f8' is native on the little-endian machines numpy supports
# here, the others are byte-swapped.
DTYPES = (">f8", ">c16", ">f4", "=f8")
LAYOUTS = ("C", "F", "strided", "negative")
N = 5
M = 3


def place(a, layout, dtype, aligned):
    """A new array equal to `a`, of `dtype` (any byte order), in `layout`, its data
    address aligned or one byte off alignment. Gaps of strided views hold NaN."""
    a = np.asarray(a)
    dtype = np.dtype(dtype)
    steps = (2, 3, 2)[: a.ndim]
    parent_shape = tuple(d * s for d, s in zip(a.shape, steps)) if layout == "strided" else a.shape
    size = int(np.prod(parent_shape)) * dtype.itemsize
    raw = np.zeros(size + 128, dtype=np.uint8)
    offset = (-raw.ctypes.data) % 64 + (0 if aligned else 1)
    parent = np.ndarray(parent_shape, dtype=dtype, buffer=raw, offset=offset,
                        order="F" if layout == "F" else "C")
    parent[...] = np.nan
    if layout == "strided":
        view = parent[tuple(slice(None, None, s) for s in steps)]
    elif layout == "negative":
        view = parent[(slice(None, None, -1),) * a.ndim]
    else:
        view = parent
    view[...] = a
    assert view.flags.aligned == aligned
    assert view.dtype == dtype
    return view


def powers(A, n):
    P = [np.eye(A.shape[0], dtype=np.complex128)]
    for _ in range(n):
        P.append(P[-1] @ A)
    return P


def dense_power_jacobian(A, n):
    """Σ_{k<n} (A^{n-1-k})ᵀ ⊗ A^k, the matrix of vec(E) ↦ vec(d(Aⁿ)[E])."""
    P = powers(np.asarray(A, dtype=np.complex128), n)
    return sum(np.kron(P[n - 1 - k].T, P[k]) for k in range(n))


def dense_frechet(A, E, n):
    P = powers(np.asarray(A, dtype=np.complex128), n)
    return sum(P[k] @ np.asarray(E, dtype=np.complex128) @ P[n - 1 - k] for k in range(n))


def bound_matrix(A, n):
    """Σ (|A|^{n-1-k})ᵀ ⊗ |A|^k: the size of the terms the result sums."""
    return np.abs(dense_power_jacobian(np.abs(np.asarray(A, dtype=np.complex128)), n))


def check(got, expected, scale, dtype):
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype).newbyteorder("="), (got.dtype, dtype)
    assert got.shape == expected.shape
    assert not np.isnan(got).any()
    err = np.abs(got.astype(np.complex128) - expected).max(initial=0.0)
    assert err <= 10 * rtol(got.dtype) * scale, (err, scale)


def vec(E):
    return np.asarray(E).ravel(order="F")


@pytest.mark.parametrize("aligned", [True, False], ids=["aligned", "misaligned"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_power_apis_in_every_layout(dtype, layout, aligned):
    native = np.dtype(dtype).newbyteorder("=")
    rng = np.random.default_rng(7)
    complex_ = native.kind == "c"
    Z = rng.standard_normal((M, M)) + (1j * rng.standard_normal((M, M)) if complex_ else 0)
    A0 = (0.3 * Z).astype(native)
    H0 = ((A0 + A0.conj().T) / 2).astype(native)
    E0 = (rng.standard_normal((M, M)) + (1j * rng.standard_normal((M, M)) if complex_ else 0))
    E0 = E0.astype(native)
    X0 = rng.standard_normal((M * M, 2)).astype(native)
    stack0 = np.stack([E0, 2 * E0.T]).astype(native)

    A, H = place(A0, layout, dtype, aligned), place(H0, layout, dtype, aligned)
    E, stack = place(E0, layout, dtype, aligned), place(stack0, layout, dtype, aligned)
    x, X = place(vec(E0), layout, dtype, aligned), place(X0, layout, dtype, aligned)
    coeffs = [0.5, -1.0, 0.25, 2.0]  # p(A) = 0.5 I − A + A²/4 + 2 A³

    for mat0, mat, methods in ((A0, A, ("naive", "horner", "binary", "dense", "auto")),
                               (H0, H, ("eig", "auto"))):
        K = dense_power_jacobian(mat0, N)
        scale = bound_matrix(mat0, N).max() * np.abs(X0).sum(axis=0).max() + 1
        for method in methods:
            J = matkron.power_jacobian(mat, N, method=method)
            assert J.A.flags.aligned and J.dtype == native
            check(J @ x, K @ vec(E0), scale, native)
            check(J.matmat(X), K @ X0, scale, native)
            check(J.T @ x, K.T @ vec(E0), scale, native)
            check(J.H @ x, K.conj().T @ vec(E0), scale, native)
            check(J.rmatvec(x), K.conj().T @ vec(E0), scale, native)
            check(J.todense(), K, scale, native)
            check(J.kron_terms().todense(), K, scale, native)
        # d p(A)[E] = Σ_j c_j d(A^j)[E]
        Kp = sum(c * dense_power_jacobian(mat0, j) for j, c in enumerate(coeffs) if j)
        for method in methods:
            if method == "binary":
                continue
            P = matkron.polynomial_jacobian(mat, coeffs, method=method)
            check(P @ x, Kp @ vec(E0), 4 * scale, native)
            check(P.H @ x, Kp.conj().T @ vec(E0), 4 * scale, native)
            check(P.matmat(X), Kp @ X0, 4 * scale, native)
        D = matkron.frechet_power(mat, E, N)
        check(D, dense_frechet(mat0, E0, N), scale, native)
        Ds = matkron.frechet_power(mat, stack, N)
        for b in range(2):
            check(Ds[b], dense_frechet(mat0, stack0[b], N), 2 * scale, native)


def test_misaligned_fortran_matrix_repro():
    # Issue 15: a Fortran-ordered misaligned A was handed to the kernel (np.asfortranarray
    # does not copy it) and rejected with "PowerPlan: a must be a Fortran-contiguous,
    # aligned, ..." by power_jacobian, frechet_power and polynomial_jacobian.
    buf = bytearray(33)
    buf[1:] = np.array([0.5, 0.25, -1.0, 0.75]).tobytes()
    A = np.frombuffer(buf, np.float64, 4, offset=1).reshape(2, 2).T
    assert A.flags.f_contiguous and not A.flags.aligned
    A0 = np.array(A)
    E = np.array([[1.0, 2.0], [3.0, 4.0]])
    K = dense_power_jacobian(A0, 3)
    np.testing.assert_allclose(matkron.frechet_power(A, E, 3), dense_frechet(A0, E, 3),
                               rtol=1e-14)
    for method in ("naive", "horner", "binary", "dense", "auto"):
        J = matkron.power_jacobian(A, 3, method=method)
        np.testing.assert_allclose(J @ vec(E), K @ vec(E), rtol=1e-14)
    P = matkron.polynomial_jacobian(A, [0.0, 1.0, 1.0])  # p(A) = A + A²
    Kp = dense_power_jacobian(A0, 1) + dense_power_jacobian(A0, 2)
    np.testing.assert_allclose(P @ vec(E), Kp @ vec(E), rtol=1e-14)
    # A C-ordered misaligned A: its transpose and adjoint were the failing ones.
    C = A.T
    assert C.flags.c_contiguous and not C.flags.aligned
    J = matkron.power_jacobian(C, 3)
    KC = dense_power_jacobian(np.array(C), 3)
    for got in (J.T @ vec(E), J.H @ vec(E), J.rmatvec(vec(E))):
        np.testing.assert_allclose(got, KC.T @ vec(E), rtol=1e-14)


def test_aligned_native_matrix_is_not_copied():
    A = np.asfortranarray(np.array([[0.5, 0.25], [-1.0, 0.75]]))
    assert matkron.power_jacobian(A, 3).A is A
    B = place(A, "F", np.float64, aligned=False)
    JB = matkron.power_jacobian(B, 3)
    assert JB.A.flags.aligned and not np.shares_memory(JB.A, B)
