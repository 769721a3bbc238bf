"""matkron.kron_matvec against the np.kron chain: shapes, dtypes, layouts, out=, errors."""

import re

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

import matkron

from .conftest import (
    DTYPES,
    LAYOUTS,
    OUT_LAYOUTS,
    assert_product,
    columns,
    kron_einsum,
    layout_view,
    make_factors,
    operand_shape,
    random_array,
    rows,
    with_layout,
)

# Factor shapes; ("I", n) stands for matkron.identity(n).
SHAPES = [
    # k = 1
    [(3, 5)],
    [(5, 3)],
    [(1, 1)],
    [(4, 4)],
    [(1, 6)],
    [(6, 1)],
    # k = 2, all dimensions different
    [(2, 3), (5, 4)],
    [(5, 2), (3, 7)],
    [(1, 1), (3, 2)],
    [(3, 2), (1, 1)],
    [(4, 1), (1, 3)],
    # k = 3
    [(2, 3), (4, 5), (3, 2)],
    [(6, 1), (1, 6), (2, 3)],
    [(1, 1), (1, 1), (1, 1)],
    # k = 4
    [(2, 3), (3, 2), (4, 1), (1, 5)],
    [(3, 3), (2, 2), (4, 4), (2, 2)],
    [(2, 1), (3, 4), (1, 2), (5, 3)],
    # intermediates larger than any small fixed scratch buffer
    [(40, 30), (25, 35)],
    [(12, 10), (9, 11), (10, 13)],
]
IDENTITY_SHAPES = [
    [("I", 3)],
    [("I", 1)],
    [("I", 3), (2, 4)],
    [(2, 4), ("I", 3)],
    [(2, 3), ("I", 2), (4, 1)],
    [("I", 2), ("I", 3)],
    [("I", 2), (5, 3), ("I", 4), (2, 2)],
]
ZERO_SHAPES = [
    [(0, 3)],
    [(3, 0)],
    [(0, 0)],
    [(2, 3), (0, 4)],
    [(2, 0), (3, 4)],
    [(2, 3), (4, 5), (0, 2)],
    [(2, 3), (4, 5), (2, 0)],
    [("I", 0), (2, 3)],
    [(3, 2), ("I", 0)],
]
MS = [None, 1, 2, 5]


def _ids(spec):
    return "x".join(f"I{s[1]}" if s[0] == "I" else f"{s[0]}x{s[1]}" for s in spec)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("m", MS, ids=lambda m: f"m={m}")
@pytest.mark.parametrize("spec", SHAPES + IDENTITY_SHAPES, ids=_ids)
def test_matches_kron_chain(spec, m, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    x = random_array(rng, operand_shape(columns(spec), m), dtype)
    y = matkron.kron_matvec(factors, x)
    assert_product(y, factors, x, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("m", [None, 0, 1, 3], ids=lambda m: f"m={m}")
@pytest.mark.parametrize("spec", ZERO_SHAPES, ids=_ids)
def test_zero_size(spec, m, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    x = random_array(rng, operand_shape(columns(spec), m), dtype)
    y = matkron.kron_matvec(factors, x)
    assert y.shape == operand_shape(rows(spec), m)
    assert y.dtype == dtype
    # An empty sum is zero: with no columns the result is all zeros.
    np.testing.assert_array_equal(y, np.zeros(y.shape, dtype))
    assert_product(y, factors, x, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("spec", [[(3, 4), (5, 2)], [(2, 3), (4, 5)], [(4, 3), (6, 7)]], ids=_ids)
def test_zero_rhs(spec, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    x = np.zeros((columns(spec), 0), dtype=dtype)
    y = matkron.kron_matvec(factors, x)
    assert y.shape == (rows(spec), 0)
    assert y.dtype == dtype


# -- memory layouts ------------------------------------------------------------------------

LAYOUT_SPECS = [
    [(3, 4), (5, 2)],
    [(4, 1), (1, 3), (2, 2)],
    [(2, 3), (3, 2), (2, 4)],
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("m", [None, 3], ids=lambda m: f"m={m}")
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("spec", LAYOUT_SPECS, ids=_ids)
def test_factor_layouts(spec, layout, m, dtype, rng):
    dense_factors = make_factors(rng, spec, dtype)
    factors = [with_layout(f, layout) for f in dense_factors]
    x = random_array(rng, operand_shape(columns(spec), m), dtype)
    y = matkron.kron_matvec(factors, x)
    assert_product(y, dense_factors, x, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("m", [None, 1, 3], ids=lambda m: f"m={m}")
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("spec", LAYOUT_SPECS, ids=_ids)
def test_x_layouts(spec, layout, m, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    x_dense = random_array(rng, operand_shape(columns(spec), m), dtype)
    x = with_layout(x_dense, layout)
    y = matkron.kron_matvec(factors, x)
    assert_product(y, factors, x_dense, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("x_layout", ["C", "F", "strided"])
@pytest.mark.parametrize("out_layout", OUT_LAYOUTS)
@pytest.mark.parametrize("m", [None, 1, 3], ids=lambda m: f"m={m}")
@pytest.mark.parametrize(
    "spec", [[(3, 4), (5, 2)], [(2, 3), ("I", 2), (4, 3)], [("I", 2), ("I", 3)]], ids=_ids
)
def test_out_layouts(spec, m, out_layout, x_layout, dtype, rng):
    factors = make_factors(rng, spec, dtype)
    x_dense = random_array(rng, operand_shape(columns(spec), m), dtype)
    x = with_layout(x_dense, x_layout)
    out, buf = layout_view(operand_shape(rows(spec), m), dtype, out_layout)
    result = matkron.kron_matvec(factors, x, out=out)
    assert result is out
    assert_product(out, factors, x_dense, dtype)
    # Nothing outside the view was written.
    values = out.copy()
    out[...] = np.nan
    assert np.isnan(buf).all()
    assert_product(values, factors, x_dense, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_mixed_layouts_per_factor(dtype, rng):
    spec = [(2, 3), (4, 2), (3, 3), (1, 2)]
    dense_factors = make_factors(rng, spec, dtype)
    for shift in range(len(LAYOUTS)):
        factors = [
            with_layout(f, LAYOUTS[(i + shift) % len(LAYOUTS)])
            for i, f in enumerate(dense_factors)
        ]
        for m in (None, 2):
            x_dense = random_array(rng, operand_shape(columns(spec), m), dtype)
            x = with_layout(x_dense, LAYOUTS[(shift + 3) % len(LAYOUTS)])
            assert_product(matkron.kron_matvec(factors, x), dense_factors, x_dense, dtype)


def test_array_likes(rng):
    A = [[1.0, 2.0, 0.5], [3.0, -1.0, 2.0]]
    B = ((0.0, 1.0), (2.0, 5.0))
    x = list(range(6))
    y = matkron.kron_matvec([A, B], x)
    np.testing.assert_allclose(y, np.kron(np.array(A), np.array(B)) @ np.arange(6.0), rtol=1e-14)
    y = matkron.kron_matvec((np.array(A), B), np.arange(6.0).reshape(6, 1).tolist())
    assert y.shape == (4, 1)
    np.testing.assert_allclose(
        y[:, 0], np.kron(np.array(A), np.array(B)) @ np.arange(6.0), rtol=1e-14
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("k", [7, 8, 9, 12, 27])
def test_many_factors(k, dtype, rng):
    # More factors than any small fixed-size table; shapes cycle so Π p and Π q stay small.
    cycle = [(2, 1), (1, 2), (2, 2), (1, 1), ("I", 1), (1, 1), (2, 1), (1, 2), (1, 1)]
    spec = [cycle[i % len(cycle)] for i in range(k)]
    if k == 27:
        spec = [(1, 1)] * 24 + [(2, 3), (3, 2), (2, 2)]
    factors = make_factors(rng, spec, dtype)
    for m in (None, 3):
        x = random_array(rng, operand_shape(columns(spec), m), dtype)
        assert_product(matkron.kron_matvec(factors, x), factors, x, dtype)
        out = np.empty(operand_shape(rows(spec), m), dtype=dtype, order="F")
        assert matkron.kron_matvec(factors, x, out=out) is out
        assert_product(out, factors, x, dtype)
    with pytest.raises(ValueError, match="x"):
        matkron.kron_matvec(factors, np.ones(columns(spec) + 1, dtype))


def test_long_factor(rng):
    # A dimension above 2**20 (beyond any "small problem" shortcut): A is 1 x n, B is 2 x 1,
    # so (A ⊗ B) x = B[:, 0] * (A @ x).
    n = 2**20 + 3
    A = rng.standard_normal((1, n))
    B = rng.standard_normal((2, 1))
    x = rng.standard_normal(n)
    y = matkron.kron_matvec([A, B], x)
    expected = B[:, 0] * np.dot(A[0], x)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12 * np.abs(A).sum())
    X = np.stack([x, -2 * x], axis=1)
    Y = matkron.kron_matvec([B, A], X)
    expected = np.kron(B[:, 0], [1.0]).reshape(2, 1) * (A[0] @ X)
    np.testing.assert_allclose(Y, expected, rtol=1e-10, atol=1e-12 * np.abs(A).sum())


def test_larger_product_against_einsum(rng):
    spec = [(30, 25), (20, 28), (12, 14)]
    factors = make_factors(rng, spec, np.float64)
    x = random_array(rng, (columns(spec), 2), np.float64)
    y = matkron.kron_matvec(factors, x)
    ref = kron_einsum(factors, x)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref.real, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_einsum_oracle_matches_kron_chain(rng):
    # The einsum oracle used for large sizes agrees with the np.kron chain.
    factors = make_factors(rng, [(2, 3), (4, 2), (3, 5)], np.complex128)
    x = random_array(rng, (30, 2), np.complex128)
    from .conftest import kron_dense

    np.testing.assert_allclose(kron_einsum(factors, x), kron_dense(factors) @ x, rtol=1e-13)


# -- out= ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("m", [None, 2], ids=lambda m: f"m={m}")
def test_out_is_overwritten_not_accumulated(m, dtype, rng):
    spec = [(3, 2), (2, 4)]
    factors = make_factors(rng, spec, dtype)
    x = random_array(rng, operand_shape(8, m), dtype)
    out = np.full(operand_shape(6, m), 1e3, dtype=dtype)
    assert matkron.kron_matvec(factors, x, out=out) is out
    assert_product(out, factors, x, dtype)
    # Reusing out gives the same answer again.
    matkron.kron_matvec(factors, x, out=out)
    assert_product(out, factors, x, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_out_zero_size(dtype, rng):
    factors = make_factors(rng, [(2, 0), (3, 2)], dtype)
    x = np.zeros(0, dtype=dtype)
    out = np.full(6, np.nan, dtype=dtype)
    assert matkron.kron_matvec(factors, x, out=out) is out
    np.testing.assert_array_equal(out, np.zeros(6, dtype))
    out = np.empty((0, 3), dtype=dtype)
    factors = make_factors(rng, [(0, 2), (3, 2)], dtype)
    x = np.ones((4, 3), dtype=dtype)
    assert matkron.kron_matvec(factors, x, out=out) is out


def test_out_in_disjoint_part_of_same_buffer(rng):
    A, B = random_array(rng, (3, 2), np.float64), random_array(rng, (2, 4), np.float64)
    buf = np.zeros(8 + 6)
    x = buf[:8]
    x[...] = rng.standard_normal(8)
    out = buf[8:]
    matkron.kron_matvec([A, B], x, out=out)
    assert_product(out, [A, B], x, np.float64)
    # Interleaved but disjoint views of one buffer are not overlapping either.
    buf = np.zeros(16)
    x, out = buf[0::2], buf[1::2][:6]
    x[...] = rng.standard_normal(8)
    matkron.kron_matvec([A, B], x, out=out)
    assert_product(out, [A, B], x, np.float64)
    # 2-D: x and out in alternate columns of one array.
    buf = np.zeros((8, 6))
    X, out = buf[:, 0::2], buf[:6, 1::2]
    X[...] = rng.standard_normal((8, 3))
    assert matkron.kron_matvec([A, B], X, out=out) is out
    assert_product(out, [A, B], X, np.float64)
    assert_product(matkron.kron_matvec([A, B], X), [A, B], X, np.float64)


def test_out_errors(rng):
    A = random_array(rng, (3, 2), np.float64)
    B = random_array(rng, (2, 4), np.float64)
    x = random_array(rng, 8, np.float64)
    X = random_array(rng, (8, 2), np.float64)

    with pytest.raises(ValueError, match=r"out.*\(5,\).*\(6,\)"):
        matkron.kron_matvec([A, B], x, out=np.empty(5))
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([A, B], x, out=np.empty((6, 1)))
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([A, B], X, out=np.empty(6))
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([A, B], X, out=np.empty((6, 3)))
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([A, B], X, out=np.empty((2, 6)))
    # Exact dtype: neither a narrower nor a wider out is accepted.
    for dtype in (np.float32, np.complex128, np.int64, np.float16):
        with pytest.raises(ValueError, match=f"out.*{np.dtype(dtype)}.*float64"):
            matkron.kron_matvec([A, B], x, out=np.empty(6, dtype=dtype))
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec(
            [A.astype(np.float32), B.astype(np.float32)],
            x.astype(np.float32),
            out=np.empty(6, dtype=np.float64),
        )
    ro = np.empty(6)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([A, B], x, out=ro)
    for bad in ([0.0] * 6, (0.0,) * 6):
        with pytest.raises((TypeError, ValueError), match="out"):
            matkron.kron_matvec([A, B], x, out=bad)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_out_overlapping_inputs(dtype, rng):
    S = random_array(rng, (3, 3), dtype)
    T = random_array(rng, (2, 2), dtype)
    x = random_array(rng, 6, dtype)
    x_copy = x.copy()
    # out is x itself
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([S, T], x, out=x)
    np.testing.assert_array_equal(x, x_copy)
    # out partially overlaps x
    buf = np.concatenate([x, np.zeros(3, dtype)])
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([S, T], buf[:6], out=buf[3:9])
    # out is x seen in reverse
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([S, T], x, out=x[::-1])
    # out overlaps the 2-D x
    X = random_array(rng, (6, 2), dtype)
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([S, T], X, out=X)
    # out overlaps a factor
    big = random_array(rng, (6, 3), dtype)
    Sv = big[:3, :]
    out = big.reshape(-1)[:6]
    S_copy = Sv.copy()
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([Sv, T], x, out=out)
    np.testing.assert_array_equal(Sv, S_copy)
    Tbuf = np.zeros(6, dtype)
    Tv = Tbuf[:4].reshape(2, 2)
    Tv[...] = T
    with pytest.raises(ValueError, match="out"):
        matkron.kron_matvec([S, Tv], x, out=Tbuf)
    np.testing.assert_array_equal(Tv, T)


# -- dtypes --------------------------------------------------------------------------------

PROMOTIONS = [
    # (factor dtypes, x dtype, result dtype)
    (["float32", "float32"], "float32", "float32"),
    (["float32", "float64"], "float32", "float64"),
    (["float32"], "float64", "float64"),
    (["float64"], "float32", "float64"),
    (["float32", "complex64"], "float32", "complex64"),
    (["float64", "complex64"], "float64", "complex128"),
    (["float32"], "complex128", "complex128"),
    (["complex64"], "float64", "complex128"),
    (["int8"], "float32", "float32"),
    (["float32"], "int8", "float32"),
    (["float32"], "int16", "float32"),
    (["int64"], "float32", "float64"),
    (["float32"], "int64", "float64"),
    (["float32"], "int32", "float64"),
    (["int32", "int8"], "int64", "float64"),
    (["int8"], "int8", "float64"),
    (["uint8"], "uint16", "float64"),
    (["bool"], "bool", "float64"),
    (["bool"], "float32", "float32"),
    (["bool", "int8"], "complex64", "complex64"),
    (["float16"], "float16", "float32"),
    (["float16"], "int8", "float32"),
    (["float16", "float64"], "float16", "float64"),
    (["float16"], "complex64", "complex64"),
    (["int64"], "complex64", "complex128"),
    # identity factors take no part in promotion
    (["I", "float32"], "float32", "float32"),
    (["I"], "float32", "float32"),
    (["I"], "complex64", "complex64"),
    (["I", "I"], "int32", "float64"),
    (["I"], "float16", "float32"),
    (["float32", "I"], "int8", "float32"),
]


def _promo_id(case):
    fs, x, r = case
    return f"{'+'.join(fs)}@{x}->{r}"


@pytest.mark.parametrize("m", [None, 2], ids=lambda m: f"m={m}")
@pytest.mark.parametrize("case", PROMOTIONS, ids=_promo_id)
def test_dtype_promotion(case, m, rng):
    factor_dtypes, x_dtype, expected = case
    shapes = [(3, 2), (2, 4), (1, 3)]
    factors = [
        matkron.identity(2) if d == "I" else random_array(rng, shapes[i], d)
        for i, d in enumerate(factor_dtypes)
    ]
    n = int(np.prod([f.shape[1] for f in factors]))
    x = random_array(rng, operand_shape(n, m), x_dtype)
    y = matkron.kron_matvec(factors, x)
    assert y.dtype == np.dtype(expected)
    assert_product(y, factors, x, expected)
    out = np.empty_like(y)
    assert matkron.kron_matvec(factors, x, out=out) is out
    assert_product(out, factors, x, expected)


@pytest.mark.parametrize("dtypes, expected", [
    (("f8",), "f8"), ((">f8",), "f8"), (("i1",), "f8"), (("?",), "f8"), (("f2",), "f4"),
    (("f4", "c8"), "c8"), ((">f4", "<f8"), "f8"), (("i1", "f4"), "f4"),
    (("f4", "c16"), "c16"), ((">c8", "f2"), "c8"),
])
def test_result_dtype_the_same_on_every_call(dtypes, expected):
    # result_dtype memoizes tuples of dtypes; the answer must not depend on what was asked
    # before (byte orders are distinct keys), and a rejected dtype is rejected every time.
    from matkron._validation import result_dtype

    for _ in range(3):
        got = result_dtype(*(np.dtype(d) for d in dtypes))
        assert got == np.dtype(expected) and got.isnative
    # A 0-d array (unhashable) and Python scalars are promoted, not memoized.
    assert result_dtype(np.dtype("f4"), np.array(1.0, dtype="f8")) == np.float64
    assert result_dtype(np.dtype("f4"), 1.0) == np.float32
    for _ in range(2):
        with pytest.raises(TypeError, match="unsupported dtype"):
            result_dtype(np.dtype("f8"), np.dtype(np.longdouble))


def test_float32_result_is_computed_accurately(rng):
    # int8 with float32 gives float32; the values equal the exact product to float32 rounding.
    A = rng.integers(-5, 5, (4, 3)).astype(np.int8)
    B = random_array(rng, (3, 5), np.float32)
    x = random_array(rng, 15, np.float32)
    y = matkron.kron_matvec([A, B], x)
    assert y.dtype == np.float32
    assert_product(y, [A, B], x, np.float32)


def _unsupported_arrays():
    return {
        "longdouble": np.ones((2, 2), dtype=np.longdouble),
        "clongdouble": np.ones((2, 2), dtype=np.clongdouble),
        "object": np.ones((2, 2), dtype=object),
        "str": np.full((2, 2), "a"),
        "bytes": np.full((2, 2), b"a"),
        "datetime": np.full((2, 2), np.datetime64("2020-01-01")),
    }


@pytest.mark.parametrize("kind", list(_unsupported_arrays()))
@pytest.mark.parametrize("where", ["factor", "x"])
def test_unsupported_dtypes(kind, where, rng):
    bad = _unsupported_arrays()[kind]
    good = random_array(rng, (2, 2), np.float64)
    if where == "factor":
        factors, x = [good, bad], np.ones(4)
    else:
        factors, x = [good, good], bad.reshape(-1)
    # Named: the argument, as given.
    name = "factors\\[1\\]" if where == "factor" else "x"
    with pytest.raises(TypeError, match=rf"^{name} has "):
        matkron.kron_matvec(factors, x)
    with pytest.raises(TypeError, match=rf"^{name} has "):
        matkron.kron_matvec(factors, x, out=np.empty(4))


def test_unsupported_dtypes_are_named_everywhere():
    A, L = np.eye(2), np.ones((2, 2), dtype=np.longdouble)
    expect = "has unsupported dtype float128; matkron computes in float32"
    cases = {
        "factors\\[0\\]": lambda: matkron.kron(L, A),
        "factors\\[1\\]": lambda: matkron.kron(A, scipy.sparse.csr_array(L)),
        "d": lambda: matkron.diagonal(np.ones(2, dtype=np.longdouble)),
        "b": lambda: matkron.kron(A, A).solve(np.ones(4, dtype=np.longdouble)),
        "mats\\[1\\]": lambda: matkron.kronsum(A, L),
        "terms\\[0\\]\\[1\\]": lambda: matkron.sum_of_kron([(A, L)]),
        "A": lambda: matkron.power_jacobian(L, 2),
    }
    for name, call in cases.items():
        with pytest.raises(TypeError, match=rf"^{name} {expect}"):
            call()


# -- errors --------------------------------------------------------------------------------


def test_length_error_message():
    A, B = np.ones((2, 3)), np.ones((5, 4))
    msg = "x has length 10; expected 12 = 3*4, the number of columns of kron(A, B)"
    with pytest.raises(ValueError, match=re.escape(msg)):
        matkron.kron_matvec([A, B], np.ones(10))
    # The same check (and message) when out= is given.
    with pytest.raises(ValueError, match=re.escape(msg)):
        matkron.kron_matvec([A, B], np.ones(10), out=np.empty(10))


def test_shape_error_messages_name_both_shapes():
    A, B, C = np.ones((2, 3)), np.ones((5, 4)), np.ones((1, 2))
    with pytest.raises(ValueError, match=r"x.*\b10\b.*\b24\b") as info:
        matkron.kron_matvec([A, B, C], np.ones((10, 3)))
    assert "kron(A, B, C)" in str(info.value)
    with pytest.raises(ValueError, match=r"x.*\b7\b.*\b3\b"):
        matkron.kron_matvec([A], np.ones(7))
    with pytest.raises(ValueError, match=r"x.*\b11\b.*\b12\b"):
        matkron.kron_matvec([A, matkron.identity(4)], np.ones(11, dtype=np.float32))


@pytest.mark.parametrize(
    "bad",
    [np.ones(3), np.ones((2, 2, 2)), np.float64(2.0), [1.0, 2.0], [[[1.0]]]],
    ids=["1-D", "3-D", "0-D", "list-1-D", "list-3-D"],
)
def test_factor_not_2d(bad):
    with pytest.raises(ValueError, match="2-D"):
        matkron.kron_matvec([np.ones((2, 2)), bad], np.ones(4))
    with pytest.raises(ValueError):
        matkron.kron_matvec([bad], np.ones(3))


def test_x_wrong_ndim():
    with pytest.raises(ValueError, match="x"):
        matkron.kron_matvec([np.ones((2, 2))], np.ones((2, 1, 1)))
    with pytest.raises(ValueError, match="x"):
        matkron.kron_matvec([np.ones((1, 1))], np.float64(1.0))


def test_no_factors():
    with pytest.raises(ValueError):
        matkron.kron_matvec([], np.ones(1))


def test_dimension_too_large_for_blas_int():
    # Two 1 x 2**16 factors: x has 2**32 entries, a zero-stride view of one element, so
    # nothing large is allocated; the result has one entry.
    A = np.ones((1, 2**16))
    x = np.lib.stride_tricks.as_strided(np.ones(1), shape=(2**32,), strides=(0,))
    x.setflags(write=False)
    with pytest.raises(ValueError):
        matkron.kron_matvec([A, A], x)
    with pytest.raises(ValueError):
        matkron.kron_matvec([A, A], x, out=np.empty(1))
    # Many right-hand sides: x of shape (4, 2**31) and out of shape (4, 2**31), both views.
    B = np.eye(2)
    x = np.lib.stride_tricks.as_strided(np.ones(1), shape=(4, 2**31), strides=(0, 0))
    x.setflags(write=False)
    out = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(4, 2**31), strides=(0, 0))
    with pytest.raises(ValueError):
        matkron.kron_matvec([B, B], x, out=out)


# -- property test -------------------------------------------------------------------------

_dims = st.integers(0, 4)


@st.composite
def _problems(draw):
    k = draw(st.integers(1, 4))
    spec = []
    for _ in range(k):
        if draw(st.integers(0, 5)) == 0:
            spec.append(("I", draw(_dims)))
        else:
            spec.append((draw(_dims), draw(_dims)))
    m = draw(st.sampled_from([None, 0, 1, 2, 3]))
    dtype = draw(st.sampled_from(DTYPES))
    factor_layouts = [draw(st.sampled_from(LAYOUTS)) for _ in range(k)]
    x_layout = draw(st.sampled_from(LAYOUTS))
    out_layout = draw(st.sampled_from((None,) + OUT_LAYOUTS))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([1.0, 1e-3, 1e4]))
    return spec, m, dtype, factor_layouts, x_layout, out_layout, seed, scale


@settings(max_examples=80, deadline=None)
@given(_problems())
def test_property_random_problems(problem):
    spec, m, dtype, factor_layouts, x_layout, out_layout, seed, scale = problem
    rng = np.random.default_rng(seed)
    factors = make_factors(rng, spec, dtype)
    factors = [f if not isinstance(f, np.ndarray) else (f * scale).astype(dtype) for f in factors]
    x_dense = random_array(rng, operand_shape(columns(spec), m), dtype)
    passed = [
        with_layout(f, lay) if isinstance(f, np.ndarray) else f
        for f, lay in zip(factors, factor_layouts)
    ]
    x = with_layout(x_dense, x_layout)
    if out_layout is None:
        y = matkron.kron_matvec(passed, x)
    else:
        out, _ = layout_view(operand_shape(rows(spec), m), dtype, out_layout)
        y = matkron.kron_matvec(passed, x, out=out)
        assert y is out
    assert_product(y, factors, x_dense, dtype)


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">c8", ">c16"])
def test_byte_swapped_operands(dtype):
    # Non-native byte order is converted, never read as native by BLAS.
    rng = np.random.default_rng(7)
    A = rng.standard_normal((3, 2)).astype(dtype)
    B = rng.standard_normal((2, 4)).astype(dtype)
    x = rng.standard_normal((8, 3)).astype(dtype)
    expected = np.kron(A.astype(A.dtype.newbyteorder("=")), B) @ x
    tol = 1e-5 if np.dtype(dtype).char in "fF" else 1e-12
    for y in (matkron.kron_matvec([A, B], x), matkron.kron(A, B) @ x):
        assert y.dtype.isnative
        np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


# -- sizes beyond the BLAS integer range: refused before anything is allocated or copied --


def test_result_beyond_blas_range_raises_before_allocating():
    # 2**32 result rows (32 GiB) used to raise MemoryError from the allocation.
    tall = np.ones((2**16, 1))
    with pytest.raises(ValueError, match=r"the result would have shape \(4294967296,\)") as e:
        matkron.kron_matvec([tall, tall], np.ones(1))
    assert "out" not in str(e.value)  # no out= was given
    with pytest.raises(ValueError, match=r"result would have shape \(65536, 32768\)"):
        matkron.kron_matvec([tall], np.ones((1, 2**15)))
    with pytest.raises(ValueError, match=r"the result would have shape \(4294967296,\)"):
        matkron.kron(tall, tall) @ np.ones(1)


def test_huge_zero_strided_operands_are_checked_before_any_copy():
    # Zero strides are not BLAS-readable, so such a factor is copied; the checks that can
    # fail come first (a copy of this factor would take 32 GiB).
    big = np.broadcast_to(1.0, (2**16, 2**16))
    x = np.broadcast_to(1.0, (2**32,))
    with pytest.raises(ValueError, match=r"x has shape \(4294967296,\): its number of "):
        matkron.kron_matvec([big, big], x)
    with pytest.raises(ValueError, match=r"result would have shape \(2147483648,\)"):
        matkron.kron_matvec([np.broadcast_to(1.0, (2**31, 1)), np.ones((1, 1))], np.ones(1))
