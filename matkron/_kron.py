"""Kronecker products applied without forming them: kron_matvec and its plan."""

import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _kron_cy
from ._factors import as_factor, factors_dtype, identity
from ._structured import structured_product
from ._validation import (
    as_array,
    as_list,
    check_blas_dims,
    check_blas_size,
    check_ndim,
    check_nonempty,
    check_out,
    count,
    operand,
    result_dtype,
    supported_array,
)

__all__ = ["identity", "kron_order", "unvec", "vec"]

MAX_FACTORS = _kron_cy.MAX_KRON_FACTORS


def vec(X: ArrayLike) -> NDArray[Any]:
    """Stack the columns of a matrix into a vector: ``X.ravel(order="F")``.

    Parameters
    ----------
    X : array_like
        The matrix (any number of dimensions is accepted, as for ``ravel``), of a dtype
        matkron accepts: float32, float64, complex64, complex128, an integer, bool or
        float16 type, in either byte order.

    Returns
    -------
    ndarray
        The 1-D column-major flattening, of the dtype of `X` (a reshape: no conversion, not
        even of integers or of the byte order); a view when the layout allows (a Fortran-
        contiguous `X`, or a vector), else a copy.

    Raises
    ------
    TypeError
        If `X` is not numeric (None, strings, objects) or of a dtype matkron rejects
        elsewhere (longdouble, datetimes, ...).

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> matkron.vec(np.array([[1, 2], [3, 4]]))
    array([1, 3, 2, 4])
    >>> X = np.asfortranarray([[1.0, 2.0], [3.0, 4.0]])
    >>> np.shares_memory(matkron.vec(X), X)
    True
    """
    return supported_array(X, "X").ravel(order="F")


def _shape_argument(shape):
    """unvec's `shape` as a tuple of non-negative ints (an int n means (n,))."""
    if isinstance(shape, (str, bytes)) or (
        isinstance(shape, np.ndarray) and shape.ndim > 1
    ):
        raise TypeError(
            f"shape must be an integer or a sequence of integers; got {shape!r}"
        )
    if isinstance(shape, (numbers.Integral, np.integer)) or (
        isinstance(shape, np.ndarray) and shape.ndim == 0
    ):
        return (count(shape, "shape"),)
    try:
        dims = list(shape)
    except TypeError:
        raise TypeError(
            f"shape must be an integer or a sequence of integers; got {shape!r} of type "
            f"{type(shape).__name__}"
        ) from None
    return tuple(count(d, f"shape[{i}]") for i, d in enumerate(dims))


def unvec(x: ArrayLike, shape: tuple[int, int]) -> NDArray[Any]:
    """Inverse of :func:`vec`: refill `shape` column by column from the vector `x`.

    Parameters
    ----------
    x : array_like
        1-D array of length ``prod(shape)``, of a dtype matkron accepts (as for
        :func:`vec`).
    shape : int or tuple of int
        The shape of the result, e.g. ``(rows, cols)``: non-negative integers.

    Returns
    -------
    ndarray
        ``x.reshape(shape, order="F")``, of the dtype of `x` (a reshape: no conversion);
        a view when the layout allows (any vector with one stride), else a copy.

    Raises
    ------
    TypeError
        If `x` is not numeric or of a dtype matkron rejects, or an entry of `shape` is not
        an integer (bool included).
    ValueError
        If `x` is not 1-D, an entry of `shape` is negative, or the product of `shape`
        differs from the length of `x`.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> matkron.unvec(np.array([1, 3, 2, 4]), (2, 2))
    array([[1, 2],
           [3, 4]])
    """
    x = supported_array(x, "x")
    check_ndim(x, "x", 1)
    shape = _shape_argument(shape)
    if math.prod(shape) != x.size:
        product = "*".join(map(str, shape)) if len(shape) > 1 else ""
        eq = f" = {product}" if product else ""
        raise ValueError(
            f"x has length {x.size}; expected {math.prod(shape)}{eq}, the product of "
            f"shape {shape}"
        )
    return x.reshape(shape, order="F")


def _cheaper_first(a, b):
    """Sort comparator: applying factor a before b costs fewer flops (exchange argument).

    With (p, q) the factor shapes, a goes first iff 1/q_a - 1/p_a < 1/q_b - 1/p_b; compared
    in exact integer arithmetic. Ties keep the given order.
    """
    (pa, qa), (pb, qb) = a[1], b[1]
    lhs = (pa - qa) * pb * qb
    rhs = (pb - qb) * pa * qa
    return -1 if lhs < rhs else (1 if lhs > rhs else 0)


def _apply_order(shapes, skip=()):
    """Factor indices (not in `skip`) in the order of least flops."""
    items = [(i, s) for i, s in enumerate(shapes) if i not in skip]
    items.sort(key=functools.cmp_to_key(_cheaper_first))
    return tuple(i for i, _ in items)


def _flops(shapes, order, m):
    size = m * math.prod(q for _, q in shapes)
    flops = 0
    for i in order:
        p, q = shapes[i]
        if q == 0:
            return 0
        flops += size * p
        size = size // q * p
    return flops


def kron_order(
    shapes: Sequence[tuple[int, int]], m: int = 1
) -> tuple[tuple[int, ...], int]:
    """The cheapest order in which to apply the factors of a Kronecker product.

    Parameters
    ----------
    shapes : sequence of (int, int)
        The factor shapes (p_i, q_i) of F1 ⊗ … ⊗ Fk.
    m : int, optional
        The number of right-hand sides.

    Returns
    -------
    order : tuple of int
        Factor indices in the order they are applied.
    flops : int
        The exact number of scalar multiplications of that order.

    Notes
    -----
    Applying factor i to a tensor of N entries costs N p_i multiplications and scales the
    tensor by p_i / q_i. An exchange argument shows that applying i before j is cheaper iff
    1/q_i − 1/p_i < 1/q_j − 1/p_j, so sorting by that key is optimal.

    Examples
    --------
    >>> import matkron
    >>> matkron.kron_order([(2, 50), (50, 2)])
    ((0, 1), 400)
    """
    shapes = as_list(shapes, "shapes", "(rows, columns) pairs", stacked=2)
    check_nonempty(shapes, "shapes", "(rows, columns) pair")
    for i, shape in enumerate(shapes):
        try:
            shapes[i] = tuple(shape)
        except TypeError:
            raise TypeError(
                f"shapes[{i}] must be a (rows, columns) pair; got {shape!r} of type "
                f"{type(shape).__name__}"
            ) from None
        if len(shapes[i]) != 2:
            raise ValueError(f"shapes[{i}] must be a (rows, columns) pair; got {shape!r}")
    shapes = [
        (count(p, f"shapes[{i}][0]"), count(q, f"shapes[{i}][1]"))
        for i, (p, q) in enumerate(shapes)
    ]
    order = _apply_order(shapes)
    return order, _flops(shapes, order, count(m, "m"))


def _factor_names(k):
    if k <= 26:
        return [chr(ord("A") + i) for i in range(k)]
    return [f"F{i + 1}" for i in range(k)]


def describe(shapes):
    """`kron(A, B)`-style name of a product, for messages."""
    return "kron(" + ", ".join(_factor_names(len(shapes))) + ")"


def as_factors(factors, name="factors"):
    """Validate a sequence of Kronecker factors of any kind (see :mod:`matkron._factors`).

    Returns the list of Factor objects and the product of the coefficients of the
    KronOperators among them, which are flattened into their factors.
    """
    factors = as_list(factors, name, "2-D arrays (a single factor in a list)", stacked=3)
    check_nonempty(factors, name, "factor")
    out = []
    coeff = 1
    for i, f in enumerate(factors):
        inner = getattr(f, "_kron_factors", None)
        if inner is not None:  # a KronOperator: its factors, and its coefficient
            out.extend(inner)
            coeff = coeff * f.coeff
        else:
            out.append(as_factor(f, f"{name}[{i}]"))
    if len(out) > MAX_FACTORS:
        raise ValueError(
            f"{name} has {len(out)} factors; matkron supports at most {MAX_FACTORS}"
        )
    return out, coeff


def factor_dtype(factors):
    """The kernel dtype of the factors (float64 when all are identities)."""
    return factors_dtype(factors)


def kernel_factors(factors, dtype):
    """The dense and identity factors as the kernel takes them: BLAS-readable arrays of
    `dtype`, or ints."""
    mats = []
    for i, f in enumerate(factors):
        # Checked before a copy that BLAS-unreadable strides (zero, say) would need.
        check_blas_dims(f.shape, f"factors[{i}]")
        mats.append(f.kernel(dtype))
    return tuple(mats)


def check_operand(x, shapes, name="x", columns=True):
    """Check that x (1-D or 2-D) matches the columns (or rows) of the product of `shapes`
    and that the kernel can index it."""
    check_ndim(x, name, (1, 2))
    dims = [q if columns else p for p, q in shapes]
    expected = math.prod(dims)
    if x.shape[0] != expected:
        count = f"{x.shape[0]} rows" if x.ndim == 2 else f"length {x.shape[0]}"
        product = "*".join(map(str, dims))
        eq = f" = {product}" if len(dims) > 1 else ""
        kind = "columns" if columns else "rows"
        raise ValueError(
            f"{name} has {count}; expected {expected}{eq}, the number of {kind} of "
            f"{describe(shapes)}"
        )
    check_blas_size(x.size, f"{name} has shape {x.shape}: its number of elements")


def result_shape(rows, x):
    """The shape of a product with `rows` rows and x's columns, checked against the BLAS
    integer range before anything of that shape is allocated."""
    shape = (rows,) if x.ndim == 1 else (rows, x.shape[1])
    check_blas_size(math.prod(shape), f"the result would have shape {shape}: its number of "
                    "elements")
    return shape


def apply(terms, x, out, accumulate=False):
    """Run the kernel: out (+)= Σ alpha · kron(mats) @ x for coerced and checked arrays.

    `terms` holds (alpha, mats) pairs, `mats` as made by :func:`kernel_factors`.
    """
    if out.size == 0:
        return out
    if x.shape[0] == 0:
        if not accumulate:
            out.fill(0)
        return out
    check_blas_size(x.size, f"x has shape {x.shape}: its number of elements")
    check_blas_size(out.size, f"the result has shape {out.shape}: its number of elements")
    return _kron_cy.kron_apply(terms, x, out, accumulate)


def product(mats, x, rows, out=None):
    """kron(mats) @ x for checked operands of the kernel dtype, into `out` or a new array.

    A new 2-D result is C- or Fortran-ordered, as the plan that runs writes it (it may
    change from call to call while the planner measures the key's candidates).
    """
    if out is None:
        result = _kron_cy.kron_matvec_fast(mats, x, True)
        if result is not None:
            return result
        # Empty, huge or many-factor operands: the kernel fills a C-ordered array.
        out = np.empty(result_shape(rows, x), dtype=x.dtype)
    return apply(((1, mats),), x, out)


def _checked_kron_matvec(factors, x, *, out=None):
    """Compute (F1 ⊗ F2 ⊗ … ⊗ Fk) x without forming the Kronecker product.

    Parameters
    ----------
    factors : sequence of array_like, sparse matrix, LinearOperator or factor
        k >= 1 two-dimensional factors; Fi has shape (p_i, q_i). As for
        :func:`matkron.kron`: array_likes, :func:`matkron.identity` (applied without a
        GEMM), :func:`matkron.diagonal` (a scaling along its mode), ``scipy.sparse``
        matrices or arrays of any format (applied sparse), ``LinearOperator`` objects
        (through their ``matmat``), or KronOperators (flattened into their factors).
    x : array_like
        1-D of length q_1 ⋯ q_k, or 2-D of shape (q_1 ⋯ q_k, m) with m right-hand sides
        as columns. Any memory layout.
    out : ndarray, optional
        Where to write the result: the exact result shape and dtype, writeable, any
        memory layout, not overlapping `x` or a factor.

    Returns
    -------
    ndarray
        The product, of shape (p_1 ⋯ p_k,) or (p_1 ⋯ p_k, m), equal to
        ``np.kron(np.kron(F1, F2), …) @ x`` up to rounding; `out` when given.

    Raises
    ------
    ValueError
        If a factor is not 2-D, `x` does not match the factors, `out` is unsuitable, or a
        dimension exceeds the BLAS integer range.
    TypeError
        If an operand has a dtype outside float, complex, integer and bool, or longdouble.

    Notes
    -----
    With vec the column-stacking map, (A ⊗ B) vec(C) = vec(B C Aᵀ): each factor is applied
    along its mode of x reshaped (in Fortran order) as a q_k × ⋯ × q_1 tensor, by one GEMM
    or one sequence of GEMMs, in the order of least flops (:func:`kron_order`); for two
    factors that is the cheaper of (B C) Aᵀ and B (C Aᵀ). The m right-hand sides share
    those GEMMs. A GEMM may write its result transposed when that spares BLAS calls, so a
    new 2-D result may be Fortran-ordered: it is in the order of the plan that runs, which
    may change from call to call while the planner measures a product and is the faster
    order measured after (pass `out` for a fixed order). When one column's tensors are large (from
    256 KiB) and the result is Fortran-ordered, the columns are applied one at a time, so
    that each stays in cache through all the steps (an x in another layout is then first
    copied into Fortran order, if all of it exceeds 6 MiB). The result dtype is
    ``np.result_type`` of the arrays, with integers and bool computed in float64 and
    float16 in float32.

    On x86-64 CPUs with AVX-512, or with AVX2 and FMA, float32 and float64 steps whose
    factor is small enough for matkron's own step kernel (its pack limit is in the kernel
    registry, ``_kron_cy.kernel_registry()``: 32768 entries after rounding the rows up to a
    multiple of 16 for AVX-512, 4096 after rounding them to a multiple of 8 for AVX2) run
    that kernel instead of BLAS wherever its estimated time is lower: it multiplies along
    the mode in registers without packing the tensor, and writes a transposed result by
    transposing blocks of the register tile. Results agree with the BLAS path to rounding
    (the sums are taken in another order).

    A ``dask.array`` x gives a lazy ``dask.array`` (``out`` must be None): a 2-D x by blocks
    of whole columns, a 1-D x by pencils, the factors applied along the modes that lie
    whole in a chunk and the others after an all-to-all rechunk; no task holds more than
    about one chunk. See the README, "Beyond one machine".

    Operands are read through their strides: `x` in place when it is a contiguous vector,
    C-contiguous, or Fortran-ordered with any column stride; any other `x` (negative or
    non-unit strides, padded rows) is copied once into the workspace. Factors are copied
    only when BLAS cannot read them, and inputs of another dtype are cast. Intermediate
    tensors live in a per-thread workspace reused across calls, and a call with `out`
    allocates nothing else; the GIL is released during the computation.

    Examples
    --------
    >>> import numpy as np
    >>> import matkron
    >>> A = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> B = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> x = np.arange(4.0)
    >>> matkron.kron_matvec([A, B], x)
    array([ 7.,  4., 15.,  8.])
    >>> np.kron(A, B) @ x
    array([ 7.,  4., 15.,  8.])
    """
    factors, coeff = as_factors(factors)
    x = as_array(x, "x")
    dtype = result_dtype(*(f.dtype for f in factors if f.dtype is not None), coeff, x.dtype)
    shapes = [f.shape for f in factors]
    check_operand(x, shapes)
    shape = result_shape(math.prod(p for p, _ in shapes), x)
    if out is not None:
        named = [("x", x)] + [
            (f"factors[{i}]", f.a) for i, f in enumerate(factors) if f.kind == "dense"
        ]
        check_out(out, shape, dtype, named)
    x = operand(x, dtype)
    if coeff == 1 and all(f.in_kernel for f in factors):
        return product(kernel_factors(factors, dtype), x, shape[0], out)
    if out is None:
        out = np.empty(shape, dtype=dtype, order="F" if x.ndim == 2 else "C")
    return structured_product(factors, x, dtype, out, alpha=coeff)

