"""Input coercion and checks shared by the public functions.

All dtype policy lives here: the kernels serve float32, float64, complex64 and complex128.
"""

import math
import numbers
import operator

import numpy as np
import scipy.sparse

from ._kron_cy import is_blas_matrix

_BLAS_DTYPES = frozenset(np.dtype(t) for t in ("f4", "f8", "c8", "c16"))
_FLOAT64 = np.dtype(np.float64)
_FLOAT32 = np.dtype(np.float32)

# Largest dimension, stride or size (in elements) that fits the BLAS integer (LP64 SciPy).
BLAS_INT_MAX = 2**31 - 1


def blas_dtype(dtype):
    """Map a promoted dtype to the kernel dtype, or raise TypeError.

    Integers and bool compute in float64, float16 in float32; float32/64 and complex64/128
    are kept; everything else (longdouble, object, strings, datetimes, ...) is rejected
    rather than silently downcast.
    """
    if not dtype.isnative:
        dtype = dtype.newbyteorder("=")
    if dtype in _BLAS_DTYPES:
        return dtype
    if dtype.kind in "biu":
        return _FLOAT64
    if dtype == np.float16:
        return _FLOAT32
    raise TypeError(f"unsupported dtype {dtype}; {_COMPUTE_DTYPES}")


_COMPUTE_DTYPES = ("matkron computes in float32, float64, complex64 or complex128 (integers "
                   "and bool are promoted to float64, float16 to float32)")


def check_dtype(dtype, name):
    """TypeError naming `name` unless matkron computes in `dtype` (see blas_dtype)."""
    try:
        blas_dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} has unsupported dtype {dtype}; {_COMPUTE_DTYPES}") from None


# result_dtype's answers for tuples of dtypes (every product asks, with few distinct
# tuples): bounded, and only dtypes are keys (never Python scalars, whose values vary).
_RESULT_DTYPES = {}
_RESULT_DTYPES_MAX = 1024


def result_dtype(*dtypes):
    """The kernel dtype for operands of the given dtypes (numpy promotion, then blas_dtype)."""
    try:
        dtype = _RESULT_DTYPES.get(dtypes)
    except TypeError:  # a value that does not hash (a 0-d array)
        dtype = None
    if dtype is not None:
        return dtype
    try:
        dtype = np.result_type(*dtypes)
    except TypeError as exc:
        raise TypeError(f"operands have no common numeric dtype: {exc}") from None
    dtype = blas_dtype(dtype)
    for d in dtypes:
        if not isinstance(d, np.dtype):
            return dtype
    if len(_RESULT_DTYPES) < _RESULT_DTYPES_MAX:
        _RESULT_DTYPES[dtypes] = dtype
    return dtype


def own_dtypes(factors):
    """The dtypes of the array factors as given, which products with an operator built from
    them promote with (identity factors have none).

    The operator computes in the kernel dtype of their promotion (int8 factors in float64),
    but, as :func:`matkron.kron_matvec`, its product with a float32 operand is float32:
    ``result_dtype(*own_dtypes(factors), x.dtype)``, not ``result_dtype(dtype, x.dtype)``.
    """
    return tuple(f.dtype for f in factors if isinstance(f, np.ndarray))


def is_scalar(value):
    """Whether `value` is a single number (Python or NumPy scalar, not an array)."""
    if isinstance(value, np.generic):
        return value.dtype.kind in "biufc"
    return isinstance(value, numbers.Number)


def as_scalar(value):
    """`value` as a scalar when it is one (Python or NumPy scalar, or a 0-d numeric array,
    as NumPy treats it), else None."""
    if is_scalar(value):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biufc":
        return value[()]
    return None


def is_integer(value):
    """Whether `value` is a Python or NumPy integer (bool is not)."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def count(value, name, minimum=0, maximum=None):
    """`value` as a Python int from `minimum` to `maximum` (None: no bound), for sizes,
    orders, powers and thread counts.

    Python and NumPy integers are accepted; anything else, bool included (``True`` is not a
    count), raises TypeError, and a value out of range ValueError, naming `name`.
    """
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer; got {_given(value)}") from None
    if n < minimum or (maximum is not None and n > maximum):
        if maximum is not None and minimum > 0:
            expected = f"from {minimum} to {maximum}"
        elif n < minimum:
            expected = "non-negative" if minimum == 0 else f"at least {minimum}"
        else:
            expected = f"at most {maximum}"
        raise ValueError(f"{name} must be {expected}; got {n}")
    return n


def square_matrix(value, name):
    """`value` as a square 2-D array (:func:`as_array`), or ValueError naming `name`."""
    a = as_array(value, name)
    check_square(a.shape, name)
    check_blas_dims(a.shape, name)  # before a caller casts or copies it
    return a


def is_hermitian(a):
    """Whether the square array `a` equals its conjugate transpose up to 16 ulps of its
    largest entry (integers: of float64)."""
    scale = np.abs(a).max(initial=0.0)
    eps = np.finfo(a.dtype).eps if a.dtype.kind in "fc" else np.finfo(np.float64).eps
    tol = 16 * eps * scale
    # The first column against the first row first: most matrices that are not Hermitian
    # fail there, without the full difference.
    if a.shape[0] and not np.abs(a[:, 0] - a[0].conj()).max() <= tol:
        return False
    return bool(np.abs(a - a.conj().T).max(initial=0.0) <= tol)


def is_dask_array(x):
    """Whether `x` is a Dask array (its type is defined in a ``dask.array`` module).

    Cheap, and imports nothing: used on every product whose operand is not an ndarray.
    Other Dask collections (data frames) go the way of any other operand.
    """
    return type(x).__module__.startswith("dask.array.")


def as_array(value, name):
    """np.asarray with a TypeError naming the argument when the value is not numeric, or
    is a Dask array where a NumPy array is needed (np.asarray would compute it here,
    silently)."""
    if is_dask_array(value):
        raise TypeError(
            f"{name} is a Dask array where a NumPy array is needed (Dask arrays are taken "
            "lazily only as the operand of products and solves); pass "
            f"{name}.compute() to compute it here")
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"{name} is not a rectangular array: {exc}") from None
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{name} has dtype {arr.dtype}; expected a numeric array")
    check_dtype(arr.dtype, name)
    return arr


def supported_array(value, name):
    """:func:`as_array` of a dtype matkron accepts (see :func:`blas_dtype`), kept as given.

    For functions that only reshape (vec, unvec): the dtype is checked, never converted;
    a TypeError names the argument.
    """
    return as_array(value, name)


def blas_readable(mat, dtype):
    """`mat` cast to `dtype` with strides BLAS can read (one unit stride, the other a
    whole number of elements of at least the other dimension).

    Copies only when the dtype differs, the array is misaligned, or BLAS cannot read its
    strides: the rule is the kernels' own (``_kron_cy.is_blas_matrix``).
    """
    mat = mat.astype(dtype, copy=False)
    return mat if is_blas_matrix(mat) else np.array(mat, order="F")


def operand(x, dtype):
    """`x` cast to the kernel dtype; misaligned arrays are copied, any strides are kept."""
    x = x.astype(dtype, copy=False)
    if not x.flags.aligned:
        x = np.array(x)
    return x


def check_rows(x, n, name, what):
    """ValueError unless `x` is 1-D or 2-D with `n` rows: the one message for an operand
    of the wrong shape, naming `name` and what its rows must match (`what`)."""
    if x.ndim not in (1, 2) or x.shape[0] != n:
        raise shape_error(name, x.shape, f"({n},) or ({n}, k)", what)


def check_blas_size(n, what):
    if n > BLAS_INT_MAX:
        raise ValueError(
            f"{what} is {n}, larger than the BLAS integer limit {BLAS_INT_MAX}"
        )


def check_blas_dims(shape, name):
    """ValueError naming `name` when a dimension of a factor exceeds the BLAS integer
    range: such a factor can never reach BLAS, and copying it (a zero-strided view, say)
    could take more memory than the machine has. Checked before anything is copied."""
    if max(shape, default=0) > BLAS_INT_MAX:
        raise ValueError(
            f"{name} has shape {tuple(shape)}; the BLAS integer type allows at most "
            f"{BLAS_INT_MAX} rows and columns"
        )


def overlaps(a, b):
    """Whether arrays `a` and `b` may share memory (exact where cheap, else conservative)."""
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=10_000))
    except np.exceptions.TooHardError:
        return True


def check_out(out, shape, dtype, inputs):
    """Validate an `out=` array: exact shape and dtype, writeable, disjoint from `inputs`."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray; got {_given(out)}")
    if out.shape != shape:
        raise shape_error("out", out.shape, shape)
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}; expected {dtype}, the result dtype")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    for name, arr in inputs:
        if isinstance(arr, np.ndarray) and overlaps(out, arr):
            raise ValueError(f"out overlaps {name}; pass a separate array")
    if not out.flags.aligned:
        raise ValueError("out is not aligned for its dtype")


def check_finite(a, name, what, of="factors"):
    """ValueError naming `name` when the array `a` holds NaN or inf (as SciPy's
    ``check_finite``), before `what` runs a decomposition on it (:func:`not_finite`)."""
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        raise not_finite(name, what, of)


# -- one phrasing per mistake ------------------------------------------------------------
# The argument checks of the public functions raise through the helpers below (and those
# above: count, square_matrix, as_array, check_rows, check_out, check_dtype), so that one
# mistake has one message and one exception type wherever it is made: "{name} must be …;
# got …", or "{name} has shape …; expected …"; TypeError for a wrong type, ValueError for a
# wrong value or shape. Messages that only make sense in one place stay there. Helpers
# named for a check raise; those named for an error return it, for the caller to raise
# where it knows the condition (so the traceback ends there).


def _shown(value):
    """How a message shows a given value: its repr (cut short), or for an array or operator
    its type and shape (never the repr of a large array)."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and not isinstance(value, np.generic):
        return ("an array" if isinstance(value, np.ndarray) else
                f"a {type(value).__name__}") + f" of shape {shape}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _given(value):
    """:func:`_shown` with the type of the value, for a TypeError."""
    if isinstance(value, (bool, np.bool_)):
        return f"the bool {value!r}"
    if isinstance(getattr(value, "shape", None), tuple) and not isinstance(value, np.generic):
        return _shown(value)
    return f"{_shown(value)} of type {type(value).__name__}"


def _is_choice(value, allowed):
    """Whether `value` is `allowed` or equal to it (2.0 and a 0-d array of 2 are 2; a bool
    is no number, a string no number, and an array of more than one entry no choice)."""
    if value is allowed:
        return True
    if isinstance(value, np.ndarray):  # a 0-d numeric array is its scalar
        value = as_scalar(value)
        if value is None:
            return False
    if isinstance(value, (bool, np.bool_)) or (
            isinstance(value, str) != isinstance(allowed, str)):
        return False
    try:
        return bool(value == allowed)
    except (TypeError, ValueError):
        return False


def check_choice(value, name, allowed, alternative=None):
    """ValueError unless `value` is one of `allowed` (or equal to one: ``ord=2.0`` is 2):
    "{name} must be one of 'a', 'b'; got 'c'" (with "or {alternative}" when the caller
    accepts something else too, checked before)."""
    if not any(_is_choice(value, a) for a in allowed):
        choices = ", ".join(map(repr, allowed))
        if alternative is not None:
            choices += f" or {alternative}"
        raise ValueError(f"{name} must be one of {choices}; got {_shown(value)}")
    return value


def check_number(value, name, real=False, finite=False, nonnegative=False):
    """`value` if it is a number (a Python or NumPy scalar, or a 0-d numeric array, returned
    as its scalar; not a bool; a real one if `real`), else TypeError; then ValueError
    unless it is finite (if `finite`) and >= 0 (if `nonnegative`)."""
    scalar = as_scalar(value)  # a 0-d numeric array counts, as NumPy treats it
    ok = scalar is not None and (not real or isinstance(scalar, numbers.Real))
    if not ok or isinstance(scalar, (bool, np.bool_)):
        kind = "a real number" if real else "a number"
        raise TypeError(f"{name} must be {kind}; got "
                        f"{_given(value if scalar is None else scalar)}")
    value = scalar
    if finite and not isinstance(value, numbers.Integral) and not math.isfinite(
            abs(complex(value))):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be non-negative; got {value!r}")
    return value


def check_bool(value, name):
    """TypeError unless `value` is True or False (a Python or NumPy bool)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {_given(value)}")
    return bool(value)


def sequence_error(value, name, what):
    """The TypeError for `value` given where `name` must be a sequence of `what`."""
    return TypeError(f"{name} must be a sequence of {what}; got {_given(value)}")


def as_list(value, name, what, stacked=None):
    """`value` as a list, or TypeError (:func:`sequence_error`) when it is not a sequence.

    A string is not a sequence here, nor is one array (dense or sparse) unless it has at
    least `stacked` dimensions (a 3-D array as a sequence of matrices): its rows would be
    taken as the entries.
    """
    if isinstance(value, (str, bytes)) or scipy.sparse.issparse(value) or (
            isinstance(value, np.ndarray) and (stacked is None or value.ndim < stacked)):
        raise sequence_error(value, name, what)
    try:
        return list(value)
    except TypeError:
        raise sequence_error(value, name, what) from None


_WORDS = {1: "one", 2: "two"}


def check_nonempty(seq, name, what, minimum=1):
    """ValueError unless the sequence `seq` has at least `minimum` entries: "{name} must
    hold at least one {what}; got 0" (`what` in the number `minimum` asks for)."""
    if len(seq) < minimum:
        raise ValueError(
            f"{name} must hold at least {_WORDS.get(minimum, minimum)} {what}; got {len(seq)}"
        )


def check_length(seq, name, n, why):
    """ValueError unless the sequence `seq` has `n` entries (`why`: what they match)."""
    if len(seq) != n:
        raise ValueError(f"{name} has {len(seq)} entries; expected {n}, {why}")


def check_ndim(a, name, ndims):
    """ValueError unless the array `a` has one of the dimensions `ndims` (an int or a
    tuple): "{name} must be 1-D or 2-D; got shape (2, 2, 2)"."""
    ndims = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if a.ndim not in ndims:
        expected = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {expected}; got shape {a.shape}")


def check_square(shape, name, what="matrix"):
    """ValueError unless `shape` is that of a square matrix (or operator: `what`)."""
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name} must be a square {what}; got shape {tuple(shape)}")


def shape_error(name, shape, expected, why=None):
    """The ValueError for `name` of shape `shape` where `expected` (text) is needed, and
    `why` if given: "{name} has shape …; expected …[, why]"."""
    tail = f", {why}" if why else ""
    return ValueError(f"{name} has shape {tuple(shape)}; expected {expected}{tail}")


def check_stack(a, m, name, why):
    """ValueError unless the array `a` is one m×m matrix or a stack (k, m, m) of them."""
    if a.ndim not in (2, 3) or a.shape[-2:] != (m, m):
        raise shape_error(name, a.shape, f"({m}, {m}) or (k, {m}, {m})", why)


def check_conformable(how, left, right):
    """ValueError unless operands of shapes `left` and `right` can be added (`how` "add":
    the same shape) or multiplied ("multiply": the columns of the left, the rows of the
    right): "cannot add operators of shapes (2, 2) and (3, 3)"."""
    ok = left == right if how == "add" else left[1] == right[0]
    if not ok:
        raise ValueError(f"cannot {how} operators of shapes {left} and {right}")


def not_finite(name, what, of="factors"):
    """The ValueError for `name` holding NaN or inf where `what` needs finite `of`."""
    return ValueError(f"{name} contains NaN or inf; {what} needs finite {of}")


def needs_square(what, name, shape):
    """The ValueError for a factor `name` of shape `shape` where `what` needs square ones."""
    return ValueError(f"{what} needs square factors; {name} has shape {tuple(shape)}")


def needs_hermitian(what, name, need="Hermitian factors"):
    """The ValueError for a factor (or matrix) `name` that is not Hermitian where `what`
    needs `need`."""
    return ValueError(f"{what} needs {need}; {name} is not Hermitian")


def needs_structure(what, name):
    """The TypeError for an opaque LinearOperator factor `name` where `what` needs the
    structure of every factor."""
    return TypeError(f"{what} needs the structure of every factor; {name} is a "
                     "LinearOperator, which matkron can only apply")
