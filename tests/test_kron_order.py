"""matkron.kron_order against brute force over every application order."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matkron

from .conftest import flops_of


def brute_force_min(shapes, m):
    return min(flops_of(shapes, perm, m) for perm in itertools.permutations(range(len(shapes))))


def check(shapes, m=None):
    order, flops = matkron.kron_order(shapes) if m is None else matkron.kron_order(shapes, m)
    m = 1 if m is None else m
    assert isinstance(order, tuple)
    assert sorted(order) == list(range(len(shapes)))
    assert all(isinstance(i, int) for i in order)
    assert isinstance(flops, int)
    assert flops == flops_of(shapes, order, m)
    assert flops == brute_force_min(shapes, m)


def test_flops_of_by_hand():
    # The oracle itself, on a case worked by hand: (2, 50) then (50, 2) with m = 1.
    # S = 100; apply (2, 50): 100 * 2 = 200, S = 4; apply (50, 2): 4 * 50 = 200.
    assert flops_of([(2, 50), (50, 2)], (0, 1), 1) == 400
    # the other way: 100 * 50 = 5000, S = 2500; then 2500 * 2 = 5000.
    assert flops_of([(2, 50), (50, 2)], (1, 0), 1) == 10000


def test_example():
    assert matkron.kron_order([(2, 50), (50, 2)]) == ((0, 1), 400)
    assert matkron.kron_order([(50, 2), (2, 50)]) == ((1, 0), 400)
    assert matkron.kron_order([(2, 50), (50, 2)], m=3) == ((0, 1), 1200)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("m", [1, 2, 5])
def test_random_rectangular_shapes(k, m, rng):
    for _ in range(15 if k < 6 else 5):
        shapes = [tuple(int(d) for d in rng.integers(1, 12, 2)) for _ in range(k)]
        check(shapes, m)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_all_dimensions_different(k, rng):
    for _ in range(5):
        dims = rng.choice(np.arange(1, 40), 2 * k, replace=False)
        shapes = [(int(dims[2 * i]), int(dims[2 * i + 1])) for i in range(k)]
        check(shapes)
        check(shapes, 4)


@pytest.mark.parametrize(
    "shapes",
    [
        [(3, 3)],
        [(1, 1)],
        [(1, 7)],
        [(7, 1)],
        [(3, 3), (4, 4), (2, 2)],  # square: every order costs the same
        [(2, 3), (3, 2)],  # ties
        [(2, 4), (3, 6), (1, 2)],  # equal ratios
        [(1, 5), (5, 1), (1, 5), (5, 1)],
        [(100, 1), (1, 100)],
        [(10**6, 3), (2, 10**6), (7, 5)],  # big numbers: exact integer arithmetic
        [(0, 3), (2, 4)],
        [(3, 0), (2, 4)],
        [(2, 3), (4, 0), (5, 6)],
        [(0, 0), (3, 3)],
    ],
    ids=str,
)
def test_special_shapes(shapes):
    check(shapes)
    check(shapes, 3)


def test_m_zero():
    order, flops = matkron.kron_order([(2, 3), (4, 5)], m=0)
    assert sorted(order) == [0, 1]
    assert flops == 0


def test_accepts_numpy_integers_and_lists():
    shapes = [np.array([2, 3]), [np.int64(4), np.int32(5)]]
    _, flops = matkron.kron_order(shapes, m=np.int64(2))
    assert flops == brute_force_min([(2, 3), (4, 5)], 2)


def test_errors():
    with pytest.raises(ValueError):
        matkron.kron_order([])
    with pytest.raises(ValueError):
        matkron.kron_order([(2, -1)])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30)), min_size=1, max_size=6),
    st.integers(1, 5),
)
def test_property_optimal(shapes, m):
    check(shapes, m)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 10**9), st.integers(1, 10**9)), min_size=2, max_size=5),
)
def test_property_optimal_large_dimensions(shapes):
    # Exact integers far beyond float precision: the order must still be exactly optimal.
    check(shapes)
