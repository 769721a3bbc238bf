"""Kronecker factors of every kind (dense, identity, diagonal, sparse, LinearOperator) and the
structure and arithmetic of KronOperator, against np.kron of the dense equivalents and dense
numpy/scipy linear algebra.

Every oracle is built from dense copies of the factors made here (never from matkron):
``make_factor`` returns the factor and its dense matrix side by side.
"""

import concurrent.futures
import contextlib
import functools
import pickle

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from scipy.sparse.linalg import LinearOperator

import matkron

from .conftest import (
    DTYPES,
    assert_product,
    kron_dense,
    random_array,
    rtol,
    with_layout,
)

SPARSE_FORMATS = ("csr", "csc", "coo", "dia", "bsr", "lil", "dok")
# Formats whose index arrays can be int64.
INDEXED_FORMATS = ("csr", "csc", "coo", "dia", "bsr")
X_LAYOUTS = ("C", "F", "strided", "1d")


# -- factors and oracles -------------------------------------------------------------------


def oracle_dtype(dtype):
    return np.complex128 if np.dtype(dtype).kind == "c" else np.float64


def expected_dtype(*dtypes):
    """numpy promotion, then ints and bool to float64 and float16 to float32 (the rule
    matkron documents), written out here as the oracle."""
    t = np.result_type(*dtypes)
    if t.kind in "biu":
        return np.dtype(np.float64)
    if t == np.float16:
        return np.dtype(np.float32)
    return t


def sparse_pattern(rng, shape, dtype, density=0.5):
    """A random dense matrix with about (1 - density) of its entries zero."""
    a = random_array(rng, shape, dtype)
    a[rng.random(shape) > density] = 0
    return a


def as_sparse(a, fmt, container="array", index=np.int32):
    """The dense `a` in scipy.sparse format `fmt` ("csr", ...), *_array or *_matrix, with
    index arrays of dtype `index` (int64 only for formats with index arrays)."""
    m = getattr(scipy.sparse, f"{fmt}_{container}")(a)
    if np.dtype(index) == np.int64:
        if fmt in ("csr", "csc", "bsr"):
            m.indices = m.indices.astype(np.int64)
            m.indptr = m.indptr.astype(np.int64)
            assert m.indices.dtype == m.indptr.dtype == np.int64
        elif fmt == "coo":
            m.coords = tuple(c.astype(np.int64) for c in m.coords)
            assert all(c.dtype == np.int64 for c in m.coords)
        elif fmt == "dia":
            m.offsets = m.offsets.astype(np.int64)
        else:
            raise ValueError(fmt)
    return m


def custom_operator(a):
    """A plain LinearOperator for the dense `a` (matvec, matmat and their adjoints only)."""
    a = np.array(a)
    ah = a.conj().T
    return LinearOperator(
        a.shape, matvec=lambda v: a @ v, matmat=lambda v: a @ v,
        rmatvec=lambda v: ah @ v, rmatmat=lambda v: ah @ v, dtype=a.dtype,
    )


def make_factor(rng, kind, p, q, dtype, square_scale=False):
    """(factor, dense matrix) of the given kind.

    kind: "dense", "I" (identity), "diag", "linop", or a sparse format name ("csr", ...)
    with ":m" for the *_matrix class. With `square_scale`, square factors get 2n I added
    (well conditioned) and diagonals have modulus in [1, 3].
    """
    if kind == "I":
        assert p == q
        return matkron.identity(p), np.eye(p)
    if kind == "diag":
        assert p == q
        d = random_array(rng, p, dtype)
        if square_scale:
            d = (d / np.maximum(np.abs(d), 1e-3) * rng.uniform(1, 3, p)).astype(dtype)
        return matkron.diagonal(d), np.diag(d)
    fmt, _, container = kind.partition(":")
    if fmt in ("dense", "linop"):
        a = random_array(rng, (p, q), dtype)
    else:
        a = sparse_pattern(rng, (p, q), dtype)
    if square_scale and p == q:
        a = (a + 2 * p * np.eye(p)).astype(dtype)
    if fmt == "dense":
        return a, a
    if fmt == "linop":
        return custom_operator(a), a
    m = as_sparse(a, fmt, "matrix" if container == "m" else "array")
    return m, m.toarray()


def make_spec(rng, spec, dtype, square_scale=False):
    pairs = [make_factor(rng, kind, p, q, dtype, square_scale) for kind, p, q in spec]
    return [f for f, _ in pairs], [d for _, d in pairs]


def dense_kron(mats, dtype=np.complex128):
    return functools.reduce(np.kron, [np.asarray(m).astype(dtype) for m in mats])


def assert_close(actual, expected, dtype, scale=1.0):
    """max |actual - expected| <= rtol(dtype) * scale * max |expected| (norm-wise)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    a = actual.astype(np.complex128)
    e = expected.astype(np.complex128)
    tol = rtol(dtype) * scale * max(float(np.abs(e).max(initial=0.0)), 1e-30)
    err = float(np.abs(a - e).max(initial=0.0))
    assert err <= tol, f"error {err:.3g} > tolerance {tol:.3g}\n{actual}\n{expected}"


def spec_id(spec):
    return "-".join(f"{k}{p}x{q}" for k, p, q in spec)


def x_for(rng, n, dtype, layout, m=3):
    if layout == "1d":
        return random_array(rng, n, dtype)
    return with_layout(random_array(rng, (n, m), dtype), layout)


# -- products with every kind of factor ------------------------------------------------------

PRODUCT_SPECS = [
    [("csr", 3, 5)],
    [("diag", 4, 4)],
    [("linop", 4, 3)],
    [("bsr:m", 4, 6)],
    [("dense", 2, 3), ("coo", 4, 5)],
    [("diag", 3, 3), ("linop", 2, 4)],
    [("I", 2, 2), ("csc:m", 5, 3)],
    [("dok", 3, 2), ("lil:m", 4, 5)],
    [("dia", 3, 4), ("dense", 2, 5), ("diag", 3, 3)],
    [("bsr", 4, 2), ("linop", 3, 5), ("I", 2, 2)],
    [("csr:m", 2, 3), ("coo:m", 5, 4), ("dense", 1, 3)],
    [("lil", 2, 3), ("diag", 2, 2), ("dense", 3, 4), ("dok:m", 5, 2)],
    [("linop", 2, 3), ("csr", 3, 2), ("I", 2, 2), ("dense", 4, 3)],
    # Diagonals with dense factors and identities only: x scaled, then one kernel call.
    [("diag", 3, 3), ("dense", 2, 4)],
    [("dense", 3, 2), ("I", 2, 2), ("diag", 4, 4)],
    [("diag", 2, 2), ("diag", 3, 3), ("dense", 2, 3)],
    [("diag", 2, 2), ("I", 3, 3)],
]


@pytest.mark.parametrize("layout", X_LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", PRODUCT_SPECS, ids=spec_id)
def test_products(spec, dtype, layout, rng):
    factors, mats = make_spec(rng, spec, dtype)
    M = dense_kron(mats)
    K = matkron.kron(*factors)
    assert isinstance(K, matkron.KronOperator)
    assert K.shape == M.shape
    assert K.dtype == dtype
    assert len(K.factors) == len(factors)
    for got, given in zip(K.factors, factors):
        assert got is given
    assert K.args == K.factors

    x = x_for(rng, M.shape[1], dtype, layout)
    y = x_for(rng, M.shape[0], dtype, layout)
    assert_product(K @ x, mats, x, dtype, dense=M)
    assert_product(K.dot(x), mats, x, dtype, dense=M)
    if x.ndim == 1:
        assert_product(K.matvec(x), mats, x, dtype, dense=M)
        assert_product(K.rmatvec(y), [m.conj().T for m in mats], y, dtype, dense=M.conj().T)
    else:
        assert_product(K.matmat(x), mats, x, dtype, dense=M)
        assert_product(K.rmatmat(y), [m.conj().T for m in mats], y, dtype,
                       dense=M.conj().T)
    assert_product(K.H @ y, [m.conj().T for m in mats], y, dtype, dense=M.conj().T)
    # The adjoint identity <K x, y> = <x, K^H y>.
    lhs = np.vdot(y, K @ x)
    rhs = np.vdot(K.H @ y, x)
    scale = np.abs(y).ravel() @ (np.abs(dense_kron([np.abs(m) for m in mats])) @ np.abs(
        x)).ravel()
    assert abs(lhs - rhs) <= 10 * rtol(dtype) * scale

    assert_product(matkron.kron_matvec(factors, x), mats, x, dtype, dense=M)
    shape = (M.shape[0],) + x.shape[1:]
    for order in ("C", "F"):
        out = np.full(shape, np.nan, dtype=dtype, order=order)
        result = matkron.kron_matvec(factors, x, out=out)
        assert result is out
        assert_product(out, mats, x, dtype, dense=M)


def test_diagonals_with_dense_factors_mixed_dtypes_and_scalars(rng):
    # The diagonal way (x scaled, one kernel call) with promotion, a coefficient, rows
    # read at a stride and columns of every order, against the dense product.
    d = np.array([1.5, -2.0, 0.5], dtype=np.float32)
    a = random_array(rng, (2, 4), np.float64)
    M = np.kron(np.diag(d).astype(np.float64), a)
    K = (2 - 1j) * matkron.kron(matkron.diagonal(d), a)
    base = random_array(rng, (24, 6), np.complex128)
    for x in (base[::2, 1], base[::2, ::2], np.asfortranarray(base[::2, :3]), base[::2].T.T):
        got = K @ x
        assert got.dtype == np.complex128
        assert_close(got, (2 - 1j) * (M @ x), np.complex128, 10)
    x = base[::2, :2]
    assert_close(matkron.kron_matvec([matkron.diagonal(d), a], x), M @ x, np.complex128, 10)


def test_diagonal_plans_are_kept_per_dtype_and_dimension(rng):
    # An operator keeps what its diagonal products derive from the factors, per dtype and
    # dimension of x: calls alternating between them (and a pickled copy, which starts
    # without) each match the dense product.
    d = np.array([0.5, -1.0, 2.0, 3.0])
    a = random_array(rng, (3, 2), np.float64)
    M = np.kron(np.kron(a, np.diag(d)), np.eye(2))
    K = matkron.kron(a, matkron.diagonal(d), matkron.identity(2))
    for op in (K, pickle.loads(pickle.dumps(K))):
        for _ in range(2):
            for dtype in (np.float64, np.float32, np.complex128, np.float64):
                for shape in ((16,), (16, 3), (16,)):
                    x = random_array(rng, shape, dtype)
                    got = op @ x
                    assert got.dtype == np.result_type(np.float64, dtype)
                    assert_close(got, M @ x, got.dtype, 10)


SPARSE_CASES = [(fmt, container, index) for fmt in SPARSE_FORMATS
                for container in ("array", "matrix")
                for index in ((np.int32, np.int64) if fmt in INDEXED_FORMATS else (np.int32,))]


@pytest.mark.parametrize("fmt,container,index", SPARSE_CASES,
                         ids=lambda v: np.dtype(v).name if isinstance(v, type) else v)
def test_every_sparse_format(fmt, container, index, rng):
    for dtype in (np.float64, np.complex64):
        _every_sparse_format(fmt, container, index, rng, dtype)


def _every_sparse_format(fmt, container, index, rng, dtype):
    # Square and well conditioned: solve, determinant, norms through the sparse factor.
    a = sparse_pattern(rng, (4, 4), dtype) + 8 * np.eye(4)
    s = as_sparse(a.astype(dtype), fmt, container, index)
    d = np.array([1.0, -2.0, 3.0], dtype=dtype)
    K = matkron.kron(s, matkron.diagonal(d))
    M = np.kron(a, np.diag(d)).astype(np.complex128)
    b = random_array(rng, (12, 2), dtype)
    assert_close(K.solve(b), np.linalg.solve(M, b), dtype, 100)
    assert_close(K.det(), np.linalg.det(M), dtype, 100)
    assert_close(K.trace(), np.trace(M), dtype, 10)
    assert_close(K.norm(1), np.linalg.norm(M, 1), dtype, 10)
    assert_close(K.diagonal(), np.diagonal(M), dtype, 10)

    a = sparse_pattern(rng, (4, 6), dtype)
    s = as_sparse(a, fmt, container, index)
    b = random_array(rng, (3, 5), dtype)
    for factors, mats in (([s, b], [a, b]), ([b, s], [b, a]),
                          ([matkron.diagonal(np.arange(1, 3, dtype=dtype)), s],
                           [np.diag(np.arange(1, 3)), a])):
        K = matkron.kron(*factors)
        M = dense_kron(mats)
        assert [f is s for f in K.factors] == [f is s for f in factors]
        for x in (random_array(rng, M.shape[1], dtype),
                  random_array(rng, (M.shape[1], 2), dtype)):
            assert_product(K @ x, mats, x, dtype, dense=M)
            assert_product(matkron.kron_matvec(factors, x), mats, x, dtype, dense=M)
        y = random_array(rng, (M.shape[0], 2), dtype)
        assert_product(K.H @ y, [m.conj().T for m in mats], y, dtype, dense=M.conj().T)


INT_SPECS = [
    # (factor kinds with their dtypes, operand dtype)
    ([("dense", np.int64), ("csr", np.float32)], np.float32),
    ([("csr", np.int32), ("diag", np.float32)], np.float32),
    ([("diag", np.int16), ("dense", np.complex64)], np.complex64),
    ([("dense", np.int8), ("coo", np.float32)], np.float32),
    ([("coo", np.uint8), ("dense", np.float32)], np.float32),
    ([("csc", np.bool_), ("I", None)], np.float32),
    ([("dense", np.int32), ("diag", np.int64)], np.int64),
    ([("csr", np.int8), ("dense", np.int8)], np.complex64),
]


@pytest.mark.parametrize("spec,xdtype", INT_SPECS,
                         ids=lambda v: str(v) if not isinstance(v, list) else
                         "-".join(f"{k}{np.dtype(t) if t else ''}" for k, t in v))
def test_integer_and_bool_factors(spec, xdtype, rng):
    """Integer and bool factors of every kind follow numpy's promotion, ints to float64."""
    shapes = [(2, 3), (3, 2)]
    factors, mats = [], []
    for (kind, t), (p, q) in zip(spec, shapes):
        if kind in ("diag", "I"):
            q = p
        f, m = make_factor(rng, kind, p, q, t or np.float64)
        factors.append(f)
        mats.append(m)
    M = dense_kron(mats)
    x = random_array(rng, (M.shape[1], 2), xdtype)
    want = expected_dtype(*[np.dtype(t) for _, t in spec if t is not None], np.dtype(xdtype))
    K = matkron.kron(*factors)
    y = K @ x
    assert y.dtype == want, (y.dtype, want)
    assert_product(y, mats, x, want, dense=M)
    y = matkron.kron_matvec(factors, x)
    assert y.dtype == want
    assert_product(y, mats, x, want, dense=M)
    own = expected_dtype(*[np.dtype(t) for _, t in spec if t is not None])
    assert K.dtype == own


@pytest.mark.parametrize(
    "sdtype", ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
               "uint64", "float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("xdtype", ["float32", "float64", "complex64"])
def test_sparse_dtype_rules(sdtype, xdtype, rng):
    a = sparse_pattern(rng, (3, 4), np.float64)
    a = (3 * a).round().astype(sdtype) if np.dtype(sdtype).kind in "iub" else a.astype(sdtype)
    if np.dtype(sdtype).kind == "u":
        a = np.abs(a)
    s = scipy.sparse.csr_array(a)
    x = random_array(rng, 4, xdtype)
    want = expected_dtype(np.dtype(sdtype), np.dtype(xdtype))
    y = matkron.kron(s) @ x
    assert y.dtype == want
    assert_product(y, [a], x, want)
    assert matkron.kron_matvec([s], x).dtype == want
    assert matkron.kron(s).dtype == expected_dtype(np.dtype(sdtype))


def test_kron_operator_factor_is_flattened(rng):
    """A KronOperator given as a factor is flattened, and its coefficient carried."""
    A = random_array(rng, (2, 3), np.float64)
    s = as_sparse(sparse_pattern(rng, (3, 2), np.float64), "csc")
    D = matkron.diagonal(np.array([1.0, -2.0]))
    inner = 2.5 * matkron.kron(A, s)
    K = matkron.kron(inner, D)
    assert len(K.factors) == 3
    assert K.factors[0] is A and K.factors[1] is s and K.factors[2] is D
    assert K.coeff == 2.5
    M = 2.5 * dense_kron([A, s.toarray(), np.diag([1.0, -2.0])])
    x = random_array(rng, (M.shape[1], 2), np.float64)
    assert_close(K @ x, M @ x, np.float64, 10)
    assert_close(matkron.kron_matvec([inner, D], x), M @ x, np.float64, 10)
    out = np.empty((M.shape[0], 2), order="F")
    assert matkron.kron_matvec([inner, D], x, out=out) is out
    assert_close(out, M @ x, np.float64, 10)
    # Twice nested, with a LinearOperator factor.
    L = custom_operator(random_array(rng, (2, 2), np.float64))
    K2 = matkron.kron(-1 * matkron.kron(K, L))
    assert K2.coeff == -2.5
    M2 = -np.kron(M, L.matmat(np.eye(2)))
    x2 = random_array(rng, M2.shape[1], np.float64)
    assert_close(K2 @ x2, M2 @ x2, np.float64, 10)


@pytest.mark.parametrize("spec", [
    [("csr", 0, 3), ("diag", 2, 2)],
    [("csc", 3, 0), ("dense", 2, 2)],
    [("diag", 0, 0), ("coo", 2, 3)],
    [("linop", 2, 3), ("csr", 0, 2)],
], ids=spec_id)
def test_zero_size(spec, rng):
    factors, mats = make_spec(rng, spec, np.float64)
    M = dense_kron(mats)
    K = matkron.kron(*factors)
    assert K.shape == M.shape
    for x in (np.ones(M.shape[1]), np.ones((M.shape[1], 2))):
        y = K @ x
        assert y.shape == (M.shape[0],) + x.shape[1:]
        np.testing.assert_array_equal(y, M.real @ x)
        np.testing.assert_array_equal(matkron.kron_matvec(factors, x), M.real @ x)


# -- structure -------------------------------------------------------------------------------

SQUARE_SPECS = [
    [("csr", 4, 4)],
    [("diag", 3, 3), ("csc", 4, 4)],
    [("dense", 2, 2), ("I", 3, 3), ("coo:m", 3, 3)],
    [("bsr", 2, 2), ("diag", 3, 3), ("dense", 2, 2), ("dia", 2, 2)],
    [("I", 2, 2), ("diag", 2, 2)],
    [("lil", 3, 3), ("dok:m", 2, 2)],
]


def coefficient(dtype, nontrivial):
    if not nontrivial:
        return 1
    return (1.5 - 0.5j) if np.dtype(dtype).kind == "c" else -1.5


def _check_dense(K, M, dtype, rng):
    assert_close(K.toarray(), M, dtype)
    assert_close(K.todense(), M, dtype)


def _check_solve(K, M, dtype, rng):
    N = M.shape[0]
    for b in (random_array(rng, N, dtype), random_array(rng, (N, 2), dtype)):
        x = K.solve(b)
        assert x.shape == b.shape
        assert x.dtype == dtype
        assert_close(x, np.linalg.solve(M, b), dtype, 10 * N)


def _check_inv(K, M, dtype, rng):
    N = M.shape[0]
    inv = K.inv()
    assert isinstance(inv, matkron.KronOperator)
    Minv = np.linalg.inv(M)
    b = random_array(rng, (N, 2), dtype)
    assert_close(inv @ b, Minv @ b, dtype, 10 * N)
    assert_close(inv.H @ b, Minv.conj().T @ b, dtype, 10 * N)
    assert_close(inv.todense(), Minv, dtype, 10 * N)
    # The inverse keeps the structure (a sparse factor's inverse too): it solves by a
    # product, its determinant and norms are the factors', its inverse is K again.
    assert_close(inv.solve(b), M @ b, dtype, 10 * N)
    assert_close((K @ inv) @ b, b, dtype, 100 * N)  # the mixed product, any factor kinds
    assert_close((inv @ K) @ b, b, dtype, 100 * N)
    assert_close(inv.inv() @ b, M @ b, dtype, 10 * N)
    assert_close((K**-2) @ b, Minv @ (Minv @ b), dtype, 100 * N)
    sign, logabs = inv.slogdet()
    esign, elogabs = np.linalg.slogdet(Minv)
    assert abs(sign - esign) <= 10 * N * rtol(dtype)
    assert abs(logabs - elogabs) <= 10 * N * rtol(dtype) * max(1.0, abs(elogabs))
    for order in (2, 1, "fro"):
        want = np.linalg.norm(Minv, order)
        assert abs(inv.norm(order) - want) <= 10 * N * rtol(dtype) * want


def _check_det(K, M, dtype, rng):
    N = M.shape[0]
    sign, logabs = K.slogdet()
    esign, elogabs = np.linalg.slogdet(M)
    assert abs(sign - esign) <= 10 * N * rtol(dtype), (sign, esign)
    assert abs(logabs - elogabs) <= 10 * N * rtol(dtype) * max(1.0, abs(elogabs))
    det = K.det()
    edet = np.linalg.det(M)
    assert abs(det - edet) <= 10 * N * rtol(dtype) * abs(edet), (det, edet)


def _check_trace_norms(K, M, dtype, rng):
    N = M.shape[0]
    assert_close(K.trace(), np.trace(M), dtype, N)
    for ord in (None, "fro", "nuc", 1, 2, np.inf):
        assert_close(K.norm(ord), np.linalg.norm(M, ord), dtype, N)
    assert_close(K.norm(), np.linalg.norm(M), dtype, N)


def _check_cond_svd(K, M, dtype, rng):
    N = M.shape[0]
    for ord in (None, 2):
        assert_close(K.cond(ord), np.linalg.cond(M, ord), dtype, 10 * N)
    assert_close(K.svdvals(), scipy.linalg.svdvals(M), dtype, N)


def _check_cond_norms(K, M, dtype, rng):
    N = M.shape[0]
    for ord in ("fro", 1, np.inf):
        assert_close(K.cond(ord), np.linalg.cond(M, ord), dtype, 10 * N)


def _check_diagonal_rank(K, M, dtype, rng):
    N = M.shape[0]
    assert_close(K.diagonal(), np.diagonal(M), dtype, N)
    assert K.rank() == np.linalg.matrix_rank(M) == N


SQUARE_CHECKS = {
    "dense": _check_dense, "solve": _check_solve, "inv": _check_inv, "det": _check_det,
    "trace-norm": _check_trace_norms, "cond-svdvals": _check_cond_svd,
    "cond-fro-1-inf": _check_cond_norms, "diagonal-rank": _check_diagonal_rank,
}


@pytest.mark.parametrize("check", SQUARE_CHECKS)
@pytest.mark.parametrize("c1", (False, True), ids=("c=1", "c!=1"))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", SQUARE_SPECS, ids=spec_id)
def test_structure_square(spec, dtype, c1, check, rng):
    factors, mats = make_spec(rng, spec, dtype, square_scale=True)
    c = coefficient(dtype, c1)
    K = matkron.kron(*factors)
    if c1:
        K = c * K
    assert K.dtype == dtype
    M = c * dense_kron(mats, oracle_dtype(dtype))
    SQUARE_CHECKS[check](K, M, dtype, rng)


RECT_SPECS = [
    [("dense", 2, 3)],
    [("csr", 3, 5), ("diag", 2, 2)],
    [("dense", 4, 2), ("I", 2, 2), ("coo", 2, 3)],
    [("csc:m", 2, 4), ("dense", 3, 2), ("diag", 2, 2), ("dok", 1, 3)],
    [("lil", 5, 2), ("bsr", 2, 3)],
]


@pytest.mark.parametrize("c1", (False, True), ids=("c=1", "c!=1"))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", RECT_SPECS, ids=spec_id)
def test_structure_rectangular(spec, dtype, c1, rng):
    factors, mats = make_spec(rng, spec, dtype)
    c = coefficient(dtype, c1)
    K = matkron.kron(*factors)
    if c1:
        K = c * K
    M = c * dense_kron(mats, oracle_dtype(dtype))
    n = min(M.shape)
    assert_close(K.toarray(), M, dtype)
    for ord in (None, "fro", "nuc", 1, 2, np.inf):
        assert_close(K.norm(ord), np.linalg.norm(M, ord), dtype, n)
    s = scipy.linalg.svdvals(M)
    assert_close(K.svdvals(), s, dtype, n)
    assert_close(K.diagonal(), np.diagonal(M), dtype, n)
    assert K.rank() == np.linalg.matrix_rank(M)
    rank = np.linalg.matrix_rank(M)
    for ord in (None, 2):
        if rank < n:  # structurally (or by chance) rank deficient: cond is inf or huge
            assert K.cond(ord) > 1 / rtol(dtype)
        else:
            assert_close(K.cond(ord), s[0] / s[-1], dtype, 10 * n)


def _rank_deficient(rng, kind, n, dtype):
    """(factor, dense) of order n and rank n - 1, exactly."""
    if kind == "diag":
        d = random_array(rng, n, dtype) + 3
        d[1] = 0
        return matkron.diagonal(d), np.diag(d)
    a = random_array(rng, (n, n), dtype) + 2 * n * np.eye(n, dtype=dtype)
    if kind == "dense":
        a[-1] = a[0]  # a repeated row
        return a, a
    a[1] = 0  # a zero row
    s = as_sparse(a, kind)
    return s, a


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kinds", [("diag", "dense"), ("csr", "I"), ("dense", "csc", "diag"),
                                   ("coo", "dense")], ids="-".join)
def test_rank_deficient(kinds, dtype, rng):
    factors, mats = [], []
    for i, kind in enumerate(kinds):
        n = 3 + i
        if kind == "I":
            f, m = matkron.identity(n), np.eye(n)
        elif i == 0 or kind == "diag":
            f, m = _rank_deficient(rng, kind, n, dtype)
        else:
            f, m = make_factor(rng, kind, n, n, dtype, square_scale=True)
        factors.append(f)
        mats.append(m)
    K = matkron.kron(*factors)
    M = dense_kron(mats, oracle_dtype(dtype))
    assert K.rank() == np.linalg.matrix_rank(M)
    assert (2 * K).rank() == np.linalg.matrix_rank(M)
    assert (0 * K).rank() == 0
    sign, logabs = K.slogdet()
    assert sign == 0 and logabs == -np.inf
    assert K.det() == 0
    assert_close(K.svdvals(), scipy.linalg.svdvals(M), dtype, M.shape[0])
    with pytest.raises(np.linalg.LinAlgError, match=r"factor \d .* is singular"):
        K.solve(np.ones(M.shape[0], dtype=dtype))
    with pytest.raises(np.linalg.LinAlgError, match=r"factor \d .* is singular"):
        K.inv()


# -- arithmetic --------------------------------------------------------------------------------

ALGEBRA_SPECS = [
    [("dense", 3, 3), ("diag", 2, 2)],
    [("csr", 3, 3), ("I", 2, 2), ("dense", 2, 2)],
    [("diag", 2, 2), ("coo", 3, 3)],
]


@pytest.mark.parametrize("dtype", (np.float64, np.complex64), ids=str)
@pytest.mark.parametrize("spec", ALGEBRA_SPECS, ids=spec_id)
def test_scalar_arithmetic(spec, dtype, rng):
    factors, mats = make_spec(rng, spec, dtype, square_scale=True)
    K = matkron.kron(*factors)
    M = dense_kron(mats, oracle_dtype(dtype))
    N = M.shape[0]
    c = coefficient(dtype, True)
    x = random_array(rng, (N, 2), dtype)
    for op, e in ((c * K, c), (K * c, c), (K / c, 1 / c), (-K, -1), (c * (K / c), 1),
                  (np.float32(2) * K, 2)):
        assert isinstance(op, matkron.KronOperator)
        assert np.isclose(op.coeff, e)
        Me = e * M
        assert_close(op.todense(), Me, dtype, N)
        assert_close(op @ x, Me @ x, dtype, 10 * N)
        assert_close(op.H @ x, Me.conj().T @ x, dtype, 10 * N)
        assert_close(op.solve(x), np.linalg.solve(Me, x), dtype, 10 * N)
        assert_close(op.det(), np.linalg.det(Me), dtype, 10 * N)
        inv = op.inv()
        assert isinstance(inv, matkron.KronOperator)
        assert_close(inv @ x, np.linalg.solve(Me, x), dtype, 10 * N)
        assert_close(op.trace(), np.trace(Me), dtype, N)
        assert_close(op.norm(2), np.linalg.norm(Me, 2), dtype, N)


POWER_SPECS = [
    [("dense", 3, 3), ("diag", 2, 2), ("I", 2, 2)],
    [("csr", 3, 3), ("dense", 2, 2)],
    [("diag", 2, 2), ("csc", 2, 2)],
]


@pytest.mark.parametrize("p", (0, 1, 2, 3, -1, -2))
@pytest.mark.parametrize("dtype", (np.float64, np.complex64), ids=str)
@pytest.mark.parametrize("spec", POWER_SPECS, ids=spec_id)
def test_power(spec, dtype, p, rng):
    factors, mats = make_spec(rng, spec, dtype, square_scale=True)
    K = 2 * matkron.kron(*factors)
    M = 2 * dense_kron(mats, oracle_dtype(dtype))
    N = M.shape[0]
    Kp = K**p
    assert isinstance(Kp, matkron.KronOperator)
    Mp = np.linalg.matrix_power(M, p)
    assert_close(Kp.todense(), Mp, dtype, 10 * N)
    x = random_array(rng, (N, 2), dtype)
    assert_close(Kp @ x, Mp @ x, dtype, 10 * N)
    assert_close(Kp.H @ x, Mp.conj().T @ x, dtype, 10 * N)
    if p == 0:
        np.testing.assert_array_equal(Kp @ x, x)
    assert K ** np.int64(p) is not None


MATMUL_CASES = {
    "dense@sparse": ([("dense", 2, 3), ("csr", 4, 2)], [("coo", 3, 5), ("dense", 2, 3)]),
    "diag@dense": ([("diag", 3, 3), ("dense", 2, 4)], [("dense", 3, 2), ("diag", 4, 4)]),
    "sparse@sparse": ([("csc", 2, 3), ("csr:m", 3, 3)], [("dia", 3, 4), ("diag", 3, 3)]),
    "identity@any": ([("I", 3, 3), ("I", 2, 2), ("diag", 2, 2)],
                     [("csr", 3, 2), ("dense", 2, 3), ("bsr", 2, 2)]),
    "any@identity": ([("dense", 2, 3), ("csr", 2, 2), ("diag", 2, 2)],
                     [("I", 3, 3), ("I", 2, 2), ("I", 2, 2)]),
    "linop": ([("linop", 2, 3), ("dense", 2, 2)], [("dense", 3, 2), ("linop", 2, 3)]),
}


@pytest.mark.parametrize("dtype", (np.float32, np.complex128), ids=str)
@pytest.mark.parametrize("case", MATMUL_CASES)
def test_matmul_conforming(case, dtype, rng):
    spec1, spec2 = MATMUL_CASES[case]
    f1, m1 = make_spec(rng, spec1, dtype)
    f2, m2 = make_spec(rng, spec2, dtype)
    c1, c2 = 2, coefficient(dtype, True)
    K1 = c1 * matkron.kron(*f1)
    K2 = matkron.kron(*f2) * c2
    M = (c1 * dense_kron(m1)) @ (c2 * dense_kron(m2))
    R = K1 @ K2
    assert isinstance(R, matkron.KronOperator)
    assert R.shape == M.shape
    assert len(R.factors) == len(spec1)
    assert np.isclose(R.coeff, c1 * c2)
    x = random_array(rng, (M.shape[1], 2), dtype)
    bound = np.abs(c1 * dense_kron(m1)) @ np.abs(c2 * dense_kron(m2))
    assert_close(R @ x, M @ x, dtype, 10 * bound.max() / np.abs(M).max())
    assert_close(R.todense(), M, dtype, 10 * bound.max() / np.abs(M).max())
    y = random_array(rng, M.shape[0], dtype)
    assert_close(R.H @ y, M.conj().T @ y, dtype, 10 * bound.max() / np.abs(M).max())
    assert_close(K1.dot(K2) @ x, M @ x, dtype, 10 * bound.max() / np.abs(M).max())


NONCONFORMING = {
    "counts differ": ([("dense", 6, 6)], [("diag", 2, 2), ("csr", 3, 3)]),
    "counts differ, rectangular": ([("csr", 3, 2), ("dense", 4, 3)],
                                   [("dense", 2, 3), ("diag", 3, 3), ("I", 1, 1),
                                    ("coo", 1, 1)]),
    "pairs differ": ([("dense", 2, 3), ("csr", 3, 2)], [("diag", 2, 2), ("dense", 3, 4)]),
    "linop, pairs differ": ([("linop", 2, 2), ("csc", 2, 3)], [("dense", 3, 2),
                                                                ("diag", 2, 2)]),
}


@pytest.mark.parametrize("dtype", (np.float64, np.complex64), ids=str)
@pytest.mark.parametrize("case", NONCONFORMING)
def test_matmul_nonconforming(case, dtype, rng):
    spec1, spec2 = NONCONFORMING[case]
    f1, m1 = make_spec(rng, spec1, dtype)
    f2, m2 = make_spec(rng, spec2, dtype)
    K1 = matkron.kron(*f1)
    K2 = -2 * matkron.kron(*f2)
    M = dense_kron(m1) @ (-2 * dense_kron(m2))
    R = K1 @ K2
    assert isinstance(R, LinearOperator)
    assert R.shape == M.shape
    x = random_array(rng, (M.shape[1], 3), dtype)
    bound = np.abs(dense_kron(m1)) @ np.abs(2 * dense_kron(m2))
    scale = 10 * bound.max() / (np.abs(M).max() or 1)
    assert_close(R @ x, M @ x, dtype, scale)
    assert_close(R.matvec(x[:, 0]), M @ x[:, 0], dtype, scale)
    y = random_array(rng, M.shape[0], dtype)
    assert_close(R.H @ y, M.conj().T @ y, dtype, scale)


TRANSPOSE_SPECS = [
    [("dense", 2, 3), ("csr", 4, 5)],
    [("diag", 3, 3), ("coo:m", 2, 4), ("linop", 3, 2)],
    [("I", 2, 2), ("csc", 3, 2), ("dense", 1, 3)],
]


@pytest.mark.parametrize("dtype", (np.float32, np.complex128), ids=str)
@pytest.mark.parametrize("spec", TRANSPOSE_SPECS, ids=spec_id)
def test_transpose_adjoint_conj(spec, dtype, rng):
    factors, mats = make_spec(rng, spec, dtype)
    c = coefficient(dtype, True)
    K = c * matkron.kron(*factors)
    M = c * dense_kron(mats)
    absM = np.abs(M)
    for op, Me, bound in ((K.T, M.T, absM.T), (K.H, M.conj().T, absM.T),
                          (K.conj(), M.conj(), absM), (K.T.T, M, absM),
                          (K.H.H, M, absM), (K.adjoint(), M.conj().T, absM.T),
                          (K.transpose(), M.T, absM.T)):
        assert isinstance(op, matkron.KronOperator)
        assert op.shape == Me.shape
        x = random_array(rng, (Me.shape[1], 2), dtype)
        y = random_array(rng, Me.shape[0], dtype)
        for v, want, b in ((x, Me @ x, bound @ np.abs(x)),
                           (x[:, 0], Me @ x[:, 0], bound @ np.abs(x[:, 0]))):
            got = op @ v
            assert got.dtype == dtype
            assert np.all(np.abs(got - want) <= 10 * rtol(dtype) * b + 1e-30)
        assert np.all(np.abs(op.H @ y - Me.conj().T @ y)
                      <= 10 * rtol(dtype) * (bound.T @ np.abs(y)) + 1e-30)
    if not any(k == "linop" for k, _, _ in spec):
        assert_close(K.T.todense(), M.T, dtype)
        assert_close(K.H.todense(), M.conj().T, dtype)
        assert_close(K.conj().todense(), M.conj(), dtype)


@pytest.mark.parametrize("dtype", (np.float64, np.complex64), ids=str)
def test_derived_factors_describe_the_operator(dtype, rng):
    """The factors (and coeff) of derived operators are those of the derived operator:
    coeff * kron(*op.factors) is op, for every kind of factor."""
    spec1 = [("csr", 3, 3), ("diag", 2, 2), ("dense", 2, 2), ("coo", 2, 2)]
    spec2 = [("csc", 3, 3), ("dense", 2, 2), ("diag", 2, 2), ("csr", 2, 2)]
    f1, m1 = make_spec(rng, spec1, dtype, square_scale=True)
    f2, m2 = make_spec(rng, spec2, dtype, square_scale=True)
    c = coefficient(dtype, True)
    K1 = c * matkron.kron(*f1)
    K2 = matkron.kron(*f2)
    M1 = c * dense_kron(m1)
    M2 = dense_kron(m2)
    cases = {"K.T": (K1.T, M1.T), "K.H": (K1.H, M1.conj().T), "K.conj()": (K1.conj(),
             M1.conj()), "K1 @ K2": (K1 @ K2, M1 @ M2), "K ** 2": (K1**2, M1 @ M1),
             "-K": (-K1, -M1)}
    failures = []
    for name, (op, want) in cases.items():
        got = op.coeff * kron_dense(op.factors)
        err = np.abs(got - want).max()
        if not err <= 100 * rtol(dtype) * np.abs(want).max():
            failures.append(f"{name}: coeff * kron(*factors) differs by {err:.3g}; factor "
                            f"shapes {[f.shape for f in op.factors]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("dtype", (np.float32, np.complex128), ids=str)
def test_sums_of_kron_operators(dtype, rng):
    f1, m1 = make_spec(rng, [("csr", 3, 4), ("diag", 2, 2)], dtype)
    f2, m2 = make_spec(rng, [("dense", 2, 2), ("coo:m", 3, 4)], dtype)
    f3, m3 = make_spec(rng, [("linop", 3, 4), ("I", 2, 2)], dtype)
    K1, K2, K3 = (matkron.kron(*f) for f in (f1, f2, f3))
    M1, M2, M3 = (dense_kron(m) for m in (m1, m2, m3))
    c = coefficient(dtype, True)
    cases = [(K1 + K2, M1 + M2), (2 * (K1 + K2), 2 * (M1 + M2)), (K1 - K2, M1 - M2),
             ((K1 + K2) * c, c * (M1 + M2)), (c * K1 + K3, c * M1 + M3),
             (-(K1 + K2 + K3), -(M1 + M2 + M3)), ((K1 + K2) / 2, (M1 + M2) / 2)]
    for op, M in cases:
        assert isinstance(op, matkron.SumOfKronOperator), type(op)
        bound = np.abs(M1) + np.abs(M2) + np.abs(M3)
        for x in (random_array(rng, (8, 2), dtype), random_array(rng, 8, dtype)):
            got = op @ x
            assert np.all(np.abs(got - M @ x) <= 10 * rtol(dtype) * (bound @ np.abs(x)))
        y = random_array(rng, 6, dtype)
        assert np.all(np.abs(op.H @ y - M.conj().T @ y)
                      <= 10 * rtol(dtype) * (bound.T @ np.abs(y)))
        assert np.all(np.abs(op.rmatvec(y) - M.conj().T @ y)
                      <= 10 * rtol(dtype) * (bound.T @ np.abs(y)))


# -- sums of Kronecker products and Kronecker sums -------------------------------------------


@pytest.mark.parametrize("layout", X_LAYOUTS)
@pytest.mark.parametrize("dtype", (np.float32, np.complex128), ids=str)
def test_sum_of_kron_mixed_kinds(dtype, layout, rng):
    specs = [
        [("csr", 3, 4), ("dense", 2, 3)],
        [("diag", 2, 2), ("linop", 3, 6)],
        [("coo:m", 6, 4), ("dense", 1, 3)],
        [("diag", 2, 2), ("I", 3, 3), ("bsr", 1, 2)],
        [("dense", 2, 2), ("I", 3, 3), ("dia", 1, 2)],
        [("diag", 2, 2), ("dense", 3, 6)],
        [("dense", 1, 2), ("I", 3, 3), ("diag", 2, 2)],
    ]
    terms, mats = zip(*(make_spec(rng, s, dtype) for s in specs))
    coeffs = [1, -2, 0.5, 3, coefficient(dtype, True), -1.5, coefficient(dtype, True)]
    S = matkron.sum_of_kron([tuple(t) for t in terms], coeffs)
    M = sum(c * dense_kron(m) for c, m in zip(coeffs, mats))
    bound = sum(abs(c) * np.abs(dense_kron(m)) for c, m in zip(coeffs, mats))
    assert S.shape == M.shape == (6, 12)
    x = x_for(rng, 12, dtype, layout)
    y = x_for(rng, 6, dtype, layout)
    got = S @ x
    assert got.dtype == dtype
    assert np.all(np.abs(got - M @ x) <= 10 * rtol(dtype) * (bound @ np.abs(x)))
    assert np.all(np.abs(S.H @ y - M.conj().T @ y) <= 10 * rtol(dtype) * (bound.T @ np.abs(y)))
    if y.ndim == 1:
        assert np.all(np.abs(S.rmatvec(y) - M.conj().T @ y)
                      <= 10 * rtol(dtype) * (bound.T @ np.abs(y)))
    assert_close(S.todense(), M, dtype, 10)


def _kronsum_case(rng, kind, n, dtype, hermitian=False):
    a = sparse_pattern(rng, (n, n), dtype)
    if hermitian:
        a = a + a.conj().T
    a = (a + 3 * n * np.eye(n)).astype(dtype)
    if kind == "diag":
        d = np.diag(a).copy()
        return matkron.diagonal(d), np.diag(d)
    if kind == "dense":
        return a, a
    s = as_sparse(a, kind)
    return s, s.toarray()


KRONSUM_CASES = {
    "sparse,dense": [("csr", 3), ("dense", 4)],
    "dense,sparse": [("dense", 2), ("coo", 3)],
    "sparse,diag": [("csc", 3), ("diag", 2)],
    "three": [("csr", 2), ("dia", 3), ("diag", 2)],
}


@pytest.mark.parametrize("hermitian", (False, True), ids=("general", "hermitian"))
@pytest.mark.parametrize("dtype", (np.float64, np.complex64), ids=str)
@pytest.mark.parametrize("case", KRONSUM_CASES)
def test_kronsum_sparse(case, dtype, hermitian, rng):
    pairs = [_kronsum_case(rng, k, n, dtype, hermitian) for k, n in KRONSUM_CASES[case]]
    mats = [m for _, m in pairs]
    K = matkron.kronsum(*[f for f, _ in pairs])
    # kronsum(A, B) = kron(I_n, A) + kron(B, I_m), as scipy.sparse.kronsum; left to right.
    M = mats[0].astype(np.complex128)
    for B in mats[1:]:
        M = np.kron(np.eye(B.shape[0]), M) + np.kron(B, np.eye(M.shape[0]))
    if len(mats) == 2:
        ref = scipy.sparse.kronsum(scipy.sparse.csr_array(mats[0]),
                                   scipy.sparse.csr_array(mats[1])).toarray()
        np.testing.assert_allclose(M, ref)
    N = M.shape[0]
    x = random_array(rng, (N, 2), dtype)
    assert_close(K @ x, M @ x, dtype, 10)
    assert_close(K.H @ x, M.conj().T @ x, dtype, 10)
    assert_close(K.todense(), M, dtype, 10)
    for b in (random_array(rng, N, dtype), random_array(rng, (N, 3), dtype)):
        got = K.solve(b)
        assert got.shape == b.shape and got.dtype == dtype
        assert_close(got, np.linalg.solve(M, b), dtype, 10 * N)


def _kronsum_dense(mats):
    """kronsum(A1, A2, …) as a dense matrix, left to right as scipy.sparse.kronsum."""
    M = mats[0]
    for B in mats[1:]:
        M = np.kron(np.eye(B.shape[0]), M) + np.kron(B, np.eye(M.shape[0]))
    return M


@pytest.mark.parametrize("hermitian", (False, True), ids=("general", "hermitian"))
@pytest.mark.parametrize("dtype", (np.float64, np.complex128), ids=str)
def test_kronsum_of_a_kron_operator_keeps_its_structure(dtype, hermitian, rng):
    # A KronOperator as one Kronecker-sum factor (it cannot be flattened there): products
    # through it, and solve, det and inv through its structure and dense matrix.
    # Spectra near 3 (A, B) and 8 (C): no two eigenvalue sums cancel.
    A = random_array(rng, (2, 2), dtype) / 4 + 3 * np.eye(2)
    B = random_array(rng, (3, 3), dtype) / 4 + 3 * np.eye(3)
    C = random_array(rng, (4, 4), dtype) / 4 + 8 * np.eye(4)
    if hermitian:
        A, B, C = (A + A.conj().T) / 2, (B + B.conj().T) / 2, (C + C.conj().T) / 2
    inner = matkron.kron(matkron.kron(A, B), matkron.identity(2))  # 12×12, nested
    dense_inner = np.kron(np.kron(A, B), np.eye(2))
    for K, M, given in ((matkron.kronsum(inner, C), _kronsum_dense([dense_inner, C]), 0),
                        (matkron.sylvester(C, inner), _kronsum_dense([C, dense_inner.T]),
                         None),
                        (matkron.lyapunov(inner), _kronsum_dense(
                            [dense_inner, dense_inner.conj()]), 0)):
        if given is not None:
            assert K.factors[given] is inner
        x = random_array(rng, (M.shape[0], 2), dtype)
        assert_close(K @ x, M @ x, dtype, 10)
        assert_close(K.solve(x), np.linalg.solve(M, x), dtype, 100 * M.shape[0])
        sign, logabs = K.slogdet()
        esign, elogabs = np.linalg.slogdet(M)
        assert abs(logabs - elogabs) <= 1e-8 * max(1.0, abs(elogabs))
        assert abs(sign - esign) <= 1e-8
        assert_close(K.inv() @ x, np.linalg.solve(M, x), dtype, 100 * M.shape[0])


def test_kronsum_with_identity_and_operator_factors(rng):
    A = random_array(rng, (3, 3), np.float64) + 3 * np.eye(3)
    M = _kronsum_dense([A, np.eye(2)])
    x = random_array(rng, (6, 2), np.float64)
    K = matkron.kronsum(A, matkron.identity(2))
    assert_close(K @ x, M @ x, np.float64, 10)
    assert_close(K.solve(x), np.linalg.solve(M, x), np.float64, 100)
    # aslinearoperator of an array is that array; an opaque operator can only be applied.
    K = matkron.kronsum(scipy.sparse.linalg.aslinearoperator(A), np.eye(2))
    assert_close(K @ x, M @ x, np.float64, 10)
    assert_close(K.solve(x), np.linalg.solve(M, x), np.float64, 100)
    K = matkron.kronsum(LinearOperator((3, 3), matvec=lambda v: A @ v, dtype=np.float64),
                        np.eye(2))
    assert_close(K @ x, M @ x, np.float64, 10)
    with pytest.raises(TypeError, match=r"solve needs the structure .* mats\[0\] is a "
                                        "LinearOperator"):
        K.solve(x)
    with pytest.raises(TypeError, match=r"mats\[0\] is a LinearOperator"):
        K.slogdet()


@pytest.mark.parametrize("dtype", (np.float64, np.complex128), ids=str)
@pytest.mark.parametrize("kinds", [("csr", "csc"), ("dense", "coo"), ("bsr", "diag")],
                         ids="-".join)
def test_sylvester_lyapunov_sparse(kinds, dtype, rng):
    A, a = _kronsum_case(rng, kinds[0], 3, dtype)
    B, b = _kronsum_case(rng, kinds[1], 4, dtype)
    S = matkron.sylvester(A, B)
    M = np.kron(np.eye(4), a) + np.kron(b.T, np.eye(3))
    x = random_array(rng, (12, 2), dtype)
    assert_close(S @ x, M @ x, dtype, 10)
    C = random_array(rng, (3, 4), dtype)
    X = S.solve(C.ravel(order="F")).reshape((3, 4), order="F")
    assert_close(X, scipy.linalg.solve_sylvester(a, b, C), dtype, 100)
    assert_close(a @ X + X @ b, C, dtype, 100)

    L = matkron.lyapunov(A)
    ML = np.kron(np.eye(3), a) + np.kron(a.conj(), np.eye(3))
    x = random_array(rng, (9, 2), dtype)
    assert_close(L @ x, ML @ x, dtype, 10)
    Q = random_array(rng, (3, 3), dtype)
    X = L.solve(Q.ravel(order="F")).reshape((3, 3), order="F")
    assert_close(X, scipy.linalg.solve_continuous_lyapunov(a, Q), dtype, 100)
    assert_close(L.solve(Q.ravel(order="F")), np.linalg.solve(ML, Q.ravel(order="F")),
                 dtype, 100)


# -- errors ----------------------------------------------------------------------------------


def test_nonconforming_operand_names_shapes(rng):
    s = as_sparse(sparse_pattern(rng, (3, 4), np.float64), "csr")
    D = matkron.diagonal(np.ones(2))
    L = custom_operator(np.ones((2, 5)))
    K = matkron.kron(s, D, L)
    assert K.shape == (12, 40)
    for call in (lambda x: K @ x, lambda x: K.matvec(x),
                 lambda x: matkron.kron_matvec([s, D, L], x)):
        with pytest.raises(ValueError, match=r"x has length 39; expected 40 = 4\*2\*5"):
            call(np.ones(39))
    with pytest.raises(ValueError, match=r"out has shape \(11,\); expected \(12,\)"):
        matkron.kron_matvec([s, D, L], np.ones(40), out=np.empty(11))
    with pytest.raises(ValueError, match=r"b has length 5; expected 4"):
        matkron.kron(D, D).solve(np.ones(5))
    # A sum of Kronecker products whose terms differ in shape names both.
    with pytest.raises(ValueError) as info:
        matkron.sum_of_kron([(s, np.eye(1)), (D, np.eye(1))])
    assert "(3, 4)" in str(info.value) and "(2, 2)" in str(info.value), info.value
    # Kronecker sums: a non-square sparse factor is named with its shape.
    with pytest.raises(ValueError, match=r"mats\[0\].*\(3, 4\)"):
        matkron.kronsum(s, np.eye(2))
    with pytest.raises(ValueError, match=r"A.*\(3, 4\)"):
        matkron.sylvester(s, np.eye(2))
    # Structure of a non-square operator names the factor and its shape.
    with pytest.raises(ValueError, match=r"factor 0.*\(3, 4\)"):
        matkron.kron(s, D).solve(np.ones(6))
    with pytest.raises(ValueError, match=r"factor 0.*\(3, 4\)"):
        matkron.kron(s, D).det()


def test_matmul_size_mismatch_raises(rng):
    s = as_sparse(sparse_pattern(rng, (3, 4), np.float64), "csr")
    K = matkron.kron(s, matkron.diagonal(np.ones(2)))
    with pytest.raises(ValueError):
        K @ matkron.kron(np.ones((3, 3)))
    with pytest.raises(ValueError):
        K @ matkron.kron(np.ones((3, 3)), np.ones((2, 2)))


STRUCTURE_METHODS = {
    "solve": lambda K: K.solve(np.ones(K.shape[0])),
    "inv": lambda K: K.inv(),
    "det": lambda K: K.det(),
    "slogdet": lambda K: K.slogdet(),
    "trace": lambda K: K.trace(),
    "norm": lambda K: K.norm(),
    "norm-2": lambda K: K.norm(2),
    "norm-nuc": lambda K: K.norm("nuc"),
    "norm-1": lambda K: K.norm(1),
    "cond": lambda K: K.cond(),
    "cond-1": lambda K: K.cond(1),
    "svdvals": lambda K: K.svdvals(),
    "diagonal": lambda K: K.diagonal(),
    "rank": lambda K: K.rank(),
    "negative power": lambda K: K**-1,
}


@pytest.mark.parametrize("method", STRUCTURE_METHODS)
def test_operator_factor_structure_raises(method, rng):
    s = as_sparse(sparse_pattern(rng, (3, 3), np.float64) + 6 * np.eye(3), "csr")
    L = custom_operator(random_array(rng, (2, 2), np.float64) + 4 * np.eye(2))
    K = 2 * matkron.kron(s, matkron.diagonal([1.0, 2.0]), L)
    with pytest.raises(TypeError, match=r"factor 2 \(C in kron\(A, B, C\)\).*LinearOperator"):
        STRUCTURE_METHODS[method](K)
    # Products still work.
    M = 2 * dense_kron([s.toarray(), np.diag([1.0, 2.0]), L.matmat(np.eye(2))])
    x = random_array(rng, 12, np.float64)
    assert_close(K @ x, M @ x, np.float64, 10)


def test_operator_factor_positive_power(rng):
    # A positive power needs no structure: the operator factor's own power.
    L = custom_operator(random_array(rng, (2, 2), np.float64))
    A = random_array(rng, (3, 3), np.float64)
    M = np.kron(A, L.matmat(np.eye(2)))
    P = (2 * matkron.kron(A, L)) ** 3
    x = random_array(rng, 6, np.float64)
    assert_close(P @ x, 8 * np.linalg.matrix_power(M, 3) @ x, np.float64, 100)


@pytest.mark.parametrize("method", ("toarray", "todense"))
def test_operator_factor_todense_applies_it(method, rng):
    # The dense matrix of an operator factor is its matmat on the identity: products
    # need no structure, so todense works where solve and det refuse.
    M = random_array(rng, (2, 3), np.float64)
    L = custom_operator(M)
    A = random_array(rng, (2, 2), np.float64)
    got = getattr(matkron.kron(A, L), method)()
    np.testing.assert_allclose(got, np.kron(A, M), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("d,exc", [
    (np.ones((2, 2)), ValueError),
    (np.ones((1, 3)), ValueError),
    (3.0, ValueError),
    ("abc", TypeError),
    (["a", "b"], TypeError),
    (np.array([1, 2], dtype=object), TypeError),
    (np.array([1, 2], dtype=np.longdouble), TypeError),
    (None, TypeError),
], ids=["2-D", "row", "0-D", "string", "strings", "object", "longdouble", "None"])
def test_diagonal_rejects_bad_d(d, exc):
    with pytest.raises(exc, match="d"):
        matkron.diagonal(d)


def _object_sparse():
    m = scipy.sparse.csr_array(np.eye(2))
    m.data = m.data.astype(object)
    return m


@pytest.mark.parametrize("make", [
    _object_sparse,
    lambda: scipy.sparse.csr_array(np.eye(2, dtype=np.longdouble)),
    lambda: scipy.sparse.coo_matrix(np.eye(2, dtype=np.clongdouble)),
], ids=["object", "longdouble", "clongdouble"])
def test_unsupported_sparse_dtype(make):
    m = make()
    with pytest.raises(TypeError, match=r"factors\[1\].*dtype"):
        matkron.kron(np.eye(2), m)
    with pytest.raises(TypeError, match="dtype"):
        matkron.kron_matvec([np.eye(2), m], np.ones(4))
    with pytest.raises(TypeError, match="dtype"):
        matkron.sum_of_kron([(np.eye(2), m)])
    with pytest.raises(TypeError, match="dtype"):
        matkron.kronsum(m, np.eye(2))


def test_unsupported_linear_operator_dtype():
    L = LinearOperator((2, 2), matvec=lambda v: v, dtype=np.longdouble)
    with pytest.raises(TypeError, match=r"factors\[0\].*dtype"):
        matkron.kron(L, np.eye(2))


# -- no input mutation --------------------------------------------------------------------------


def _snapshot(f):
    """Deep copies of everything a factor holds."""
    if isinstance(f, np.ndarray):
        return ("array", f.copy(), f.flags.writeable)
    if isinstance(f, matkron.DiagonalFactor):
        return ("diag", np.array(f.d, copy=True))
    if scipy.sparse.issparse(f):
        fmt = f.format
        if fmt in ("csr", "csc", "bsr"):
            parts = (f.data.copy(), f.indices.copy(), f.indptr.copy())
        elif fmt == "coo":
            parts = (f.data.copy(),) + tuple(c.copy() for c in f.coords)
        elif fmt == "dia":
            parts = (f.data.copy(), f.offsets.copy())
        elif fmt == "lil":
            parts = ([list(r) for r in f.rows], [list(d) for d in f.data])
        elif fmt == "dok":
            parts = (dict(f.items()),)
        else:
            raise ValueError(fmt)
        return ("sparse", fmt, f.shape, f.dtype, parts)
    return ("other", id(f))


def _same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b,
                                                                               equal_nan=True)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _canonical_and_not():
    dense = np.array([[1.0, 0, 2, 0], [0, 3, 0, 4], [5, 0, 0, 6]])
    yield "csr", scipy.sparse.csr_array(dense)
    yield "csc:m", scipy.sparse.csc_matrix(dense)
    yield "coo", scipy.sparse.coo_array(dense)
    yield "dia:m", scipy.sparse.dia_matrix(dense)
    yield "bsr", scipy.sparse.bsr_array(dense)
    yield "lil", scipy.sparse.lil_array(dense)
    yield "dok:m", scipy.sparse.dok_matrix(dense)


def _noncanonical():
    """Sparse inputs with unsorted indices and duplicate entries (both legal in scipy)."""
    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    indices = np.array([2, 0, 2, 3, 1], dtype=np.int32)
    indptr = np.array([0, 3, 3, 5], dtype=np.int32)
    yield "csr_array", scipy.sparse.csr_array((data.copy(), indices.copy(), indptr.copy()),
                                              shape=(3, 4))
    yield "csr_matrix", scipy.sparse.csr_matrix((data.copy(), indices.copy(), indptr.copy()),
                                                shape=(3, 4))
    yield "csc_array", scipy.sparse.csc_array((data.copy(), np.array([2, 0, 2, 1, 0]),
                                               np.array([0, 3, 3, 5, 5])), shape=(3, 4))
    yield "coo_array", scipy.sparse.coo_array(
        (data.copy(), (np.array([2, 0, 2, 1, 2]), np.array([1, 0, 1, 3, 3]))), shape=(3, 4))
    yield "bsr_array", scipy.sparse.bsr_array(
        (data.reshape(5, 1, 1).copy(), indices.copy(), indptr.copy()), shape=(3, 4))


def _exercise(factors, square_factors, rng):
    """Run products, adjoints, structure and arithmetic on operators of the factors.

    Each step runs on its own and an exception in one does not stop the others: this
    exercise looks only for writes to the inputs (the other tests check the results)."""
    x = random_array(rng, (int(np.prod([f.shape[1] for f in factors])), 2), np.float64)
    x.setflags(write=False)
    rows = int(np.prod([f.shape[0] for f in factors]))
    b = random_array(rng, (int(np.prod([f.shape[0] for f in square_factors])), 2), np.float64)
    b.setflags(write=False)
    K = matkron.kron(*factors)
    Q = matkron.kron(*square_factors)
    steps = [
        lambda: K @ x, lambda: K @ x[:, 0], lambda: K.H @ random_array(rng, rows, np.float64),
        lambda: K.T @ random_array(rng, rows, np.float64),
        lambda: matkron.kron_matvec(factors, x),
        lambda: matkron.kron_matvec(factors, x, out=np.empty((rows, 2), order="F")),
        K.todense, lambda: K.norm(2), lambda: K.norm(1), K.svdvals, K.diagonal, K.rank,
        lambda: (K + 2 * K) @ x,
        lambda: matkron.sum_of_kron([tuple(factors), tuple(factors)], [1.0, -0.5]) @ x,
        lambda: Q.solve(b), lambda: Q.solve(b[:, 0]), lambda: Q.inv() @ b, Q.det, Q.slogdet,
        Q.trace, Q.cond, lambda: Q.cond(1), lambda: Q.norm("nuc"), lambda: (Q**2) @ b,
        lambda: (Q**-1) @ b, lambda: (Q @ Q) @ b, lambda: (Q.H @ Q) @ b,
        lambda: Q.conj() @ b,
        lambda: matkron.kronsum(*square_factors) @ b,
        lambda: matkron.kronsum(*square_factors).solve(b),
        lambda: matkron.sylvester(*square_factors).solve(b[:, 0]),
        lambda: matkron.lyapunov(square_factors[0]).solve(np.ones(9)),
    ]
    for step in steps:
        with contextlib.suppress(Exception):  # results and errors are checked elsewhere
            step()


@pytest.mark.parametrize("name,sparse", list(_canonical_and_not()), ids=lambda v:
                         v if isinstance(v, str) else "")
def test_no_input_mutation(name, sparse, rng):
    dense = random_array(rng, (2, 3), np.float64)
    d = matkron.diagonal(np.array([2.0, -1.0, 3.0]))
    sq_sparse = scipy.sparse.csr_array(np.array([[4.0, 1.0, 0.0], [0.0, 5.0, 1.0],
                                                 [1.0, 0.0, 6.0]]))
    sq_sparse = as_sparse(sq_sparse.toarray(), name.split(":")[0],
                          "matrix" if name.endswith(":m") else "array")
    sq_dense = random_array(rng, (3, 3), np.float64) + 6 * np.eye(3)
    factors = [sparse, dense, d]
    square = [sq_sparse, sq_dense]
    inputs = factors + square
    before = [_snapshot(f) for f in inputs]
    _exercise(factors, square, rng)
    matkron.kron(sq_sparse, d).solve(np.ones(9))
    for f, b in zip(inputs, before):
        assert _same(_snapshot(f), b), f"{f!r} was modified"


@pytest.mark.parametrize("name,sparse", list(_noncanonical()), ids=lambda v:
                         v if isinstance(v, str) else "")
def test_noncanonical_sparse_not_mutated(name, sparse, rng):
    """Unsorted indices and duplicates: the factor means the sum of its duplicates, and the
    caller's arrays stay as they were."""
    expected = sparse.toarray()  # scipy's own meaning: duplicates sum
    before = _snapshot(sparse)
    K = matkron.kron(sparse, np.eye(2))
    after = _snapshot(sparse)
    x = random_array(rng, 8, np.float64)
    assert_close(K @ x, np.kron(expected, np.eye(2)) @ x, np.float64, 10)
    assert _same(after, before), f"kron modified the {name} it was given"
    matkron.kron_matvec([sparse, np.eye(2)], x)
    assert _same(_snapshot(sparse), before), f"kron_matvec modified the {name}"


# -- threads -----------------------------------------------------------------------------------


def test_threads_share_one_operator(rng):
    s, sd = make_factor(rng, "csr", 5, 5, np.float64, square_scale=True)
    d, dd = make_factor(rng, "diag", 3, 3, np.float64, square_scale=True)
    a, ad = make_factor(rng, "dense", 4, 4, np.float64, square_scale=True)
    c, cd = make_factor(rng, "coo", 2, 2, np.complex128, square_scale=True)
    K = matkron.kron(s, d, a, c)
    M = dense_kron([sd, dd, ad, cd])
    N = M.shape[0]
    xs = [random_array(rng, (N, 1 + i % 3) if i % 2 else N, np.complex128) for i in range(32)]
    products = [M @ x for x in xs]
    adjoints = [M.conj().T @ x for x in xs]
    solves = [np.linalg.solve(M, x) for x in xs]

    def work(i):
        x = xs[i]
        return K @ x, K.H @ x, K.solve(x)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, list(range(len(xs))) * 3))
    for j, (y, yh, z) in enumerate(results):
        i = j % len(xs)
        assert_close(y, products[i], np.complex128, 100)
        assert_close(yh, adjoints[i], np.complex128, 100)
        assert_close(z, solves[i], np.complex128, 1000)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("orders", [(9, 8), (12, 3, 10), (8, 1)])
def test_kronsum_of_sparse_factors_in_one_pass(orders, dtype, rng):
    # Sparse, diagonal and identity factors with a fastest factor of order >= 8 run in
    # the fused Kronecker-sum kernel: against Σ_t I ⊗ … ⊗ A_t ⊗ … ⊗ I, densely.
    kinds = ["csr", "diag", "I", "csc"]
    factors, dense = [], []
    for t, n in enumerate(orders):
        kind = kinds[t % len(kinds)] if t else "csr"
        if kind == "diag":
            d = random_array(rng, n, dtype)
            factors.append(matkron.diagonal(d))
            dense.append(np.diag(d))
        elif kind == "I":
            factors.append(matkron.identity(n))
            dense.append(np.eye(n))
        else:
            a = sparse_pattern(rng, (n, n), dtype, density=0.3)
            factors.append(as_sparse(a, kind))
            dense.append(a)
    L = matkron.kronsum(*factors)
    N = L.shape[0]
    M = np.zeros((N, N), dtype=np.complex128)
    for t, a in enumerate(dense):
        term = np.ones((1, 1))
        for s in range(len(orders) - 1, -1, -1):  # A_1 acts along the fastest index
            term = np.kron(term, a if s == t else np.eye(orders[s]))
        M += term
    for x in (random_array(rng, N, dtype), random_array(rng, (N, 3), dtype),
              np.asfortranarray(random_array(rng, (N, 2), dtype))):
        assert_close(L @ x, M @ x, dtype, 10)
        assert_close(L.H @ x, M.conj().T @ x, dtype, 10)


def test_operator_factor_running_a_product_itself(rng):
    # A LinearOperator factor whose matmat runs another structured product (with its own
    # operator factor) in the same thread: the inner product must not take the outer
    # one's scratch memory.
    A, B, C = (random_array(rng, (n, n), np.float64) for n in (3, 4, 5))
    inner = matkron.kron(custom_operator(A), matkron.diagonal([1.0, 2.0, 3.0, 4.0]))
    outer = matkron.kron(inner, C)  # flattened: operator, diagonal, dense
    wrapped = matkron.kron(scipy.sparse.linalg.aslinearoperator(inner), custom_operator(C))
    M = np.kron(np.kron(A, np.diag([1.0, 2.0, 3.0, 4.0])), C)
    x = random_array(rng, (60, 3), np.float64)
    for op in (outer, wrapped):
        assert_close(op @ x, M @ x, np.float64, 10)
        assert_close(op @ np.asfortranarray(x), M @ x, np.float64, 10)


def test_sparse_column_index_out_of_range_is_refused():
    # scipy.sparse does not check column indices by default; the kernels trust them.
    bad = scipy.sparse.csr_array(
        (np.ones(1), np.array([10**6], np.int32), np.array([0, 1, 1], np.int32)), shape=(2, 2)
    )
    with pytest.raises(ValueError, match=r"factors\[0\] has an index out of range"):
        matkron.kron_matvec([bad, np.eye(3)], np.ones(6))
    with pytest.raises(ValueError, match="mats.1. has an index out of range"):
        matkron.kronsum(scipy.sparse.csr_array(np.eye(8)), bad)
    # Other formats are checked before matkron converts them (the conversion itself would
    # read out of bounds).
    bad_csc = scipy.sparse.csc_array(
        (np.ones(1), np.array([10**6], np.int32), np.array([0, 1, 1], np.int32)), shape=(2, 2)
    )
    with pytest.raises(ValueError, match=r"factors\[0\] has an index out of range"):
        matkron.kron_matvec([bad_csc, np.eye(3)], np.ones(6))


def test_determinants_of_large_diagonal_and_sparse_factors():
    # O(n) from the diagonal (or splu's U): never an n×n dense matrix.
    n = 200_000
    d = np.linspace(1.0, 2.0, n)
    sign, logdet = matkron.kron(matkron.diagonal(d), -np.eye(1)).slogdet()
    assert sign == 1 and np.isclose(logdet, np.sum(np.log(d)), rtol=1e-12)
    T = scipy.sparse.diags_array([-1.0, 3.0, -1.0], offsets=[-1, 0, 1], shape=(n, n))
    sign, logdet = matkron.kron(T).slogdet()
    # det of the tridiagonal Toeplitz T: t_k = 3 t_{k-1} - t_{k-2}, computed in logs.
    r = (3 + np.sqrt(5)) / 2
    assert sign == 1 and np.isclose(logdet, (n + 1) * np.log(r) - np.log(np.sqrt(5)),
                                    rtol=1e-10)


@pytest.mark.parametrize("case", ["spread", "negative", "zero", "beyond 2**120", "float32",
                                  "complex"])
def test_diagonal_log_determinant_against_dense(case):
    # 1001 entries: the float64 sum takes logs of products of 8 entries (and a tail) when
    # all lie within 2**±120, and logs of single entries otherwise.
    rng = np.random.default_rng(7)
    u = np.exp(rng.uniform(-60.0, 60.0, 1001))
    if case == "negative":
        u[rng.choice(u.size, 7, replace=False)] *= -1
    elif case == "zero":
        u[500] = 0.0
    elif case == "beyond 2**120":
        u[[3, 900]] = 1e-200, 1e250
    elif case == "float32":
        u = np.exp(rng.uniform(-20.0, 20.0, 1001)).astype(np.float32)
    elif case == "complex":
        u = u * np.exp(1j * rng.uniform(-np.pi, np.pi, u.size))
    sign, logdet = matkron.kron(matkron.diagonal(u)).slogdet()
    expected_sign, expected = np.linalg.slogdet(np.diag(u.astype(np.result_type(u, 1.0))))
    scale = np.sum(np.abs(np.log(np.abs(u[u != 0]))))
    tol = (1e-5 if u.dtype == np.float32 else 1e-13) * scale
    if case == "zero":
        assert sign == 0 and logdet == -np.inf
    else:
        assert abs(logdet - expected) <= tol, (logdet, expected)
        assert np.isclose(sign, expected_sign, rtol=1e-10 if case == "complex" else 0)


def test_cond_of_an_empty_operator_raises():
    K = matkron.kron(matkron.diagonal(np.array([])), np.eye(2))
    for ord in (None, 2, 1, "fro", np.inf, "nuc"):
        with pytest.raises(np.linalg.LinAlgError):
            K.cond(ord)


def test_coefficients_are_carried_exactly():
    # Python-number coefficients stay exact through .H, .conj() and powers, and a sum's
    # coefficients are not rounded to its factors' dtype.
    K = matkron.kron(np.eye(2))
    np.testing.assert_array_equal(((2 * K).H ** 70).todense(), float(2**70) * np.eye(2))
    A = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    S = matkron.sum_of_kron([(A, A)], [0.1])
    x = np.arange(4.0)
    expected = 0.1 * (np.kron(A.astype(np.float64), A.astype(np.float64)) @ x)
    np.testing.assert_allclose(S @ x, expected, rtol=1e-15)


@pytest.mark.parametrize("wrapped", ["dense", "sparse"])
def test_aslinearoperator_factor_is_read_as_its_matrix(wrapped, rng):
    # aslinearoperator(A) is A: applied by the kernels, with its structure (solve, det,
    # eigh), and still given back as the operator it was given as.
    A = random_array(rng, (4, 4), np.float64) + 4 * np.eye(4)
    inner = A if wrapped == "dense" else scipy.sparse.csr_array(A)
    op = scipy.sparse.linalg.aslinearoperator(inner)
    B = random_array(rng, (3, 3), np.float64) + 3 * np.eye(3)
    K = matkron.kron(op, B)
    assert K.factors[0] is op
    M = np.kron(A, B)
    x = random_array(rng, (12, 2), np.float64)
    np.testing.assert_allclose(K @ x, M @ x, rtol=1e-12)
    np.testing.assert_allclose(K.H @ x, M.T @ x, rtol=1e-12)
    np.testing.assert_allclose(K.solve(x), np.linalg.solve(M, x), rtol=1e-10)
    assert np.isclose(K.det(), np.linalg.det(M), rtol=1e-10)


def test_aslinearoperator_subclass_stays_an_operator(rng):
    # A subclass of SciPy's matrix operator may apply something else than its matrix.
    from scipy.sparse.linalg._interface import MatrixLinearOperator

    class Doubled(MatrixLinearOperator):
        def _matmat(self, X):
            return 2 * (self.A @ X)

        _matvec = _matmat

    A = random_array(rng, (3, 3), np.float64)
    B = random_array(rng, (2, 2), np.float64)
    x = random_array(rng, 6, np.float64)
    np.testing.assert_allclose(matkron.kron(Doubled(A), B) @ x, 2 * np.kron(A, B) @ x,
                               rtol=1e-12)
