# The planner's interface to the other units of the Kronecker kernel (csrc/_kron_plan_cy.pyx).
# Declared here, in the package, so that cimports name the installed module.
from _kron_types cimport Factor, Operand, Plan, matkron_step_kernel

cdef void plan_product(const Factor* factors, int k, const Operand* x, const Operand* out,
                       int type_num, Plan* plan) noexcept
cdef void inspect_plan(const Factor* factors, int k, const Operand* x, const Operand* out,
                       int type_num, Plan* plan) noexcept
cdef void plan_timed(const Plan* plan) noexcept
cdef bint constrain(const int* variants, int nsteps, int own_kernel, int row) noexcept
cdef const matkron_step_kernel* kernel_row(int i, bint* available) noexcept
