# The executor's interface to the other units of the Kronecker kernel
# (csrc/_kron_exec_cy.pyx). Declared here, in the package, so that cimports name the
# installed module.
from _interrupt cimport Watch
from _kron_types cimport Factor, Operand, Plan

# On one thread, with `ws` of plan.need bytes.
cdef void execute(int type_num, const Factor* factors, int k, const Plan* plan,
                  const Operand* x, const Operand* out, char* ws, double complex alpha,
                  bint accumulate, Watch* watch) noexcept nogil
# On `threads` threads (exec_threads), with `ws` of exec_workspace(...) bytes.
cdef void execute_threads(int type_num, const Factor* factors, int k, const Plan* plan,
                          const Operand* x, const Operand* out, char* ws,
                          double complex alpha, bint accumulate, Watch* watch,
                          int threads) noexcept nogil
cdef int exec_threads(const Factor* factors, int k, const Plan* plan, Py_ssize_t m,
                      int type_num) noexcept nogil
cdef Py_ssize_t exec_workspace(const Plan* plan, int threads,
                               Py_ssize_t itemsize) noexcept nogil
cdef void force_threads(int n) noexcept nogil
