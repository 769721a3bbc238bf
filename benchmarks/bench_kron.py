"""asv-style benchmarks of the kron suite: (A ⊗ B) x by matkron and by its baselines.

Operands, baselines and the GEMM floor come from :mod:`matkron._bench.kron`, the suite
behind ``python -m matkron bench kron``, so both harnesses measure the same code. Run with
asv, or without it: ``python benchmarks/run.py``. BLAS runs on one thread, as in the suite.
"""

import functools

import numpy as np
from threadpoolctl import threadpool_limits

import matkron
from matkron import _workspace
from matkron._bench import kron
from matkron._bench.report import format_bytes
from matkron._bench.timing import traced_peak

# The largest dense np.kron(A, B) that the naive route builds: n <= 128 (as the full suite).
DENSE_CAP = 2 * 2**30


class _OneThread:
    """Pin BLAS to one thread from setup to teardown."""

    def _pin(self):
        self._limits = threadpool_limits(limits=1)

    def teardown(self, *params):
        self._limits.restore_original_limits()


class KronProduct(_OneThread):
    """(A ⊗ B) x for n×n factors; x a vector, or (n², 16) in C or Fortran order."""

    params = (list(kron.SIZES), list(kron.LAYOUTS))
    param_names = ("n", "x")
    timeout = 300

    def setup(self, n, x):
        case = kron.Case(*kron.factors(n), x)
        self.A, self.B, self.x = case.A, case.B, case.x
        self.K, self.op, self.vec_trick, self.floor = case.K, case.op, case.vec_trick, case.floor
        self._pin()

    def time_kron_matvec(self, n, x):
        matkron.kron_matvec([self.A, self.B], self.x)

    def time_kron_operator(self, n, x):
        self.K @ self.x

    def time_vec_trick(self, n, x):
        self.vec_trick(self.x)

    def time_linear_operator(self, n, x):
        self.op @ self.x

    def time_gemm_floor(self, n, x):
        self.floor()

    def track_kron_matvec_peak_bytes(self, n, x):
        _workspace.release()
        return traced_peak(functools.partial(matkron.kron_matvec, [self.A, self.B], self.x))[0]

    track_kron_matvec_peak_bytes.unit = "bytes"


class DenseKron(_OneThread):
    """The naive route, np.kron(A, B) @ x, while the dense matrix fits in DENSE_CAP."""

    params = KronProduct.params
    param_names = KronProduct.param_names
    timeout = 600

    def setup(self, n, x):
        if kron.dense_bytes(n) > DENSE_CAP:
            raise NotImplementedError(
                f"np.kron(A, B) would take {format_bytes(kron.dense_bytes(n))}, "
                f"over DENSE_CAP = {format_bytes(DENSE_CAP)}"
            )
        A, B = kron.factors(n)
        self.A, self.B = A, B
        self.dense = np.kron(A, B)
        self.x = kron.Case(A, B, x).x
        self._pin()

    def time_matvec(self, n, x):
        self.dense @ self.x

    def track_peak_bytes(self, n, x):
        return traced_peak(lambda: np.kron(self.A, self.B) @ self.x)[0]

    track_peak_bytes.unit = "bytes"


class DenseKronBuild(_OneThread):
    """Building the dense np.kron(A, B), the naive route's setup."""

    params = tuple(n for n in kron.SIZES if kron.dense_bytes(n) <= DENSE_CAP)
    param_names = ("n",)
    timeout = 600

    def setup(self, n):
        self.A, self.B = kron.factors(n)
        self._pin()

    def time_build(self, n):
        np.kron(self.A, self.B)
