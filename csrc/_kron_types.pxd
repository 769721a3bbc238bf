# The vocabulary of the Kronecker kernel, shared by its three units (one direction of
# dependency: entry points -> planner -> executor -> step kernels):
#
#   _kron_cy.pyx        entry points: operands checked and described (Factor, Operand)
#   _kron_plan_cy.pyx   the planner: order, step variants, kernels, workspace (Plan)
#   _kron_exec_cy.pyx   the executor: runs a Plan by BLAS and the registry's kernels
#   kernels/            the own step kernels and their registry (registry.h)
#
# With vec = column stacking, a vector x of length q1*…*qk is the Fortran-ordered tensor
# X[qk, …, q1] (the last factor varies fastest), and applying Fi is a product along the mode
# of length qi. The m right-hand sides of a 2-D x are one more mode, last for a
# Fortran-ordered x ("F kind") and first for a C-ordered one ("C kind"), to which no factor
# is applied. Mode ids: factor i is mode i, the right-hand sides are mode k.
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from _blas_int cimport blas_int

cdef extern from "kernels/registry.h" nogil:
    enum:
        MATKRON_F32
        MATKRON_F64
        MATKRON_C64
        MATKRON_C128
    ctypedef struct matkron_step_cost:
        double per_call
        double per_multiply
        double short_vector
        double rotated_front
        double per_copied
    ctypedef struct matkron_step_kernel:
        const char* name
        const char* isa
        int dtype
        int reference
        int lanes
        int tile_vectors
        Py_ssize_t pack_round
        Py_ssize_t max_pack
        matkron_step_cost cost
        int (*copies)(Py_ssize_t p, Py_ssize_t x_sk) noexcept nogil
        Py_ssize_t (*pack_size)(Py_ssize_t p, Py_ssize_t q, Py_ssize_t size) noexcept nogil
        void (*pack)(Py_ssize_t p, Py_ssize_t q, const void* f, Py_ssize_t f_si,
                     Py_ssize_t f_sk, void* pack) noexcept nogil
        int (*step)(Py_ssize_t p, Py_ssize_t q, Py_ssize_t n, const void* alpha,
                    const void* x, Py_ssize_t x_sk, Py_ssize_t x_sr, const void* beta,
                    void* y, Py_ssize_t y_si, Py_ssize_t y_sr, void* pack,
                    Py_ssize_t pack_size) noexcept nogil
    int matkron_step_kernel_count()
    const matkron_step_kernel* matkron_step_kernel_row(int i)
    int matkron_step_kernel_available(const matkron_step_kernel* kernel)
    const matkron_step_kernel* matkron_step_kernel_for(int dtype)
    int matkron_step_kernel_admits(const matkron_step_kernel* kernel, Py_ssize_t p,
                                   Py_ssize_t q)


cdef enum:
    MAX_FACTORS = 32             # factors of one Kronecker product
    MAX_MODES = MAX_FACTORS + 1  # the factors' modes and the right-hand-side mode
    STACK_WORKSPACE_BYTES = 16384
    # Step variants: the factor's mode stays in place, or is written at the front/back.
    NORMAL = 0
    ROTATE_FRONT = 1
    ROTATE_BACK = 2


cdef struct Factor:
    # A factor as BLAS sees it: the column-major matrix at `data` is F ('N') or F.T ('T');
    # data is NULL for the identity.
    char* data
    char trans
    blas_int ld
    Py_ssize_t p
    Py_ssize_t q


cdef struct Operand:
    # x or out as the kernel sees it: n rows and m columns (m = 1 for 1-D), byte strides.
    char* data
    Py_ssize_t n
    Py_ssize_t m
    Py_ssize_t s0
    Py_ssize_t s1


cdef struct Plan:
    # How one Kronecker product runs.
    int nsteps
    int order[MAX_FACTORS]       # factor applied at each step
    char variant[MAX_FACTORS]    # NORMAL, ROTATE_FRONT or ROTATE_BACK
    char own[MAX_FACTORS]        # whether the step runs `kernel` instead of BLAS
    const matkron_step_kernel* kernel  # the registry row of own steps (NULL: none)
    bint x_direct                # step 0 reads x in place (else a copy in the workspace)
    bint x_c_kind                # kind of the tensor step 0 reads
    bint out_direct              # the last step writes out in place (else copy at the end)
    bint out_c_kind              # kind of the final tensor
    bint by_column               # run as m products with one column each (this plan's)
    Py_ssize_t column_copy       # bytes at the start of the workspace for x copied to
                                 # Fortran order first (0: x is read in place)
    double cost                  # estimated microseconds (see _kron_plan_cy._step_cost)
    Py_ssize_t largest           # elements in each of the (at most two) workspace buffers
    Py_ssize_t pack              # elements for a packed factor after the buffers
    Py_ssize_t need              # workspace bytes
    # A candidate the measuring planner is timing (_kron_plan_cy.plan_timed): the cache
    # slot (-1: not timed), the entry's generation and the candidate's index, and the
    # seconds the run took (timer_start / timer_stop around the executor, without the GIL).
    int ticket
    unsigned int ticket_generation
    int ticket_candidate
    double started
    double seconds


cdef inline void kind_perm(int k, bint c_kind, int* perm) noexcept nogil:
    """Memory order of the modes for a tensor of the given kind (rhs id = k)."""
    cdef int i
    for i in range(k):
        perm[i + 1 if c_kind else i] = k - 1 - i
    perm[0 if c_kind else k] = k


cdef inline void move_mode(const int* perm, int nmodes, int mode, bint to_front,
                           int* out) noexcept nogil:
    """`perm` with `mode` moved to the front or the back: the layout a rotated step writes."""
    cdef int u, n = 0
    if to_front:
        out[0] = mode
        n = 1
    for u in range(nmodes):
        if perm[u] != mode:
            out[n] = perm[u]
            n += 1
    if not to_front:
        out[n] = mode


cdef inline double monotonic_seconds() noexcept nogil:
    """A monotonic clock, in seconds (no Python)."""
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec + 1e-9 * now.tv_nsec


cdef inline void timer_start(Plan* plan) noexcept nogil:
    """Start the clock of a plan the measuring planner is timing (else nothing)."""
    if plan.ticket >= 0:
        plan.started = monotonic_seconds()


cdef inline void timer_stop(Plan* plan) noexcept nogil:
    """Stop it: plan.seconds is the run's time, for _kron_plan_cy.plan_timed."""
    if plan.ticket >= 0:
        plan.seconds = monotonic_seconds() - plan.started
