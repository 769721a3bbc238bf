"""No public function writes to its inputs (in the spirit of Bottleneck's input test).

Each input is passed in several memory layouts; the whole buffer behind every input (gaps of
strided views included) is compared bit for bit before and after the call, and so are the
flags. Results that are new arrays must not share memory with the inputs.
"""

import numpy as np
import pytest

import matkron

from .conftest import DTYPES, LAYOUTS, layout_view, random_array


def _buffer(a):
    """The outermost array whose memory `a` views (or `a` itself)."""
    while isinstance(a, np.ndarray) and isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _snapshot(arrays):
    return [(_buffer(a).tobytes(order="A"), a.flags.writeable, a.copy()) for a in arrays]


def _assert_unchanged(arrays, snapshot):
    for a, (raw, writeable, copy) in zip(arrays, snapshot):
        assert a.flags.writeable == writeable
        np.testing.assert_array_equal(a, copy)
        assert _buffer(a).tobytes(order="A") == raw


def _passed(a, layout):
    view, _ = layout_view(a.shape, a.dtype, layout)
    view[...] = a
    if layout == "readonly":
        view.setflags(write=False)
    return view


def _square(rng, n, dtype):
    return (2 * n * np.eye(n) + random_array(rng, (n, n), dtype)).astype(dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES + (np.dtype("int32"),), ids=str)
def test_kron_matvec_does_not_write_inputs(dtype, layout, rng):
    A = random_array(rng, (3, 2), dtype)
    B = random_array(rng, (2, 4), dtype)
    factors = [_passed(A, layout), _passed(B, layout)]
    for m in (None, 3):
        x = _passed(random_array(rng, (8,) if m is None else (8, m), dtype), layout)
        inputs = factors + [x]
        snap = _snapshot(inputs)
        y = matkron.kron_matvec(factors, x)
        _assert_unchanged(inputs, snap)
        assert not any(np.shares_memory(y, a) for a in inputs)
        y[...] = 0
        _assert_unchanged(inputs, snap)
        out = np.empty_like(y)
        matkron.kron_matvec(factors, x, out=out)
        _assert_unchanged(inputs, snap)
        # mixed dtypes: a float32 factor with this operand
        mixed = [_passed(random_array(rng, (3, 2), np.float32), layout), factors[1]]
        snap2 = _snapshot(mixed + [x])
        matkron.kron_matvec(mixed, x)
        _assert_unchanged(mixed + [x], snap2)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_identity_only_result_is_a_new_array(layout, rng):
    x = _passed(random_array(rng, 6, np.float64), layout)
    snap = _snapshot([x])
    y = matkron.kron_matvec([matkron.identity(2), matkron.identity(3)], x)
    assert not np.shares_memory(y, x)
    y[...] = 0
    _assert_unchanged([x], snap)
    K = matkron.kron(matkron.identity(6))
    for z in (K @ x, K.H @ x, K.solve(x)):
        assert not np.shares_memory(z, x)
        z[...] = 0
        _assert_unchanged([x], snap)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_operator_methods_do_not_write_inputs(dtype, layout, rng):
    A = _passed(_square(rng, 3, dtype), layout)
    B = _passed(_square(rng, 2, dtype), layout)
    x = _passed(random_array(rng, 6, dtype), layout)
    X = _passed(random_array(rng, (6, 2), dtype), layout)
    inputs = [A, B, x, X]
    snap = _snapshot(inputs)
    K = matkron.kron(A, matkron.identity(1), B)
    calls = [
        lambda: K @ x,
        lambda: K @ X,
        lambda: K.matvec(x),
        lambda: K.rmatvec(x),
        lambda: K.matmat(X),
        lambda: K.rmatmat(X),
        lambda: K.T @ x,
        lambda: K.H @ X,
        lambda: K.solve(x),
        lambda: K.solve(X),
        lambda: K.inv() @ x,
        lambda: K.det(),
        lambda: K.slogdet(),
        lambda: K.trace(),
        lambda: K.norm(),
        lambda: K.todense(),
        lambda: K @ x.astype(np.complex128),
    ]
    for call in calls:
        result = call()
        _assert_unchanged(inputs, snap)
        if isinstance(result, np.ndarray):
            assert not any(np.shares_memory(result, a) for a in inputs)
            result[...] = 0
            _assert_unchanged(inputs, snap)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_vec_unvec_do_not_write_inputs(layout, rng):
    X = _passed(random_array(rng, (3, 4), np.float64), layout)
    x = _passed(random_array(rng, 12, np.float64), layout)
    snap = _snapshot([X, x])
    matkron.vec(X)
    matkron.unvec(x, (3, 4))
    matkron.unvec(x, (4, 3))
    _assert_unchanged([X, x], snap)


def test_kron_order_does_not_modify_shapes():
    shapes = [[2, 3], [4, 5], [3, 1]]
    copy = [list(s) for s in shapes]
    matkron.kron_order(shapes, m=3)
    assert shapes == copy


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_frechet_and_cond_do_not_write_inputs(dtype, layout, rng):
    A = _passed(_square(rng, 4, dtype), layout)
    H0 = _square(rng, 4, dtype)
    H = _passed((H0 + H0.conj().T) / 2, layout)
    E = _passed(random_array(rng, (4, 4), dtype), layout)
    # A stack: the rows of a (8, 4) matrix in the layout (a view where NumPy can reshape
    # one, else a copy, itself checked).
    Es8 = _passed(random_array(rng, (8, 4), dtype), layout)
    Es = Es8.reshape(2, 4, 4)
    x = _passed(random_array(rng, 16, dtype), layout)
    inputs = [A, H, E, Es8, Es, x]
    snap = _snapshot(inputs)
    calls = [lambda: matkron.frechet(f, M, X, p=p)
             for f, p in (("expm", None), ("logm", None), ("sqrtm", None), ("inv", None),
                          ("power", 3), ("power", 0.5))
             for M in (A, H) for X in (E, Es)]
    calls += [
        lambda: matkron.frechet(np.exp, H, E, fprime=np.exp),
        lambda: matkron.frechet("expm", A) @ x,
        lambda: matkron.frechet("sqrtm", A).H @ x,
        lambda: matkron.frechet_power(A, E, 5),
        lambda: matkron.frechet_power(A, Es, 5),
        lambda: matkron.power_jacobian(A, 5) @ x,
        lambda: matkron.cond("expm", A),
        lambda: matkron.cond("logm", A, norm=1),
    ]
    for call in calls:
        result = call()
        _assert_unchanged(inputs, snap)
        if isinstance(result, np.ndarray):
            assert not any(np.shares_memory(result, a) for a in inputs)
            result[...] = 0
            _assert_unchanged(inputs, snap)
