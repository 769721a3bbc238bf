# The fused dtype vocabulary and BLAS shims shared by every matkron kernel.
#
# BLAS is reached only through scipy.linalg.cython_blas (the BLAS SciPy itself uses), so
# matkron links against nothing. Matrices are column-major to BLAS; a row-major (C-ordered)
# matrix is handed over as its column-major transpose by flipping the transpose flag.
cimport numpy as cnp
from scipy.linalg cimport cython_blas
from _blas_int cimport blas_int

cdef enum:
    # The largest dimension, leading dimension or size handed to BLAS (LP64 SciPy).
    BLAS_INT_MAX = 2147483647

ctypedef float complex complex64_t
ctypedef double complex complex128_t

ctypedef fused blas_t:
    float
    double
    complex64_t
    complex128_t


cdef inline void gemm_scaled(char transa, char transb, blas_int m, blas_int n, blas_int k,
                             blas_t alpha, const blas_t* a, blas_int lda,
                             const blas_t* b, blas_int ldb,
                             blas_t beta, blas_t* c, blas_int ldc) noexcept nogil:
    """c = alpha * op(a) @ op(b) + beta * c, with op(a) m-by-k and op(b) k-by-n."""
    if blas_t is float:
        cython_blas.sgemm(&transa, &transb, &m, &n, &k, &alpha, <float*>a, &lda,
                          <float*>b, &ldb, &beta, c, &ldc)
    elif blas_t is double:
        cython_blas.dgemm(&transa, &transb, &m, &n, &k, &alpha, <double*>a, &lda,
                          <double*>b, &ldb, &beta, c, &ldc)
    elif blas_t is complex64_t:
        cython_blas.cgemm(&transa, &transb, &m, &n, &k, &alpha, <complex64_t*>a, &lda,
                          <complex64_t*>b, &ldb, &beta, c, &ldc)
    else:
        cython_blas.zgemm(&transa, &transb, &m, &n, &k, &alpha, <complex128_t*>a, &lda,
                          <complex128_t*>b, &ldb, &beta, c, &ldc)


cdef inline void gemm(char transa, char transb, blas_int m, blas_int n, blas_int k,
                      const blas_t* a, blas_int lda, const blas_t* b, blas_int ldb,
                      blas_t beta, blas_t* c, blas_int ldc) noexcept nogil:
    """c = op(a) @ op(b) + beta * c, with op(a) m-by-k and op(b) k-by-n."""
    cdef blas_t one = 1
    gemm_scaled(transa, transb, m, n, k, one, a, lda, b, ldb, beta, c, ldc)


cdef inline bint is_blas_type(int type_num) noexcept nogil:
    """Whether a NumPy type number is one of the four dtypes the kernels serve."""
    return (type_num == cnp.NPY_FLOAT32 or type_num == cnp.NPY_FLOAT64
            or type_num == cnp.NPY_COMPLEX64 or type_num == cnp.NPY_COMPLEX128)


cdef inline int blas_type_num(blas_t value) noexcept nogil:
    """The NumPy type number of blas_t (`value` only selects the specialization): for jobs
    handed to matkron's threads as plain structs, which dispatch back on it."""
    return (cnp.NPY_FLOAT32 if blas_t is float else cnp.NPY_FLOAT64 if blas_t is double
            else cnp.NPY_COMPLEX64 if blas_t is complex64_t else cnp.NPY_COMPLEX128)


cdef inline bint is_blas_array(cnp.ndarray a) noexcept:
    """Whether BLAS can take `a`'s elements as they are: one of the four dtypes, in native
    byte order, aligned."""
    return (is_blas_type(cnp.PyArray_TYPE(a)) and cnp.PyArray_ISNOTSWAPPED(a)
            and cnp.PyArray_ISALIGNED(a))


cdef inline Py_ssize_t max_size(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b


cdef inline bint blas_matrix(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t s0, Py_ssize_t s1,
                             Py_ssize_t itemsize, char* trans, Py_ssize_t* ld) noexcept nogil:
    """Whether BLAS reads a rows-by-cols matrix with byte strides (s0, s1) in place: the one
    stride rule of every kernel and of the Python layer (matkron._validation.blas_readable).

    It does as column-major M ('N': unit s0, s1 a whole number of elements of at least
    `rows`) or as the column-major M.T ('T': the same with the axes swapped), with the
    leading dimension `ld` (in elements) and both dimensions within the BLAS integer range.
    The stride along an axis of length 1 is never read (a zero-strided broadcast row is
    readable); BLAS still wants ld >= the stored rows. Negative strides are not readable.
    """
    if ((rows <= 1 or s0 == itemsize)
            and (cols <= 1 or (s1 >= rows * itemsize and s1 % itemsize == 0))):
        trans[0] = c'N'
        ld[0] = max_size(s1 // itemsize, 1) if cols > 1 else max_size(rows, 1)
    elif ((cols <= 1 or s1 == itemsize)
            and (rows <= 1 or (s0 >= cols * itemsize and s0 % itemsize == 0))):
        trans[0] = c'T'
        ld[0] = max_size(s0 // itemsize, 1) if rows > 1 else max_size(cols, 1)
    else:
        return False
    return ld[0] <= BLAS_INT_MAX and rows <= BLAS_INT_MAX and cols <= BLAS_INT_MAX
