"""The compiled sparse kernels of matkron._sparse_cy: the mode product sparse_mode_apply and
the Kronecker-sum product kronsum_apply.

Oracles: np.einsum of the dense F (complex128) with X reshaped to (L, n_in, R) in Fortran
order; for the Kronecker sum the dense Σ_t I ⊗ … ⊗ A_t ⊗ … ⊗ I formed with np.kron (and
scipy.sparse.kronsum where the dense matrix is too large); never matkron itself. Every
call writes into an `out` longer than Y whose tail is a sentinel, and starts from NaN when
not accumulating, so unwritten or out-of-bounds elements show.
"""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from matkron._sparse_cy import kronsum_apply, sparse_mode_apply

from .conftest import DTYPES, random_array

INDEX_DTYPES = (np.dtype("int32"), np.dtype("int64"))
# Relative tolerance against the forward-error bound |alpha| |op(F)| |X| (+ |Y0|).
TOL = {np.dtype("float32"): 1e-5, np.dtype("complex64"): 1e-5,
       np.dtype("float64"): 1e-13, np.dtype("complex128"): 1e-13}
# (L, q, p, R, density, empty rows): every mode of size 1 and 0, rectangular F, odd slab
# lengths beyond a vector register, a matrix without nonzeros, a full one.
SHAPES = (
    (1, 1, 1, 1, 1.0, ()),
    (1, 5, 3, 4, 0.5, (1,)),
    (1, 9, 12, 3, 0.2, (0, 11)),
    (3, 4, 6, 2, 0.5, (2, 5)),
    (17, 7, 5, 3, 0.3, ()),
    (2, 6, 6, 1, 1.0, ()),
    (5, 8, 3, 2, 0.0, ()),
    (1, 6, 4, 2, 0.0, ()),
    (0, 3, 2, 2, 0.5, ()),
    (2, 0, 3, 2, 0.0, ()),
    (2, 3, 0, 2, 0.0, ()),
    (2, 3, 4, 0, 0.5, ()),
    (1, 0, 0, 3, 0.0, ()),
)
TAIL = 3
SENTINEL = 7.0


def random_csr(rng, p, q, density, empty_rows, dtype, index_dtype):
    """A duplicate-free random CSR matrix with the given rows empty, and its dense form."""
    dense = random_array(rng, (p, q), dtype)
    dense[rng.random((p, q)) >= density] = 0
    dense[list(empty_rows)] = 0
    F = sp.csr_array(dense)  # canonical: sorted, no duplicates, no explicit zeros
    return (F.indptr.astype(index_dtype), F.indices.astype(index_dtype), F.data.astype(dtype),
            dense)


def oracle(dense, x, L, R, transpose, conjugate, alpha):
    """alpha op(F) applied along the middle mode of x, and its error bound (complex128)."""
    op = dense.astype(np.complex128)
    if conjugate:
        op = op.conj()
    if transpose:
        op = op.T
    X = x.astype(np.complex128).reshape((L, op.shape[1], R), order="F")
    Y = alpha * np.einsum("ik,lkr->lir", op, X)
    bound = abs(alpha) * np.einsum("ik,lkr->lir", np.abs(op), np.abs(X))
    return Y.ravel(order="F"), bound.ravel(order="F")


def check(rng, dtype, index_dtype, shape, transpose, conjugate, accumulate, alphas):
    L, q, p, R, density, empty = shape
    indptr, indices, data, dense = random_csr(rng, p, q, density, empty, dtype, index_dtype)
    n_in, n_out = (p, q) if transpose else (q, p)
    x = random_array(rng, L * n_in * R, dtype)
    y0 = random_array(rng, L * n_out * R, dtype)
    inputs = [a.copy() for a in (indptr, indices, data, x)]
    for alpha in alphas:
        out = np.full(L * n_out * R + TAIL, np.nan, dtype=dtype)
        if accumulate:
            out[: y0.size] = y0
        out[y0.size :] = SENTINEL

        result = sparse_mode_apply(indptr, indices, data, p, q, x, out, L, R,
                                   transpose=transpose, conjugate=conjugate, alpha=alpha,
                                   accumulate=accumulate)

        assert result is out
        used_alpha = alpha if dtype.kind == "c" else alpha.real
        expected, bound = oracle(dense, x, L, R, transpose, conjugate, used_alpha)
        if accumulate:
            expected = expected + y0
            bound = bound + np.abs(y0)
        err = np.abs(out[: y0.size].astype(np.complex128) - expected)
        assert np.all(err <= TOL[dtype] * bound + np.finfo(dtype).tiny), (
            shape, alpha, np.max(err - TOL[dtype] * bound, initial=0))
        assert np.all(out[y0.size :] == SENTINEL)
    for before, after in zip(inputs, (indptr, indices, data, x)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("transpose, conjugate",
                         [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_against_dense(rng, dtype, index_dtype, transpose, conjugate, accumulate):
    alphas = (1.0 + 0j, -0.37 + 0j) + ((0.6 - 1.3j,) if dtype.kind == "c" else ())
    for shape in SHAPES:
        check(rng, dtype, index_dtype, shape, transpose, conjugate, accumulate, alphas)


@pytest.mark.parametrize("dtype", [np.dtype("float32"), np.dtype("float64")], ids=str)
def test_real_dtypes_use_the_real_part_of_alpha(rng, dtype):
    check(rng, dtype, np.dtype("int32"), (3, 4, 5, 2, 0.5, ()), False, False, False,
          [0.5 + 2j])
    check(rng, dtype, np.dtype("int64"), (1, 4, 5, 2, 0.5, ()), True, False, True, [-2 + 1j])


def test_duplicates_are_summed(rng):
    # Not produced by the Python layer (which passes canonical CSR), but in bounds.
    indptr = np.array([0, 3, 3], dtype=np.int32)
    indices = np.array([1, 0, 1], dtype=np.int32)
    data = np.array([1.0, 2.0, 4.0])
    x = random_array(rng, 2 * 2 * 3, np.float64)
    dense = np.array([[2.0, 5.0], [0.0, 0.0]])
    for L in (1, 2):
        for transpose in (False, True):
            out = np.empty(L * 2 * 3)
            sparse_mode_apply(indptr, indices, data, 2, 2, x[: L * 6], out, L, 3,
                              transpose=transpose)
            expected, _ = oracle(dense, x[: L * 6], L, 3, transpose, False, 1.0)
            np.testing.assert_allclose(out, expected.real, rtol=1e-14)


def test_multidimensional_contiguous_operands(rng):
    # x and out may be any arrays whose memory is contiguous: here the tensors themselves,
    # in Fortran order, and a C-ordered 2-D array holding Y's memory.
    L, q, p, R = 3, 4, 5, 2
    indptr, indices, data, dense = random_csr(rng, p, q, 0.5, (), np.float64, np.int64)
    X = np.asfortranarray(random_array(rng, (L, q, R), np.float64))
    out = np.empty((R, p * L))
    sparse_mode_apply(indptr, indices, data, p, q, X, out, L, R)
    expected, _ = oracle(dense, X.ravel(order="F"), L, R, False, False, 1.0)
    np.testing.assert_allclose(out.ravel(), expected.real, rtol=1e-13)


# -- what the entry point rejects --------------------------------------------------------

def valid_args():
    F = sp.csr_array(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]))
    return {"indptr": F.indptr, "indices": F.indices, "data": F.data, "p": 2, "q": 3,
                "x": np.ones(2 * 3 * 4), "out": np.empty(2 * 2 * 4), "L": 2, "R": 4}


def call(**changes):
    args = valid_args()
    args.update(changes)
    return sparse_mode_apply(args.pop("indptr"), args.pop("indices"), args.pop("data"),
                             args.pop("p"), args.pop("q"), args.pop("x"), args.pop("out"),
                             args.pop("L"), args.pop("R"), **args)


def unaligned(n, dtype):
    raw = np.zeros(n * np.dtype(dtype).itemsize + 1, dtype=np.uint8)
    return raw[1:].view(dtype)


def readonly(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def test_valid_args_pass():
    np.testing.assert_array_equal(call(), np.tile([3.0, 3.0, 3.0, 3.0], 4))


@pytest.mark.parametrize("changes, match", [
    ({"x": np.ones(24, dtype=np.float32)}, "x has dtype float32; expected float64"),
    ({"out": np.empty(16, dtype=np.complex128)}, "out has dtype complex128"),
    ({"data": np.ones(3, dtype=np.float16), "x": np.ones(24, dtype=np.float16),
          "out": np.empty(16, dtype=np.float16)}, "data has dtype float16"),
    ({"data": np.ones(3, dtype=np.int64), "x": np.ones(24, dtype=np.int64),
          "out": np.empty(16, dtype=np.int64)}, "data has dtype int64"),
    ({"indptr": np.array([0, 2, 3], dtype=np.int64)}, "indices has dtype int32"),
    ({"indptr": np.array([0, 2, 3], dtype=np.uint32),
          "indices": np.array([0, 2, 1], dtype=np.uint32)}, "indptr has dtype uint32"),
    ({"indptr": np.array([0, 2, 3], dtype=np.int16),
          "indices": np.array([0, 2, 1], dtype=np.int16)}, "indptr has dtype int16"),
    ({"indptr": np.array([0.0, 2.0, 3.0])}, "indptr has dtype float64"),
])
def test_rejects_dtypes(changes, match):
    with pytest.raises(TypeError, match=match):
        call(**changes)


@pytest.mark.parametrize("changes, match", [
    ({"p": -1}, "sizes must be >= 0"),
    ({"L": -2}, "sizes must be >= 0"),
    ({"q": -1}, "sizes must be >= 0"),
    ({"R": -1}, "sizes must be >= 0"),
    ({"p": 3}, "indptr has length 3; expected 4"),
    ({"indices": np.array([0, 2], dtype=np.int32)}, "indices has length 2 but data"),
    ({"indptr": np.array([0, 2, 4], dtype=np.int32)}, "indptr must be non-decreasing"),
    ({"indptr": np.array([-1, 2, 3], dtype=np.int32)}, "indptr must be non-decreasing"),
    ({"indptr": np.array([0, 5, 3], dtype=np.int32)}, "indptr must be non-decreasing"),
    ({"x": np.ones(23)}, r"x has 23 elements; expected at least 24 = 2\*3\*4"),
    ({"out": np.empty(15)}, r"out has 15 elements; expected at least 16 = 2\*2\*4"),
    ({"transpose": True}, r"x has 24 elements; expected at least 16|out has 16 elements"),
    ({"L": 2**40, "R": 2**40}, "more elements than an array can hold"),
    ({"x": np.ones(48)[::2]}, "x must be contiguous"),
    ({"out": np.empty((4, 8))[:, :4]}, "out must be contiguous"),
    ({"data": np.ones(6)[::2]}, "data must be contiguous"),
    ({"indices": np.array([0, 0, 2, 0, 1, 0], dtype=np.int32)[::2]},
     "indices must be 1-D, contiguous"),
    ({"indptr": np.array([[0, 2, 3]], dtype=np.int32)}, "indptr must be 1-D"),
    ({"x": unaligned(24, np.float64)}, "x must be contiguous, aligned"),
    ({"out": unaligned(16, np.float64)}, "out must be contiguous, aligned"),
    ({"x": np.ones(24, dtype=">f8")}, "x has dtype >f8|x must be"),
    ({"indptr": np.array([0, 2, 3], dtype=">i4"), "indices": np.array([0, 2, 1], dtype=">i4")},
     "indptr must be 1-D, contiguous, aligned and in native byte order"),
    ({"out": readonly(np.empty(16))}, "out is read-only"),
])
def test_rejects_out_of_bounds_arguments(changes, match):
    with pytest.raises(ValueError, match=match):
        call(**changes)


def test_transposed_sizes_swap():
    # Transposed, x holds L*p*R = 16 and out L*q*R = 24 elements.
    out = call(transpose=True, x=np.ones(16), out=np.full(24, np.nan))
    np.testing.assert_array_equal(out, np.tile([1.0, 1.0, 3.0, 3.0, 2.0, 2.0], 4))


@pytest.mark.parametrize("name", ["indptr", "indices", "data", "x", "out"])
def test_rejects_none(name):
    with pytest.raises(TypeError):
        call(**{name: None})


def test_zero_sizes_zero_out_unless_accumulating():
    indptr = np.zeros(4, dtype=np.int32)
    empty = np.empty(0)
    for accumulate, expected in ((False, 0.0), (True, 5.0)):
        out = np.full(2 * 3 * 4, 5.0)
        # q = 0: Y = F X is 2 x 3 x 4 zeros.
        sparse_mode_apply(indptr, np.empty(0, dtype=np.int32), empty, 3, 0, empty, out, 2, 4,
                          accumulate=accumulate)
        assert np.all(out == expected)


# -- the Kronecker sum -------------------------------------------------------------------

# (dims, R, densities, empty rows): k = 1 to 4; orders 1 and 0; a column of the fastest
# mode longer than a vector register; factors without nonzeros; dense factors.
KRONSUM_CASES = (
    ((5,), 3, (0.5,), ((1,),)),
    ((1,), 1, (1.0,), ((),)),
    ((0,), 3, (0.0,), ((),)),
    ((4, 3), 1, (0.5, 0.6), ((2,), (0,))),
    ((17, 2), 3, (0.3, 1.0), ((), ())),
    ((1, 5), 3, (1.0, 0.4), ((), (4,))),
    ((5, 1), 1, (0.5, 1.0), ((0, 3), ())),
    ((3, 4), 3, (0.0, 0.5), ((), ())),
    ((3, 4), 1, (0.5, 0.0), ((), ())),
    ((0, 3), 3, (0.0, 0.5), ((), ())),
    ((3, 0), 3, (0.5, 0.0), ((), ())),
    ((3, 2), 0, (0.5, 0.5), ((), ())),
    ((3, 2, 4), 3, (0.5, 0.7, 0.4), ((1,), (), (0, 3))),
    ((2, 1, 3), 1, (1.0, 1.0, 0.5), ((), (), ())),
    ((4, 3, 2), 1, (0.4, 0.0, 1.0), ((), (), ())),
    ((2, 3, 1, 2), 3, (0.6, 0.5, 1.0, 0.5), ((), (2,), (), ())),
    ((2, 2, 2, 3), 1, (0.7, 0.7, 0.7, 0.0), ((1,), (), (0,), ())),
)


def kronsum_dense(denses):
    """Σ_t I_{n_k} ⊗ … ⊗ A_t ⊗ … ⊗ I_{n_1}, A_1 acting along the fastest index."""
    dims = [a.shape[0] for a in denses]
    total = np.zeros((math.prod(dims),) * 2, dtype=np.complex128)
    for t, a in enumerate(denses):
        term = np.ones((1, 1))
        for s, n in enumerate(dims):  # kron(M_k, …, M_1) built from the fastest factor up
            term = np.kron(a if s == t else np.eye(n), term)
        total += term
    return total


def check_kronsum(rng, dtype, factors, R, accumulate, alphas):
    """kronsum_apply with the CSR factors [(indptr, indices, data, dense), ...]."""
    dims = tuple(f[3].shape[0] for f in factors)
    indptrs, indices, datas = (tuple(f[i] for f in factors) for i in range(3))
    L = kronsum_dense([f[3] for f in factors])
    size = L.shape[0] * R
    x = random_array(rng, size, dtype)
    y0 = random_array(rng, size, dtype)
    inputs = [a.copy() for a in indptrs + indices + datas + (x,)]
    X = x.astype(np.complex128).reshape((L.shape[0], R), order="F")
    for alpha in alphas:
        out = np.full(size + TAIL, np.nan, dtype=dtype)
        if accumulate:
            out[:size] = y0
        out[size:] = SENTINEL

        result = kronsum_apply(indptrs, indices, datas, dims, x, out, R, alpha=alpha,
                               accumulate=accumulate)

        assert result is out
        used_alpha = alpha if dtype.kind == "c" else alpha.real
        expected = (used_alpha * (L @ X)).ravel(order="F")
        bound = (abs(used_alpha) * (np.abs(L) @ np.abs(X))).ravel(order="F")
        if accumulate:
            expected = expected + y0
            bound = bound + np.abs(y0)
        err = np.abs(out[:size].astype(np.complex128) - expected)
        assert np.all(err <= TOL[dtype] * bound + np.finfo(dtype).tiny), (
            dims, alpha, np.max(err - TOL[dtype] * bound, initial=0))
        assert np.all(out[size:] == SENTINEL)
    for before, after in zip(inputs, indptrs + indices + datas + (x,)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_kronsum_against_dense(rng, dtype, index_dtype, accumulate):
    alphas = (1.0 + 0j, -0.37 + 0j) + ((0.6 - 1.3j,) if dtype.kind == "c" else (0.5 + 2j,))
    for dims, R, densities, empty in KRONSUM_CASES:
        factors = [random_csr(rng, n, n, dens, emp, dtype, index_dtype)
                   for n, dens, emp in zip(dims, densities, empty)]
        check_kronsum(rng, dtype, factors, R, accumulate, alphas)


def banded_csr(rng, n, offsets, dtype, index_dtype, drop=None, zero=None, unsort=False,
               constant=False, edges=False):
    """A CSR matrix with the given diagonals full; optionally one entry (i, j) dropped, one
    stored as an explicit zero, or the first row's indices reversed; `constant`: each
    diagonal one value (a constant-coefficient stencil), with `edges` other values in the
    first and last rows (as boundary conditions make them)."""
    dense = np.zeros((n, n), dtype=dtype)
    for off in offsets:
        i = np.arange(max(0, -off), min(n, n - off))
        dense[i, i + off] = (random_array(rng, 1, dtype)[0] if constant
                             else random_array(rng, i.size, dtype))
        if edges and i.size:
            dense[i[[0, -1]], i[[0, -1]] + off] = random_array(rng, 2, dtype)
    if drop is not None:
        dense[drop] = 0
    if zero is not None:
        dense[zero] = 1
    F = sp.csr_array(dense)
    if zero is not None:
        F.data[(F.indptr[zero[0]] + np.flatnonzero(
            F.indices[F.indptr[zero[0]]:F.indptr[zero[0] + 1]] == zero[1]))] = 0
        dense[zero] = 0
    indices = F.indices.copy()
    data = F.data.copy()
    if unsort:
        indices[F.indptr[0]:F.indptr[1]] = indices[F.indptr[0]:F.indptr[1]][::-1]
        data[F.indptr[0]:F.indptr[1]] = data[F.indptr[0]:F.indptr[1]][::-1]
    return (F.indptr.astype(index_dtype), indices.astype(index_dtype), data.astype(dtype),
            dense)


# A_1 with a full band (applied by diagonals where the band has 16 or more rows inside,
# by gathers elsewhere; constant diagonals of a real A_1 as scalars, with every other term
# in passes of up to 8) and with nearly full bands (by gathers): (n_1, offsets, changes).
BANDS = (
    (20, (-1, 0, 1), dict(constant=True)),
    (20, (-1, 0, 1), dict(constant=True, edges=True)),
    (20, (-2, -1, 0, 1, 2), dict(constant=True)),
    (33, tuple(range(-8, 9)), dict(constant=True)),
    (17, (0, 1), dict(constant=True)),
    (16, (0,), dict(constant=True)),
    (20, (3,), dict(constant=True, edges=True)),
    (9, (-1, 0, 1), dict(constant=True)),
    (20, (-1, 0, 1), {}),
    (20, (-2, -1, 0, 1, 2), {}),
    (17, (0, 1), {}),
    (19, (-2, -1), {}),
    (20, (3,), {}),
    (16, (0,), {}),
    (33, tuple(range(-8, 9)), {}),
    (9, (-1, 0, 1), {}),
    (4, tuple(range(-3, 4)), {}),
    (1, (0,), {}),
    (20, (-1, 0, 1), dict(drop=(4, 5))),
    (20, (-1, 0, 1), dict(zero=(4, 5))),
    (20, (-1, 0, 1), dict(unsort=True)),
    (20, (-3, 0, 3), {}),
)


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_kronsum_banded_first_factor(rng, dtype, index_dtype):
    alphas = (1.0 + 0j, 0.6 - 1.3j)
    for n1, offsets, changes in BANDS:
        A1 = banded_csr(rng, n1, offsets, dtype, index_dtype, **changes)
        for rest in ((), (3,), (2, 3)):
            factors = [A1] + [random_csr(rng, n, n, 0.7, (), dtype, index_dtype)
                              for n in rest]
            for accumulate in (False, True):
                check_kronsum(rng, dtype, factors, 2, accumulate, alphas)


def test_kronsum_infinities_stay_in_their_rows(rng):
    # Every product of the sparse structure, and no other: an inf or a nan of X reaches
    # only the rows with a nonzero of some term in its column. Oracle: the sum over the
    # terms of scipy's CSR products with kron(I, A_t, I) (which skip structural zeros;
    # the assembled Kronecker sum would merge the diagonal terms into one product).
    factors = [banded_csr(rng, 24, (-1, 0, 1), np.float64, np.int32),
               banded_csr(rng, 5, (-2, 0, 1), np.float64, np.int32),
               random_csr(rng, 3, 3, 0.5, (1,), np.float64, np.int32)]
    dims = (24, 5, 3)
    x = random_array(rng, math.prod(dims), np.float64)
    x[[7, 80, 200]] = [np.inf, np.nan, -np.inf]
    expected = np.zeros_like(x)
    for t, f in enumerate(factors):
        term = sp.kron(sp.kron(sp.eye_array(math.prod(dims[t + 1:])), sp.csr_array(f[3])),
                       sp.eye_array(math.prod(dims[:t])), format="csr")
        with np.errstate(invalid="ignore"):  # inf - inf
            expected += term @ x
    out = np.empty_like(x)
    kronsum_apply(*(tuple(f[i] for f in factors) for i in range(3)), dims, x, out, 1)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, rtol=1e-13)


@pytest.mark.parametrize("banded", [True, False])
@pytest.mark.parametrize("dtype", [np.dtype("float64"), np.dtype("complex64")], ids=str)
def test_kronsum_long_columns_against_scipy(rng, dtype, banded):
    # n_1 = 4100 is split into blocks of the fastest mode; the 1-D Laplacian on it couples
    # the blocks (applied by diagonals), random long-range entries too (then by gathers).
    # Oracle: scipy.sparse.kronsum (I ⊗ A + B ⊗ I).
    n1 = 4100
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n1, n1), format="csr")
    if not banded:
        T = T + sp.random(n1, n1, density=2e-4, random_state=rng, format="csr")
    A1 = sp.csr_array(T, dtype=dtype)
    A2 = sp.csr_array(random_array(rng, (3, 3), dtype))
    A3 = sp.csr_array(np.array([[0.0, 1.5], [-2.0, 0.0]]), dtype=dtype)
    C = sp.kronsum(sp.kronsum(A1, A2), A3, format="csr").astype(np.complex128)
    R = 2
    x = random_array(rng, C.shape[0] * R, dtype)
    out = np.full(x.size, np.nan, dtype=dtype)
    kronsum_apply(tuple(A.indptr for A in (A1, A2, A3)),
                  tuple(A.indices for A in (A1, A2, A3)),
                  tuple(A.data for A in (A1, A2, A3)), (n1, 3, 2), x, out, R)
    X = x.astype(np.complex128).reshape((-1, R), order="F")
    expected = (C @ X).ravel(order="F")
    bound = (abs(C) @ np.abs(X)).ravel(order="F")
    assert np.all(np.abs(out - expected) <= TOL[dtype] * bound)


def test_kronsum_duplicates_are_summed(rng):
    indptr = np.array([0, 3, 3], dtype=np.int64)
    indices = np.array([1, 0, 1], dtype=np.int64)
    data = np.array([1.0, 2.0, 4.0])
    dense = np.array([[2.0, 5.0], [0.0, 0.0]])
    x = random_array(rng, 4 * 2, np.float64)
    out = np.empty(8)
    kronsum_apply((indptr, indptr), (indices, indices), (data, data), (2, 2), x, out, 2)
    expected = kronsum_dense([dense, dense]).real @ x.reshape((4, 2), order="F")
    np.testing.assert_allclose(out, expected.ravel(order="F"), rtol=1e-14)


def test_kronsum_multidimensional_contiguous_operands(rng):
    # x and out may be any arrays whose memory is contiguous: here the tensor itself, in
    # Fortran order, and a C-ordered 2-D array holding Y's memory.
    dims, R = (3, 4, 2), 2
    factors = [random_csr(rng, n, n, 0.6, (), np.float64, np.int32) for n in dims]
    X = np.asfortranarray(random_array(rng, dims + (R,), np.float64))
    out = np.empty((R, 24))
    kronsum_apply(*(tuple(f[i] for f in factors) for i in range(3)), dims, X, out, R)
    expected = kronsum_dense([f[3] for f in factors]).real @ X.reshape((24, R), order="F")
    np.testing.assert_allclose(out.ravel(), expected.ravel(order="F"), rtol=1e-13)


def kronsum_valid_args():
    A = sp.csr_array(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]))
    B = sp.csr_array(np.array([[4.0, 0.0], [5.0, 6.0]]))
    return dict(indptrs=(A.indptr, B.indptr), indices=(A.indices, B.indices),
                datas=(A.data, B.data), dims=(3, 2), x=np.ones(3 * 2 * 4),
                out=np.empty(3 * 2 * 4), R=4)


def kronsum_call(**changes):
    args = kronsum_valid_args()
    args.update(changes)
    return kronsum_apply(args.pop("indptrs"), args.pop("indices"), args.pop("datas"),
                         args.pop("dims"), args.pop("x"), args.pop("out"), args.pop("R"),
                         **args)


def test_kronsum_valid_args_pass():
    # Rows of A: 3, 3, 0; of B: 4, 11. A_1 = A along the fastest mode.
    np.testing.assert_array_equal(kronsum_call(), np.tile([7.0, 7.0, 4.0, 14.0, 14.0, 11.0],
                                                          4))


def with_item(name, t, value):
    items = list(kronsum_valid_args()[name])
    items[t] = value
    return {name: tuple(items)}


I32 = np.int32


@pytest.mark.parametrize("changes, match", [
    (dict(x=np.ones(24, dtype=np.float32)), "x has dtype float32; expected float64"),
    (dict(out=np.empty(24, dtype=np.complex128)), "out has dtype complex128"),
    (with_item("datas", 1, np.ones(3, dtype=np.float32)),
     r"datas\[1\] has dtype float32; expected float64, the dtype of datas\[0\]"),
    (dict(datas=(np.ones(3, dtype=np.float16), np.ones(3, dtype=np.float16)),
          x=np.ones(24, dtype=np.float16), out=np.empty(24, dtype=np.float16)),
     r"datas\[0\] has dtype float16"),
    (with_item("indptrs", 1, np.array([0, 1, 3], dtype=np.int64)),
     r"indptrs\[1\] has dtype int64; indptrs and indices must all be int32 or all int64"),
    (with_item("indices", 0, np.array([0, 2, 1], dtype=np.int64)), r"indices\[0\] has dtype"),
    (with_item("indptrs", 0, np.array([0, 2, 3, 3], dtype=np.uint32)),
     r"indptrs\[0\] has dtype uint32"),
    (with_item("indptrs", 1, [0, 1, 3]), r"indptrs\[1\] is list; expected an ndarray"),
    (with_item("datas", 0, None), r"datas\[0\] is NoneType"),
    (with_item("indices", 1, None), r"indices\[1\] is NoneType"),
    (dict(dims=(3, 2.0)), "integer"),
])
def test_kronsum_rejects_types(changes, match):
    with pytest.raises(TypeError, match=match):
        kronsum_call(**changes)


@pytest.mark.parametrize("changes, match", [
    (dict(indptrs=(), indices=(), datas=(), dims=()), "dims has length 0; expected 1 to 32"),
    (dict(dims=(1,) * 33), "dims has length 33; expected 1 to 32"),
    (dict(dims=(3,)), r"indptrs, indices and datas have lengths 2, 2 and 2; expected 1"),
    (with_item("datas", 1, None) | dict(datas=(np.ones(3),)), "lengths 2, 2 and 1"),
    (dict(dims=(3, -2)), "sizes must be >= 0"),
    (dict(R=-1), "sizes must be >= 0"),
    (dict(dims=(3, 3)), r"indptrs\[1\] has length 3; expected 4 = dims\[1\] \+ 1"),
    (with_item("indices", 0, np.array([0, 2], dtype=I32)),
     r"indices\[0\] has length 2 but datas\[0\] has length 3"),
    (with_item("indptrs", 1, np.array([0, 1, 4], dtype=I32)),
     r"indptrs\[1\] must be non-decreasing .* <= 3, the length of indices\[1\]"),
    (with_item("indptrs", 0, np.array([-1, 2, 3, 3], dtype=I32)),
     r"indptrs\[0\] must be non-decreasing"),
    (with_item("indptrs", 0, np.array([0, 3, 2, 3], dtype=I32)),
     r"indptrs\[0\] must be non-decreasing"),
    (dict(x=np.ones(23)), r"x has 23 elements; expected at least 24 = 3\*2\*4"),
    (dict(out=np.empty(23)), r"out has 23 elements; expected at least 24 = 3\*2\*4"),
    (dict(R=2**62), "more elements than an array can hold"),
    (dict(x=np.ones(48)[::2]), "x must be contiguous"),
    (dict(out=np.empty((4, 12))[:, :6]), "out must be contiguous"),
    (with_item("datas", 0, np.ones(6)[::2]), r"datas\[0\] must be contiguous"),
    (with_item("indices", 1, np.array([0, 0, 0, 0, 1, 0], dtype=I32)[::2]),
     r"indices\[1\] must be 1-D, contiguous"),
    (with_item("indptrs", 0, np.array([[0, 2, 3, 3]], dtype=I32)), r"indptrs\[0\] must be 1-D"),
    (dict(x=unaligned(24, np.float64)), "x must be contiguous, aligned"),
    (dict(out=unaligned(24, np.float64)), "out must be contiguous, aligned"),
    (dict(out=readonly(np.empty(24))), "out is read-only"),
])
def test_kronsum_rejects_out_of_bounds_arguments(changes, match):
    with pytest.raises(ValueError, match=match):
        kronsum_call(**changes)


@pytest.mark.parametrize("name", ["indptrs", "indices", "datas", "dims", "x", "out"])
def test_kronsum_rejects_none(name):
    with pytest.raises(TypeError):
        kronsum_call(**{name: None})


def test_kronsum_zero_sizes_write_nothing():
    # An order or R of 0 leaves a tensor of 0 elements: out is not touched.
    empty = np.empty(0)
    e32 = np.empty(0, dtype=I32)
    out = np.full(4, 5.0)
    kronsum_apply((np.zeros(3, I32), np.zeros(1, I32)), (e32, e32), (empty, empty), (2, 0),
                  empty, out, 3)
    kronsum_apply((np.zeros(3, I32),), (e32,), (empty,), (2,), np.ones(2), out, 0)
    assert np.all(out == 5.0)
