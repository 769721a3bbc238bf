# The executor's interface to the other units of the Kronecker kernel
# (csrc/_kron_exec_cy.pyx). Declared here, in the package, so that cimports name the
# installed module.
from _interrupt cimport Watch
from _kron_types cimport Factor, Operand, Plan

cdef void execute(int type_num, const Factor* factors, int k, const Plan* plan,
                  const Operand* x, const Operand* out, char* ws, double complex alpha,
                  bint accumulate, Watch* watch) noexcept nogil
