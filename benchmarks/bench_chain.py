"""asv-style benchmarks of the chain suite: chain_order and multi_dot against their baselines.

Dimensions, operands and the GEMM floor come from :mod:`matkron._bench.chain`, the suite
behind ``python -m matkron bench chain``, so both harnesses measure the same code. Run with
asv, or without it: ``python benchmarks/run.py -k Chain``. BLAS runs on one thread, as in
the suite. numpy's DP is timed up to k = 100 here (it takes seconds from k = 500 on; the
suite times it there with single calls).
"""

from threadpoolctl import threadpool_limits

import matkron
from matkron._bench import chain


class _OneThread:
    """Pin BLAS to one thread from setup to teardown."""

    def _pin(self):
        self._limits = threadpool_limits(limits=1)

    def teardown(self, *params):
        self._limits.restore_original_limits()


class ChainOrder(_OneThread):
    """matkron.chain_order on k random dimensions in [1, 1000]."""

    params = tuple(k for k in chain.PLAN_KS if k <= chain.DP_MAX_K)
    param_names = ("k",)
    timeout = 300

    def setup(self, k):
        self.dims = chain.chain_dims(k)
        self._pin()

    def time_chain_order(self, k):
        matkron.chain_order(self.dims)

    def track_optimal_cost(self, k):
        return matkron.chain_order(self.dims).cost

    def track_reverse_mode_over_optimal(self, k):
        plan = matkron.chain_order(self.dims)
        return plan.left_to_right_cost / plan.cost

    def track_forward_mode_over_optimal(self, k):
        plan = matkron.chain_order(self.dims)
        return plan.right_to_left_cost / plan.cost


class HuShingChainOrder(_OneThread):
    """matkron.chain_order(..., method="hu-shing"), which alone reaches k = 100 000."""

    params = tuple(chain.PLAN_KS)
    param_names = ("k",)
    timeout = 300

    def setup(self, k):
        self.dims = chain.chain_dims(k)
        self._pin()

    def time_hu_shing(self, k):
        matkron.chain_order(self.dims, method="hu-shing")


class NumpyChainOrder(_OneThread):
    """numpy's pure-Python DP (the one numpy.linalg.multi_dot runs) on the same dimensions."""

    params = tuple(k for k in chain.PLAN_KS if k <= 100)
    param_names = ("k",)
    timeout = 600

    def setup(self, k):
        self.dims = chain.chain_dims(k)
        self._pin()

    def time_numpy_dp(self, k):
        chain.numpy_dp(self.dims)


class OptEinsumChainOrder(_OneThread):
    """opt_einsum.contract_path(..., optimize="dp") on the same dimensions."""

    params = tuple(k for k in chain.PLAN_KS if k <= 100)
    param_names = ("k",)
    timeout = 600

    def setup(self, k):
        self.path = chain.opt_einsum_call(chain.chain_dims(k))
        if self.path is None:
            raise NotImplementedError("opt_einsum is not installed")
        self._pin()

    def time_opt_einsum_dp(self, k):
        self.path()


class MultiDot(_OneThread):
    """multi_dot on short chains of small float64 matrices, and its baselines."""

    params = tuple(chain.MULTI_DOT_CASES)
    param_names = ("case",)
    timeout = 300

    def setup(self, case):
        _, self.statements = chain.multi_dot_case(case)
        self._pin()

    def time_matkron(self, case):
        self.statements["matkron"]()

    def time_numpy(self, case):
        self.statements["numpy"]()

    def time_left_to_right(self, case):
        self.statements["left_to_right"]()

    def time_gemm_floor(self, case):
        self.statements["floor"]()
