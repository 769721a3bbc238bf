# The Fréchet derivative of the matrix exponential, L_exp(A, E_j) for a stack of
# directions, by scaling and squaring (Al-Mohy and Higham 2009, Algorithm 6.4, the
# algorithm of scipy.linalg.expm_frechet) in one compiled call:
#
#   A-only, once: the degree d in {3, 5, 7, 9, 13} and scaling s from ‖A‖₁ and the ℓ_d of
#   Table 6.1; the even powers of 2⁻ˢA; the Padé polynomials W (U = A W) and V; the LU
#   factors of q(A) = V − U and R₀ = q(A)⁻¹(U + V); the squares R_j = R_{j-1}², j < s.
#   Per direction: the recurrences (6.11)-(6.13) for M_{2i}, Lu, Lv; L = q(A)⁻¹(Lu + Lv +
#   (Lu − Lv) R₀) by getrs; the squaring phase L <- R_j L + L R_j.
#
# Matrices are column-major with leading dimension m. GEMMs, loops and LAPACK run inside
# one `with nogil:` block. matkron._frechet_expm.ExpmFrechet is the same algorithm over a
# whole stack at a time in NumPy (for the operator, whose A-only data is kept).

cimport numpy as cnp
from libc.math cimport ceil, log2
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from scipy.linalg cimport cython_lapack

from _blas cimport blas_t, complex64_t, complex128_t, gemm, is_blas_array
from _blas_int cimport blas_int
from _interrupt cimport Watch, raise_pending, watch_start, watch_tick

import threading

import numpy as np

cnp.import_array()

cdef unsigned long _main_thread = threading.main_thread().ident

# Directions are processed in chunks of at most this many entries per intermediate.
cdef Py_ssize_t CHUNK_ENTRIES = 1 << 20

cdef extern from *:
    """
    static const double MK_ELL[5] = {1.08e-2, 2.00e-1, 7.83e-1, 1.78e0, 4.74e0};
    static const int MK_DEG[5] = {3, 5, 7, 9, 13};
    static const double MK_B[5][14] = {
        {120., 60., 12., 1.},
        {30240., 15120., 3360., 420., 30., 1.},
        {17297280., 8648640., 1995840., 277200., 25200., 1512., 56., 1.},
        {17643225600., 8821612800., 2075673600., 302702400., 30270240., 2162160.,
         110880., 3960., 90., 1.},
        {64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800.,
         129060195264000., 10559470521600., 670442572800., 33522128640., 1323241920.,
         40840800., 960960., 16380., 182., 1.}};
    """
    const double* MK_ELL
    const int* MK_DEG
    double MK_B[5][14]


cdef inline void _getrf(blas_int m, blas_t* a, blas_int* ipiv, blas_int* info) noexcept nogil:
    if blas_t is float:
        cython_lapack.sgetrf(&m, &m, a, &m, ipiv, info)
    elif blas_t is double:
        cython_lapack.dgetrf(&m, &m, a, &m, ipiv, info)
    elif blas_t is complex64_t:
        cython_lapack.cgetrf(&m, &m, a, &m, ipiv, info)
    else:
        cython_lapack.zgetrf(&m, &m, a, &m, ipiv, info)


cdef inline void _getrs(blas_int m, blas_int nrhs, blas_t* a, blas_int* ipiv,
                        blas_t* b) noexcept nogil:
    cdef char trans = c'N'
    cdef blas_int info = 0
    if blas_t is float:
        cython_lapack.sgetrs(&trans, &m, &nrhs, a, &m, ipiv, b, &m, &info)
    elif blas_t is double:
        cython_lapack.dgetrs(&trans, &m, &nrhs, a, &m, ipiv, b, &m, &info)
    elif blas_t is complex64_t:
        cython_lapack.cgetrs(&trans, &m, &nrhs, a, &m, ipiv, b, &m, &info)
    else:
        cython_lapack.zgetrs(&trans, &m, &nrhs, a, &m, ipiv, b, &m, &info)


cdef inline void _mul(blas_int m, const blas_t* a, const blas_t* b, blas_t beta,
                      blas_t* c) noexcept nogil:
    """c = a b + beta c (m×m)."""
    gemm(c'N', c'N', m, m, m, a, m, b, m, beta, c, m)


cdef inline void _left(blas_int m, Py_ssize_t c, const blas_t* p, const blas_t* x,
                       blas_t beta, blas_t* out) noexcept nogil:
    """[P X_1 … P X_c] + beta out: one GEMM of P with the m × cm chunk."""
    gemm(c'N', c'N', m, <blas_int>(c * m), m, p, m, x, m, beta, out, m)


cdef inline void _right(blas_int m, Py_ssize_t c, const blas_t* x, const blas_t* p,
                        blas_t beta, blas_t* out) noexcept nogil:
    """[X_1 P … X_c P] + beta out: one GEMM per matrix of the chunk."""
    cdef Py_ssize_t j, mm = <Py_ssize_t>m * m
    for j in range(c):
        gemm(c'N', c'N', m, m, m, x + j * mm, m, p, m, beta, out + j * mm, m)


cdef inline void _comb3(Py_ssize_t mm, blas_t* out, double c0, const blas_t* x0, double c1,
                        const blas_t* x1, double c2, const blas_t* x2) noexcept nogil:
    """out = c0 x0 + c1 x1 + c2 x2 (any of x1, x2 may be NULL)."""
    cdef Py_ssize_t i
    cdef blas_t a0 = c0, a1 = c1, a2 = c2
    for i in range(mm):
        out[i] = a0 * x0[i]
    if x1 != NULL:
        for i in range(mm):
            out[i] += a1 * x1[i]
    if x2 != NULL:
        for i in range(mm):
            out[i] += a2 * x2[i]


cdef inline void _add_diag(blas_int m, blas_t* out, double c) noexcept nogil:
    cdef Py_ssize_t i
    cdef blas_t cc = c
    for i in range(m):
        out[i * (m + 1)] += cc


cdef int _run(blas_int m, Py_ssize_t k, int idx, int s, Py_ssize_t chunk, const blas_t* A,
              const blas_t* E, blas_t* out, blas_t* ws, blas_int* ipiv,
              Watch* watch) noexcept nogil:
    """out[:, :, j] = L_exp(A, E[:, :, j]); returns getrf's info (> 0: q(A) singular), or
    -1 when a signal handler raised between directions (see _interrupt.pxd)."""
    cdef Py_ssize_t mm = <Py_ssize_t>m * m, i, j, r
    cdef int d = MK_DEG[idx]
    cdef const double* b = &MK_B[idx][0]
    cdef blas_t scale = 1
    cdef blas_int info = 0
    cdef blas_t zero = 0, one = 1
    # Workspace: 8 + max(s, 1) matrices, then 7 chunks of `chunk` matrices.
    cdef blas_t* As = ws
    cdef blas_t* A2 = ws + mm
    cdef blas_t* A4 = ws + 2 * mm
    cdef blas_t* A6 = ws + 3 * mm      # A8 for d = 9
    cdef blas_t* W1 = ws + 4 * mm
    cdef blas_t* Z1 = ws + 5 * mm
    cdef blas_t* W = ws + 6 * mm
    cdef blas_t* Q = ws + 7 * mm
    cdef blas_t* R = ws + 8 * mm        # R_0 … R_{s-1}
    # Chunk slots of `chunk` matrices each, after the squares.
    cdef Py_ssize_t big = <Py_ssize_t>chunk * mm
    cdef blas_t* Ej = ws + (8 + (s if s > 1 else 1)) * mm
    cdef blas_t* M2 = Ej + big
    cdef blas_t* M4 = M2 + big
    cdef blas_t* M6 = M4 + big
    cdef blas_t* T1 = M6 + big
    cdef blas_t* T2 = T1 + big
    cdef blas_t* Lv = T2 + big
    cdef Py_ssize_t j0, c, cm
    # Per direction: Lu in out's column, Lv and T2 in the two slots after the squares.
    cdef blas_t* Lu
    cdef blas_t* tmp
    cdef blas_t half = 0.5, coef
    for r in range(s):
        scale = scale * half
    for i in range(mm):
        As[i] = A[i] * scale
    # A-only data.
    _mul(m, As, As, zero, A2)
    if d >= 5:
        _mul(m, A2, A2, zero, A4)
    if d >= 7:
        _mul(m, A2, A4, zero, A6)
    if d == 9:
        _mul(m, A4, A4, zero, A6)      # A8 in the A6 slot (A6 is not needed for d = 9 …)
        _mul(m, A2, A4, zero, Z1)      # … except in W and V: A6 kept in Z1
    # W (in W) and V (in Q, then Q = V − U after U in T1 … see below).
    if d == 13:
        _comb3(mm, W1, b[13], A6, b[11], A4, b[9], A2)
        _comb3(mm, Z1, b[12], A6, b[10], A4, b[8], A2)
        _comb3(mm, W, b[7], A6, b[5], A4, b[3], A2)
        _add_diag(m, W, b[1])
        _mul(m, A6, W1, one, W)
        _comb3(mm, Q, b[6], A6, b[4], A4, b[2], A2)
        _add_diag(m, Q, b[0])
        _mul(m, A6, Z1, one, Q)
    elif d == 3:
        _comb3(mm, W, b[3], A2, 0, NULL, 0, NULL)
        _add_diag(m, W, b[1])
        _comb3(mm, Q, b[2], A2, 0, NULL, 0, NULL)
        _add_diag(m, Q, b[0])
    elif d == 5:
        _comb3(mm, W, b[5], A4, b[3], A2, 0, NULL)
        _add_diag(m, W, b[1])
        _comb3(mm, Q, b[4], A4, b[2], A2, 0, NULL)
        _add_diag(m, Q, b[0])
    elif d == 7:
        _comb3(mm, W, b[7], A6, b[5], A4, b[3], A2)
        _add_diag(m, W, b[1])
        _comb3(mm, Q, b[6], A6, b[4], A4, b[2], A2)
        _add_diag(m, Q, b[0])
    else:  # d = 9: A8 in A6, A6 in Z1
        _comb3(mm, W, b[9], A6, b[7], Z1, b[5], A4)
        coef = b[3]
        for i in range(mm):
            W[i] += coef * A2[i]
        _add_diag(m, W, b[1])
        _comb3(mm, Q, b[8], A6, b[6], Z1, b[4], A4)
        coef = b[2]
        for i in range(mm):
            Q[i] += coef * A2[i]
        _add_diag(m, Q, b[0])
    # U = As W in T1; R₀ = U + V, Q = V − U; LU of Q; R₀ = Q⁻¹ R₀.
    _mul(m, As, W, zero, T1)
    for i in range(mm):
        R[i] = T1[i] + Q[i]
        Q[i] = Q[i] - T1[i]
    _getrf(m, Q, ipiv, &info)
    if info != 0:
        return info
    _getrs(m, m, Q, ipiv, R)
    for r in range(1, s):
        _mul(m, R + (r - 1) * mm, R + (r - 1) * mm, zero, R + r * mm)
    # Directions, a chunk of c at a time: [X_1 … X_c] is one m × cm matrix, so each product
    # P X_j with an A-only P is one GEMM over the chunk; the X_j P are one GEMM each.
    j0 = 0
    while j0 < k:
        c = chunk if k - j0 > chunk else k - j0
        cm = c * mm
        Lu = out + j0 * mm
        for i in range(cm):
            Ej[i] = E[j0 * mm + i] * scale
        _left(m, c, As, Ej, zero, M2)
        _right(m, c, Ej, As, one, M2)
        if d >= 5:
            _left(m, c, A2, M2, zero, M4)
            _right(m, c, M2, A2, one, M4)
        if d >= 7:
            _left(m, c, A4, M2, zero, M6)                       # M6 = A4 M2 + M4 A2
            _right(m, c, M4, A2, one, M6)
        if d == 13:
            _comb3(cm, T1, b[13], M6, b[11], M4, b[9], M2)     # Lw1
            _comb3(cm, T2, b[7], M6, b[5], M4, b[3], M2)       # Lw2
            _left(m, c, A6, T1, one, T2)
            _right(m, c, M6, W1, one, T2)                       # Lw
            _left(m, c, As, T2, zero, Lu)
            _right(m, c, Ej, W, one, Lu)                        # Lu
            _comb3(cm, T1, b[12], M6, b[10], M4, b[8], M2)     # Lz1
            _comb3(cm, Lv, b[6], M6, b[4], M4, b[2], M2)       # Lz2
            _left(m, c, A6, T1, one, Lv)
            _right(m, c, M6, Z1, one, Lv)                       # Lv
        else:
            if d == 3:
                _comb3(cm, T1, b[3], M2, 0, NULL, 0, NULL)
                _comb3(cm, Lv, b[2], M2, 0, NULL, 0, NULL)
            elif d == 5:
                _comb3(cm, T1, b[5], M4, b[3], M2, 0, NULL)
                _comb3(cm, Lv, b[4], M4, b[2], M2, 0, NULL)
            elif d == 7:
                _comb3(cm, T1, b[7], M6, b[5], M4, b[3], M2)
                _comb3(cm, Lv, b[6], M6, b[4], M4, b[2], M2)
            else:  # d = 9: M8 = A4 M4 + M4 A4 in T2
                _left(m, c, A4, M4, zero, T2)
                _right(m, c, M4, A4, one, T2)
                _comb3(cm, T1, b[9], T2, b[7], M6, b[5], M4)
                coef = b[3]
                for i in range(cm):
                    T1[i] += coef * M2[i]
                _comb3(cm, Lv, b[8], T2, b[6], M6, b[4], M4)
                coef = b[2]
                for i in range(cm):
                    Lv[i] += coef * M2[i]
            _left(m, c, As, T1, zero, Lu)
            _right(m, c, Ej, W, one, Lu)
        # Lu + Lv + (Lu − Lv) R₀, then the solve with q(A) for the whole chunk.
        for i in range(cm):
            T2[i] = Lu[i] - Lv[i]
            Lu[i] = Lu[i] + Lv[i]
        _right(m, c, T2, R, one, Lu)
        _getrs(m, <blas_int>(c * m), Q, ipiv, Lu)
        for r in range(s):
            tmp = R + r * mm
            _left(m, c, tmp, Lu, zero, T2)
            _right(m, c, Lu, tmp, one, T2)
            memcpy(Lu, T2, cm * sizeof(blas_t))
        if watch_tick(watch, (16.0 + 2 * s) * cm * m):
            return -1
        j0 += c
    return 0


def _degree(double norm):
    """(index into the tables, s) for ‖A‖₁ = norm."""
    cdef int idx
    for idx in range(4):
        if norm <= MK_ELL[idx]:
            return idx, 0
    if norm <= MK_ELL[4]:
        return 4, 0
    return 4, max(0, <int>ceil(log2(norm / MK_ELL[4])))


def expm_frechet(cnp.ndarray A, cnp.ndarray E, cnp.ndarray out):
    """Write L_exp(A, E[:, :, j]) into out[:, :, j] for every j.

    A is m×m, E and out are (m, m, k), all Fortran-contiguous, aligned, native, of one
    of the four dtypes, m >= 1; out does not overlap the others. Raises LinAlgError if
    the Padé denominator is singular (it cannot be for the finite A of the degree bounds;
    NaN in A can make it so).
    """
    cdef int type_num = cnp.PyArray_TYPE(A)
    cdef blas_int m = <blas_int>cnp.PyArray_DIM(A, 0)
    cdef Py_ssize_t k = cnp.PyArray_DIM(E, 2)
    cdef int idx, s, info = 0
    cdef Py_ssize_t slots, chunk
    cdef char* ws
    cdef blas_int* ipiv
    cdef cnp.ndarray arr
    cdef Watch watch
    for arr in (A, E, out):
        if (cnp.PyArray_TYPE(arr) != type_num or not is_blas_array(arr)
                or not cnp.PyArray_ISFARRAY_RO(arr)):
            raise ValueError("expm_frechet: arrays must be Fortran-contiguous, aligned, "
                             "of one BLAS dtype")
    norm = float(np.abs(A).sum(axis=0).max())
    idx, s = _degree(norm)
    # Directions in chunks of up to CHUNK_ENTRIES entries per slot (8 MiB in float64).
    chunk = max(1, min(k, CHUNK_ENTRIES // (<Py_ssize_t>m * m)))
    slots = 8 + (s if s > 1 else 1) + 7 * chunk
    ws = <char*>malloc(slots * <Py_ssize_t>m * m * cnp.PyArray_ITEMSIZE(A))
    ipiv = <blas_int*>malloc(m * sizeof(blas_int))
    if ws == NULL or ipiv == NULL:
        free(ws)
        free(ipiv)
        raise MemoryError()
    cdef const char* a = cnp.PyArray_BYTES(A)
    cdef const char* e = cnp.PyArray_BYTES(E)
    cdef char* o = cnp.PyArray_BYTES(out)
    watch_start(&watch, _main_thread)
    try:
        with nogil:
            if type_num == cnp.NPY_FLOAT32:
                info = _run(m, k, idx, s, chunk, <const float*>a, <const float*>e, <float*>o,
                            <float*>ws, ipiv, &watch)
            elif type_num == cnp.NPY_FLOAT64:
                info = _run(m, k, idx, s, chunk, <const double*>a, <const double*>e,
                            <double*>o, <double*>ws, ipiv, &watch)
            elif type_num == cnp.NPY_COMPLEX64:
                info = _run(m, k, idx, s, chunk, <const complex64_t*>a, <const complex64_t*>e,
                            <complex64_t*>o, <complex64_t*>ws, ipiv, &watch)
            else:
                info = _run(m, k, idx, s, chunk, <const complex128_t*>a,
                            <const complex128_t*>e, <complex128_t*>o, <complex128_t*>ws, ipiv,
                            &watch)
    finally:
        free(ws)
        free(ipiv)
    if info == -1:
        raise_pending()
    if info != 0:
        raise np.linalg.LinAlgError("the Padé denominator q(A) is singular (A not finite?)")
    return out

