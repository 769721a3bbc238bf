"""Every public API on misaligned and byte-swapped operands, in every memory layout.

Operands are views of a buffer made either by ``np.frombuffer(bytearray(...), offset=1)``
(data one byte off its alignment) or in a non-native byte order (``>f8``, ``>c16``, ``>f4``),
in C order, Fortran order, strided (every other element; the gaps hold NaN, so a read outside
the view shows) and with negative strides. They are passed as the factors or as the operand
x, and every result is compared with a dense oracle computed by numpy on native copies
(``np.kron``, ``np.linalg.solve``, ...). The whole buffer behind each operand is compared
byte for byte before and after every call: no API writes to its inputs.
"""

import functools
import math

import numpy as np
import pytest

import matkron

from .conftest import RTOL, random_array

# kind -> (dtype of the operand, whether its data is misaligned)
KINDS = {
    "misaligned-f8": ("f8", True),
    "misaligned-c16": ("c16", True),
    "misaligned->c16": (">c16", True),
    ">f8": (">f8", False),
    ">c16": (">c16", False),
    ">f4": (">f4", False),
}
LAYOUTS = ("C", "F", "strided", "negative")
TARGETS = ("factors", "x", "both")

CASES = [
    pytest.param(kind, layout, id=f"{kind}-{layout}") for kind in KINDS for layout in LAYOUTS
]


def for_each_target(check):
    """A test, parametrized by kind and layout, that runs `check` for every target in turn
    (one test per target would triple the suite's per-test overhead)."""

    @pytest.mark.parametrize("kind, layout", CASES)
    @functools.wraps(check)
    def test(kind, layout, rng):
        for target in TARGETS:
            try:
                check(kind, layout, target, rng)
            except Exception as exc:
                exc.add_note(f"unusual operands: {target}")
                raise

    del test.__wrapped__  # pytest reads the signature of `test`, not of `check`
    return test


def native(kind):
    return np.dtype(KINDS[kind][0]).newbyteorder("=")


def tol(dtype):
    return RTOL[np.dtype(dtype).newbyteorder("=")]


def unusual(a, kind, layout):
    """A new view holding the values of `a`, of the dtype and alignment of `kind`, in
    `layout`; its buffer holds NaN outside the view."""
    dtype_str, misaligned = KINDS[kind]
    dtype = np.dtype(dtype_str)
    a = np.asarray(a)
    shape = a.shape
    outer = tuple(2 * d + 1 for d in shape) if layout == "strided" else shape
    n = math.prod(outer)
    if misaligned:
        buf = np.frombuffer(bytearray(dtype.itemsize * n + 1), dtype, n, offset=1)
        assert n == 0 or not buf.flags.aligned
    else:
        buf = np.empty(n, dtype)
    buf[...] = np.nan
    if layout == "C":
        view = buf.reshape(shape)
    elif layout == "F":
        view = buf.reshape(shape[::-1]).T
    elif layout == "strided":
        view = buf.reshape(outer)[tuple(slice(1, None, 2) for _ in shape)]
    elif layout == "negative":
        view = buf.reshape(shape)[tuple(slice(None, None, -1) for _ in shape)]
    else:
        raise ValueError(layout)
    assert view.shape == shape
    view[...] = a
    assert view.dtype == dtype
    return view


def _buffer(a):
    while isinstance(a, np.ndarray) and isinstance(a.base, np.ndarray):
        a = a.base
    return a


class Untouched:
    """Snapshot the buffers behind arrays; ``check()`` asserts that none changed."""

    def __init__(self, *arrays):
        self.arrays = [a for a in arrays if isinstance(a, np.ndarray)]
        self.raw = [_buffer(a).tobytes(order="A") for a in self.arrays]

    def check(self):
        for a, raw in zip(self.arrays, self.raw):
            assert _buffer(a).tobytes(order="A") == raw


def dense(a):
    """A native complex128 copy, for the oracles."""
    return np.array(a, dtype=np.complex128)


def kron_dense(factors):
    return functools.reduce(
        np.kron,
        [np.eye(f.shape[0]) if isinstance(f, type(matkron.identity(1))) else dense(f)
         for f in factors],
    )


def assert_close(got, expected, bound, dtype):
    """|got - expected| <= rtol(dtype) * bound, elementwise, and the native dtype."""
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.dtype(dtype), (got.dtype, dtype)
    assert got.shape == np.shape(expected), (got.shape, np.shape(expected))
    err = np.abs(got.astype(np.complex128) - expected)
    assert np.all(err <= 10 * tol(dtype) * bound + np.finfo(np.float32).tiny), err.max()


def check_product(got, mat, x, dtype):
    """got == mat @ x, against the forward-error bound |mat| |x|."""
    assert_close(got, mat @ dense(x), np.abs(mat) @ np.abs(dense(x)), dtype)


def operands(kind, layout, target, factor_values, x_values):
    """The factors and x, the unusual ones being those of `target` ("both": all)."""
    factors, x = factor_values, x_values
    if target in ("factors", "both"):
        factors = [v if isinstance(v, type(matkron.identity(1))) else
                   unusual(v, kind, layout) for v in factor_values]
    if target in ("x", "both"):
        x = unusual(x_values, kind, layout)
    return factors, x


def well_conditioned(rng, n, dtype):
    m = random_array(rng, (n, n), dtype) + 2 * n * np.eye(n, dtype=dtype)
    m[0] *= -1
    return m.astype(dtype)


def cond_tol(mat, dtype):
    return 100 * tol(dtype) * np.linalg.cond(mat)


# -- kron_matvec --------------------------------------------------------------------------


@for_each_target
def test_kron_matvec(kind, layout, target, rng):
    dtype = native(kind)
    values = [random_array(rng, s, dtype) for s in ((3, 2), (2, 4), (3, 3))]
    for m in (None, 3):
        xv = random_array(rng, 24 if m is None else (24, m), dtype)
        factors, x = operands(kind, layout, target, values, xv)
        untouched = Untouched(*factors, x)
        mat = kron_dense(factors)
        check_product(matkron.kron_matvec(factors, x), mat, x, dtype)
        out = np.full((18,) if m is None else (18, m), np.nan, dtype=dtype)
        y = matkron.kron_matvec(factors, x, out=out)
        assert y is out
        check_product(out, mat, x, dtype)
        # With an identity factor too.
        factors_i = [factors[0], matkron.identity(2), factors[1]]
        xiv = random_array(rng, 16 if m is None else (16, m), dtype)
        xi = xiv if target == "factors" else unusual(xiv, kind, layout)
        check_product(matkron.kron_matvec(factors_i, xi), kron_dense(factors_i), xi, dtype)
        untouched.check()


# -- KronOperator -------------------------------------------------------------------------


@for_each_target
def test_kron_operator_products(kind, layout, target, rng):
    dtype = native(kind)
    values = [random_array(rng, s, dtype) for s in ((3, 2), (4, 5))]
    K0 = None
    for m in (None, 2):
        xv = random_array(rng, 10 if m is None else (10, m), dtype)
        yv = random_array(rng, 12 if m is None else (12, m), dtype)
        factors, x = operands(kind, layout, target, values, xv)
        _, y = operands(kind, layout, target, values, yv)
        untouched = Untouched(*factors, x, y)
        K = K0 = matkron.kron(*factors) if K0 is None or target != "factors" else K0
        mat = kron_dense(factors)
        check_product(K @ x, mat, x, dtype)
        check_product(K.dot(x), mat, x, dtype)
        check_product(K.T @ y, mat.T, y, dtype)
        check_product(K.H @ y, mat.conj().T, y, dtype)
        if m is None:
            check_product(K.matvec(x), mat, x, dtype)
            check_product(K.rmatvec(y), mat.conj().T, y, dtype)
        else:
            check_product(K.matmat(x), mat, x, dtype)
            check_product(K.rmatmat(y), mat.conj().T, y, dtype)
        np.testing.assert_allclose(K.todense(), mat, rtol=tol(dtype), atol=0)
        untouched.check()


@for_each_target
def test_kron_operator_structure(kind, layout, target, rng):
    dtype = native(kind)
    values = [well_conditioned(rng, n, dtype) for n in (3, 2)]
    bv = random_array(rng, (6, 2), dtype)
    factors, b = operands(kind, layout, target, values, bv)
    untouched = Untouched(*factors, b)
    K = matkron.kron(*factors)
    mat = kron_dense(factors)
    for rhs in (b, b[:, 0]):
        x = K.solve(rhs)
        expected = np.linalg.solve(mat, dense(rhs))
        assert x.dtype == dtype and x.shape == rhs.shape
        assert np.linalg.norm(x - expected) <= cond_tol(mat, dtype) * np.linalg.norm(expected)
    inverse = K.inv().todense()
    expected = np.linalg.inv(mat)
    assert inverse.dtype == dtype
    assert np.linalg.norm(inverse - expected) <= cond_tol(mat, dtype) * np.linalg.norm(expected)
    det = np.linalg.det(mat)
    assert abs(K.det() - det) <= cond_tol(mat, dtype) * abs(det)
    sign, logdet = K.slogdet()
    sign_ref, logdet_ref = np.linalg.slogdet(mat)
    assert abs(sign - sign_ref) <= cond_tol(mat, dtype)
    assert abs(logdet - logdet_ref) <= cond_tol(mat, dtype) * max(1, abs(logdet_ref))
    trace_bound = np.trace(np.abs(mat))
    assert abs(K.trace() - np.trace(mat)) <= 10 * tol(dtype) * trace_bound
    norm = np.linalg.norm(mat)
    assert abs(K.norm() - norm) <= 10 * tol(dtype) * norm
    untouched.check()


# -- sums of Kronecker products -----------------------------------------------------------


@for_each_target
def test_sum_of_kron(kind, layout, target, rng):
    dtype = native(kind)
    shapes = [((2, 3), (4, 2)), ((1, 2), (8, 3)), ((2, 2), (4, 3))]
    values = [random_array(rng, s, dtype) for pair in shapes for s in pair]
    coeffs = [2.0, -1.0, 0.5]
    for m in (None, 3):
        xv = random_array(rng, 6 if m is None else (6, m), dtype)
        yv = random_array(rng, 8 if m is None else (8, m), dtype)
        flat, x = operands(kind, layout, target, values, xv)
        _, y = operands(kind, layout, target, values, yv)
        untouched = Untouched(*flat, x, y)
        terms = [tuple(flat[2 * i: 2 * i + 2]) for i in range(3)]
        S = matkron.sum_of_kron(terms, coeffs)
        mat = sum(c * kron_dense(t) for c, t in zip(coeffs, terms))
        absmat = sum(abs(c) * np.abs(kron_dense(t)) for c, t in zip(coeffs, terms))
        for got, op, v in ((S @ x, mat, x), (S.T @ y, mat.T, y), (S.H @ y, mat.conj().T, y)):
            bound = (absmat if op is mat else absmat.T) @ np.abs(dense(v))
            assert_close(got, op @ dense(v), bound, dtype)
        np.testing.assert_allclose(S.todense(), mat, rtol=10 * tol(dtype),
                                   atol=10 * tol(dtype) * absmat.max())
        # Sums and multiples of KronOperators.
        T = matkron.kron(*terms[0]) - 2 * matkron.kron(*terms[2])
        mat_t = kron_dense(terms[0]) - 2 * kron_dense(terms[2])
        bound = (np.abs(kron_dense(terms[0])) + 2 * np.abs(kron_dense(terms[2]))) @ np.abs(
            dense(x))
        assert_close(T @ x, mat_t @ dense(x), bound, dtype)
        untouched.check()


# -- Kronecker sums: kronsum, sylvester, lyapunov ----------------------------------------


def _kronsum_dense(mats):
    out = np.zeros((1, 1))
    for M in mats:  # kronsum(A, B) = kron(I_n, A) + kron(B, I_m)
        out = np.kron(np.eye(M.shape[0]), out) + np.kron(dense(M), np.eye(out.shape[0]))
    return out


@for_each_target
def test_kronsum_sylvester_lyapunov(kind, layout, target, rng):
    dtype = native(kind)
    A, B, C = (well_conditioned(rng, n, dtype) for n in (3, 2, 2))
    H = ((A + A.conj().T) / 2 + 8 * np.eye(3)).astype(dtype)  # Hermitian: the eigh path
    values = [A, B, C, H]
    bv = random_array(rng, (12, 2), dtype)
    (A, B, C, H), b12 = operands(kind, layout, target, values, bv)
    untouched = Untouched(A, B, C, H, b12)
    cases = [
        (matkron.kronsum(A, B), _kronsum_dense([A, B])),
        (matkron.kronsum(A, B, C), _kronsum_dense([A, B, C])),
        (matkron.kronsum(H, B, C), _kronsum_dense([H, B, C])),
        (matkron.sylvester(A, B), _kronsum_dense([A, dense(B).T])),
        (matkron.lyapunov(H), _kronsum_dense([H, dense(H).conj()])),
    ]
    for K, mat in cases:
        n = K.shape[0]
        rhs_values = bv[:n] if n <= 12 else None
        rhs = b12[:n] if target != "factors" else rhs_values
        if target != "factors" and n != 12:
            rhs = unusual(np.asarray(b12)[:n], kind, layout)
        for r in (rhs, rhs[:, 0]):
            check_product(K @ r, mat, r, dtype)
            check_product(K.H @ r, mat.conj().T, r, dtype)
            x = K.solve(r)
            expected = np.linalg.solve(mat, dense(r))
            assert x.dtype == dtype and x.shape == r.shape
            assert np.linalg.norm(x - expected) <= cond_tol(mat, dtype) * np.linalg.norm(
                expected)
    untouched.check()


# -- matrix chains ------------------------------------------------------------------------


@for_each_target
def test_chain_execute_and_multi_dot(kind, layout, target, rng):
    dtype = native(kind)
    dims = (5, 3, 6, 2, 4)
    values = [random_array(rng, (dims[i], dims[i + 1]), dtype) for i in range(4)]
    # "x" means the vectors at the ends of the chain; "factors" the matrices.
    if target == "factors":
        arrays = [unusual(v, kind, layout) for v in values]
    elif target == "both":
        arrays = [unusual(values[0][0], kind, layout),
                  *(unusual(v, kind, layout) for v in values[1:3]),
                  unusual(values[3][:, 0], kind, layout)]
    else:
        arrays = [unusual(values[0][0], kind, layout), *values[1:3],
                  unusual(values[3][:, 0], kind, layout)]
    untouched = Untouched(*arrays)
    expected = np.linalg.multi_dot([dense(a) for a in arrays])
    bound = np.linalg.multi_dot([np.abs(dense(a)) for a in arrays])
    shape_dims = (1 if arrays[0].ndim == 1 else dims[0], *dims[1:4],
                  1 if arrays[-1].ndim == 1 else dims[4])
    got = matkron.chain_order(shape_dims).execute(arrays)
    assert_close(np.asarray(got), expected, bound, dtype)
    got = matkron.multi_dot(arrays)
    assert_close(np.asarray(got), expected, bound, dtype)
    untouched.check()


# -- vec and unvec ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_vec_unvec(kind, layout, rng):
    dtype = np.dtype(KINDS[kind][0])
    values = random_array(rng, (3, 4), native(kind))
    X = unusual(values, kind, layout)
    untouched = Untouched(X)
    v = matkron.vec(X)
    assert v.dtype == dtype  # kept, byte order included
    np.testing.assert_array_equal(v, np.array([values[i, j] for j in range(4)
                                               for i in range(3)]))
    x = unusual(values.ravel(order="F"), kind, layout)
    untouched_x = Untouched(x)
    Y = matkron.unvec(x, (3, 4))
    assert Y.dtype == dtype and Y.shape == (3, 4)
    np.testing.assert_array_equal(Y, values)
    untouched.check()
    untouched_x.check()
