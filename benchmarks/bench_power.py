"""asv-style benchmarks of the power suite: the Jacobian of A ↦ Aⁿ applied to vec(E).

Operands and the explicit-matrix baseline come from :mod:`matkron._bench.power`, the suite
behind ``python -m matkron bench power``, so both harnesses measure the same code. Run with
asv, or without it: ``python benchmarks/run.py -k Power``. BLAS runs on one thread, as in
the suite (which also pins the whole run, JAX included, to one CPU).
"""

import numpy as np
from threadpoolctl import threadpool_limits

import matkron
from matkron._bench import power


class _OneThread:
    """Pin BLAS to one thread from setup to teardown."""

    def _pin(self):
        self._limits = threadpool_limits(limits=1)

    def teardown(self, *params):
        self._limits.restore_original_limits()


class PowerJacobianGeneral(_OneThread):
    """J.matvec(vec(E)) by method, for a general A (spectral radius 1)."""

    params = [list(power.ORDERS), list(power.POWERS),
              ["naive", "horner", "binary", "dense", "auto"]]
    param_names = ("m", "n", "method")
    timeout = 600

    def setup(self, m, n, method):
        if method == "dense" and m > power.DENSE_MAX_M:
            raise NotImplementedError("the dense method is for small m")
        if method == "naive" and n * m * m * 8 > 2**30:
            raise NotImplementedError("the stored powers would exceed 1 GiB")
        A, E = power.matrices(m, False)
        self.J = matkron.power_jacobian(A, n, method=method)
        self.x = matkron.vec(E).copy()
        self._pin()

    def time_matvec(self, m, n, method):
        self.J.matvec(self.x)


class PowerJacobianHermitian(_OneThread):
    """J.matvec(vec(E)) by method, for a symmetric A: "eig" against "binary"."""

    params = [list(power.ORDERS), list(power.POWERS), ["binary", "eig", "auto"]]
    param_names = ("m", "n", "method")
    timeout = 600

    def setup(self, m, n, method):
        A, E = power.matrices(m, True)
        self.J = matkron.power_jacobian(A, n, method=method)
        self.x = matkron.vec(E).copy()
        self._pin()

    def time_matvec(self, m, n, method):
        self.J.matvec(self.x)


class ExplicitKroneckerSum(_OneThread):
    """The naive baseline: Σₖ (A^{n-1-k})ᵀ ⊗ A^k built by np.kron, and D @ vec(E)."""

    params = [[m for m in power.ORDERS if m <= power.DENSE_MAX_M], list(power.POWERS)]
    param_names = ("m", "n")
    timeout = 600

    def setup(self, m, n):
        self.A, E = power.matrices(m, False)
        self.n = n
        self.D = power.explicit_matrix(self.A, n)
        self.x = matkron.vec(E).copy()
        self._pin()

    def time_build(self, m, n):
        power.explicit_matrix(self.A, self.n)

    def time_matvec(self, m, n):
        np.matmul(self.D, self.x)


class JaxJvp(_OneThread):
    """jax.jvp of jnp.linalg.matrix_power, jit-compiled (skipped without JAX)."""

    params = [list(power.ORDERS), list(power.POWERS)]
    param_names = ("m", "n")
    timeout = 600

    def setup(self, m, n):
        mods = power._jax()
        if mods is None:
            raise NotImplementedError("jax is not installed")
        jax, jnp = mods
        A, E = power.matrices(m, False)
        self.f = power._jax_jvp(jax, jnp, n)
        self.A, self.E = jnp.asarray(A), jnp.asarray(E)
        self.f(self.A, self.E).block_until_ready()
        self._pin()

    def time_jvp(self, m, n):
        self.f(self.A, self.E).block_until_ready()
