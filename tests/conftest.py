"""Shared test helpers: dtype-keyed tolerances, memory layouts, random factors, dense oracles.

Every oracle here is independent of matkron: dense products go through an ``np.kron`` chain
(or, for sizes too large to form, ``np.einsum`` over the factors) computed in complex128.
Test modules import these helpers with ``from .conftest import ...`` (``tests`` is a package,
so this works under ``--import-mode=importlib``).
"""

import functools
import math
import string
import zlib

import numpy as np
import pytest
import scipy.sparse
from scipy.sparse.linalg import LinearOperator

import matkron

DTYPES = tuple(np.dtype(t) for t in ("float32", "float64", "complex64", "complex128"))

# Relative tolerance of a computed result, keyed by the result dtype. Products are checked
# elementwise against rtol * (|F1| ⊗ … ⊗ |Fk|) |x|, the forward-error bound of a matvec.
RTOL = {
    np.dtype("float32"): 1e-4,
    np.dtype("complex64"): 1e-4,
    np.dtype("float64"): 1e-12,
    np.dtype("complex128"): 1e-12,
}

# Memory layouts in which an operand is passed. Gaps of strided views are filled with NaN,
# so a kernel that reads outside the view produces NaN and fails the comparison.
LAYOUTS = (
    "C",  # C-contiguous
    "F",  # Fortran-contiguous
    "padded_F",  # Fortran order with a leading dimension larger than the row count
    "padded_C",  # C order with a row stride larger than the column count
    "strided",  # every other row, every third column of a larger array
    "negative",  # both strides negative
    "mixed",  # Fortran order with the rows reversed (negative row stride)
    "readonly",  # C-contiguous, writeable=False
    "unaligned",  # C-contiguous, data pointer one byte off alignment
)
# Layouts usable for `out=` (writeable and aligned).
OUT_LAYOUTS = tuple(lay for lay in LAYOUTS if lay not in ("readonly", "unaligned"))

IDENTITY_TYPE = type(matkron.identity(1))


def rtol(dtype):
    """The relative tolerance for results of `dtype` (a BLAS dtype)."""
    return RTOL[np.dtype(dtype)]


def lowest_precision_rtol(*dtypes):
    """The tolerance of the least precise of the given (inexact or integer) dtypes."""
    return max(rtol(d) if np.dtype(d) in RTOL else RTOL[np.dtype("float64")] for d in dtypes)


def seed_for(request):
    """A reproducible seed derived from the test id."""
    return zlib.crc32(request.node.nodeid.encode())


@pytest.fixture
def rng(request):
    return np.random.default_rng(seed_for(request))


def is_identity(f):
    return isinstance(f, IDENTITY_TYPE)


def random_array(rng, shape, dtype):
    """Standard normal entries (real and imaginary parts for complex dtypes)."""
    dtype = np.dtype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    if dtype.kind in "iub":
        a = np.round(3 * a)
        if dtype.kind == "u":
            a = np.abs(a)
        if dtype.kind == "b":
            a = a > 0
    return a.astype(dtype)


def make_factors(rng, spec, dtype):
    """Factors from a spec: (p, q) -> random p-by-q array, ("I", n) -> matkron.identity(n)."""
    factors = []
    for s in spec:
        if s[0] == "I":
            factors.append(matkron.identity(s[1]))
        else:
            factors.append(random_array(rng, s, dtype))
    return factors


def spec_shapes(spec):
    return [(s[1], s[1]) if s[0] == "I" else tuple(s) for s in spec]


def columns(spec):
    return int(np.prod([q for _, q in spec_shapes(spec)], dtype=np.int64))


def rows(spec):
    return int(np.prod([p for p, _ in spec_shapes(spec)], dtype=np.int64))


def operand_shape(n, m):
    """Shape of x with n rows: 1-D when m is None, else (n, m)."""
    return (n,) if m is None else (n, m)


def to_dense(f, dtype=np.complex128):
    """A factor as a dense array of `dtype`, without matkron: identity factors as np.eye,
    diagonal factors as np.diag of their d, sparse ones by scipy's toarray, and
    LinearOperators (never matkron's own) by their matmat with the identity."""
    if is_identity(f):
        return np.eye(f.shape[0], dtype=dtype)
    if isinstance(f, matkron.DiagonalFactor):
        a = np.diag(np.asarray(f.d))
    elif scipy.sparse.issparse(f):
        a = f.toarray()
    elif isinstance(f, (matkron.KronOperator, matkron.SumOfKronOperator)):
        raise AssertionError("a matkron operator is not an independent oracle")
    elif isinstance(f, LinearOperator):
        a = np.asarray(f.matmat(np.eye(f.shape[1], dtype=f.dtype)))
    else:
        a = np.asarray(f)
    if np.dtype(dtype).kind != "c" and a.dtype.kind == "c":
        raise AssertionError("complex factor requested as a real dense matrix")
    return a.astype(dtype)


def kron_dense(factors, dtype=np.complex128):
    """The np.kron chain kron(kron(F1, F2), ...) in `dtype` (complex128 by default)."""
    return functools.reduce(np.kron, [to_dense(f, dtype) for f in factors])


def kron_abs_dense(factors):
    """|F1| ⊗ … ⊗ |Fk| in float64, for error bounds."""
    return functools.reduce(np.kron, [np.abs(to_dense(f)) for f in factors])


def kron_einsum(factors, x):
    """(F1 ⊗ … ⊗ Fk) x by one einsum over the factors, for sizes too large for np.kron.

    x (1-D or 2-D) is viewed as a row-major q1 × … × qk tensor (times m columns), which is
    the index convention of np.kron.
    """
    mats = [to_dense(f) for f in factors]
    x = np.asarray(x).astype(np.complex128)
    k = len(mats)
    letters = string.ascii_letters
    ins, outs = letters[:k], letters[k : 2 * k]
    tail = "Z" if x.ndim == 2 else ""
    xt = x.reshape(tuple(m.shape[1] for m in mats) + x.shape[1:])
    subs = ",".join(o + i for o, i in zip(outs, ins)) + "," + ins + tail + "->" + outs + tail
    y = np.einsum(subs, *mats, xt, optimize=True)
    return y.reshape((-1,) + x.shape[1:])


def product_oracle(factors, x):
    """(reference, bound) of (F1 ⊗ … ⊗ Fk) x for assert_product, computed once for a
    product checked many times."""
    xw = np.asarray(x).astype(np.complex128)
    return kron_dense(factors) @ xw, kron_abs_dense(factors) @ np.abs(xw)


def assert_product(y, factors, x, dtype, *, rtol_=None, dense=None, reference=None,
                   bound=None):
    """Assert y == (F1 ⊗ … ⊗ Fk) x in shape, dtype, and value (forward-error bound)."""
    dtype = np.dtype(dtype)
    x = np.asarray(x)
    assert isinstance(y, np.ndarray), type(y)
    xw = x.astype(np.complex128)
    if reference is None:
        K = kron_dense(factors) if dense is None else dense
        reference = K @ xw
    if bound is None:
        bound = kron_abs_dense(factors) @ np.abs(xw)
    assert y.dtype == dtype, (y.dtype, dtype)
    assert y.shape == reference.shape, (y.shape, reference.shape)
    tol = (rtol(dtype) if rtol_ is None else rtol_) * bound + np.finfo(dtype).tiny
    err = np.abs(y.astype(np.complex128) - reference)
    bad = ~(err <= tol)
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} entries wrong; first at {np.argwhere(bad)[0]}: "
        f"got {y[tuple(np.argwhere(bad)[0])]}, expected {reference[tuple(np.argwhere(bad)[0])]}"
    )


def assert_allclose_bound(actual, expected, bound, dtype):
    """|actual - expected| <= rtol(dtype) * bound elementwise (bound >= 0, same shape)."""
    dtype = np.dtype(dtype)
    err = np.abs(np.asarray(actual).astype(np.complex128) - expected)
    tol = rtol(dtype) * np.asarray(bound) + np.finfo(dtype).tiny
    assert np.all(err <= tol), (np.max(err - tol), actual, expected)


def _fill_value(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind == "b":
        return True
    return 7


def layout_view(shape, dtype, layout, fill=None):
    """An uninitialised-looking array of `shape` in `layout`, and the buffer it views.

    Every element of the buffer (gaps and view) is set to `fill` (NaN for inexact dtypes).
    Returns (view, buffer); for "readonly" the view is writeable here and must be locked by
    the caller (see :func:`with_layout`).
    """
    dtype = np.dtype(dtype)
    fill = _fill_value(dtype) if fill is None else fill
    shape = tuple(shape)
    ndim = len(shape)
    if layout in ("C", "readonly"):
        buf = np.full(shape, fill, dtype=dtype)
        return buf, buf
    if layout == "F":
        buf = np.full(shape, fill, dtype=dtype, order="F")
        return buf, buf
    if layout == "unaligned":
        raw = np.zeros(int(np.prod(shape)) * dtype.itemsize + 1, dtype=np.uint8)
        view = raw[1:].view(dtype).reshape(shape)
        view[...] = fill
        if dtype.itemsize > 1 and view.size:
            assert not view.flags.aligned
        return view, raw
    if ndim == 1:
        (n,) = shape
        if layout in ("padded_F", "padded_C"):
            buf = np.full(n + 3, fill, dtype=dtype)
            return buf[2 : n + 2], buf
        if layout == "strided":
            buf = np.full(3 * n + 2, fill, dtype=dtype)
            return buf[1::3][:n], buf
        if layout in ("negative", "mixed"):
            buf = np.full(2 * n + 1, fill, dtype=dtype)
            return buf[::-2][:n], buf
        raise ValueError(layout)
    r, c = shape
    if layout == "padded_F":
        buf = np.full((r + 3, c), fill, dtype=dtype, order="F")
        return buf[1 : r + 1, :], buf
    if layout == "padded_C":
        buf = np.full((r, c + 3), fill, dtype=dtype)
        return buf[:, 2 : c + 2], buf
    if layout == "strided":
        buf = np.full((2 * r + 1, 3 * c + 2), fill, dtype=dtype)
        return buf[1::2, 2::3][:r, :c], buf
    if layout == "negative":
        buf = np.full((r, c), fill, dtype=dtype)
        return buf[::-1, ::-1], buf
    if layout == "mixed":
        buf = np.full((r, c), fill, dtype=dtype, order="F")
        return buf[::-1, :], buf
    raise ValueError(layout)


def with_layout(a, layout):
    """A new array equal to `a` (any dtype, 1-D or 2-D) in the given memory layout."""
    a = np.asarray(a)
    view, _ = layout_view(a.shape, a.dtype, layout)
    view[...] = a
    if layout == "readonly":
        view.setflags(write=False)
    return view


def pytest_configure(config):
    # Hypothesis imports its patch writer (libcst -> mypy_extensions) while reporting a
    # failing example; that import emits a DeprecationWarning which filterwarnings=error
    # would turn into an INTERNALERROR hiding the failure report.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )


def flops_of(shapes, order, m):
    """Multiplications of applying the factors in `order` (the oracle, written here).

    A factor (p, q) applied to a tensor of S entries costs S * p and leaves S * p / q
    entries; S starts at m * Π q. Factors left out of `order` (identities) cost nothing
    and do not change S.
    """
    size = m * math.prod(q for _, q in shapes)
    total = 0
    for i in order:
        p, q = shapes[i]
        total += size * p
        size = size * p // q if q else 0
    return total


def well_conditioned_factors(rng, spec, dtype):
    """Square factors n*I + N(0, 1) noise, with a row negated at random (negative dets)."""
    factors = []
    for s in spec:
        if s[0] == "I":
            factors.append(matkron.identity(s[1]))
            continue
        n = s[0]
        f = random_array(rng, (n, n), dtype) + (2 * n) * np.eye(n, dtype=dtype)
        if n and rng.random() < 0.5:
            f[0] *= -1
        factors.append(f.astype(dtype))
    return factors


def frechet_dense(f, X):
    """The Kronecker form of L_f(X, ·) on vec(E): column j the upper-right block of
    f([[X, E_j], [0, X]]) for E_j = unvec(e_j) (the block oracle, by a reference f such as
    SciPy's)."""
    m = len(X)
    columns = []
    for j in range(m * m):
        E = np.zeros(m * m, dtype=X.dtype)
        E[j] = 1
        M = np.block([[X, E.reshape(m, m, order="F")], [np.zeros_like(X), X]])
        columns.append(f(M)[:m, m:].ravel(order="F"))
    return np.stack(columns, axis=1)
