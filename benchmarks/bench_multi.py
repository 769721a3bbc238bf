"""asv-style benchmarks of the multi suite: (F1 ⊗ … ⊗ Fk) x by matkron, baselines and peers.

Factors, operands, the GEMM floor, the NumPy shuffle forms and the peer calls come from
:mod:`matkron._bench.multi`, the suite behind ``python -m matkron bench multi``, so both
harnesses measure the same code. Run with asv, or without it: ``python benchmarks/run.py -k
Multi``. BLAS (and OpenMP) run on one thread, as in the suite. Peers (pyfastkron,
pykronecker, pylops) are optional: a combination whose peer is not installed, does not take
the factors, or needs over PEER_CALL_CAP_S per call is skipped.
"""

import time

from threadpoolctl import threadpool_limits

from matkron._bench import multi

# A peer combination whose call takes longer than this is skipped here (the suite times
# such calls singly, within a budget).
PEER_CALL_CAP_S = 2.0


class _OneThread:
    """Pin BLAS and OpenMP (the peers' pools, loaded before) to one thread."""

    def _pin(self):
        self._limits = threadpool_limits(limits=1)

    def teardown(self, *params):
        self._limits.restore_original_limits()


class MultiProduct(_OneThread):
    """(F1 ⊗ … ⊗ Fk) x for the suite's factors; x a vector, or (N, 16) in C or F order."""

    params = (list(multi.CASES), list(multi.LAYOUTS))
    param_names = ("factors", "x")
    timeout = 300

    def setup(self, factors, x):
        case = multi.Case(factors, x, peers=False)
        self.kron_matvec = case.function("kron_matvec")
        self.kron_matvec_out = case.function("kron_matvec_out")
        self.kron_matvec_dgemm = case.function("kron_matvec_dgemm")
        self.kron_operator = case.function("kron_operator")
        self.floor = case.function("gemm_floor")
        self.dgemm_floor = case.function("dgemm_floor")
        self.shuffles = {form: case.function(f"shuffle_{form}") for form in multi.SHUFFLES}
        self.flops = case.flops
        self._pin()

    def time_kron_matvec(self, factors, x):
        self.kron_matvec()

    def time_kron_matvec_out(self, factors, x):
        self.kron_matvec_out()

    def time_kron_matvec_dgemm(self, factors, x):
        self.kron_matvec_dgemm()

    def time_kron_operator(self, factors, x):
        self.kron_operator()

    def time_gemm_floor(self, factors, x):
        self.floor()

    def time_dgemm_floor(self, factors, x):
        self.dgemm_floor()

    def time_numpy_shuffle_cyclic(self, factors, x):
        self.shuffles["cyclic"]()

    def time_numpy_shuffle_modes(self, factors, x):
        self.shuffles["modes"]()

    def time_numpy_shuffle_tensordot(self, factors, x):
        self.shuffles["tensordot"]()

    def track_multiplications(self, factors, x):
        return self.flops

    track_multiplications.unit = "multiplications"


class MultiPeer(_OneThread):
    """A peer's (F1 ⊗ … ⊗ Fk) x through its public Python API, when installed."""

    params = (list(multi.PEER_NAMES), list(multi.CASES), list(multi.LAYOUTS))
    param_names = ("peer", "factors", "x")
    timeout = 300

    def setup(self, peer, factors, x):
        found, errors = multi.load_peers()
        if found[peer] is None:
            raise NotImplementedError(f"{peer}: {errors[peer]}")
        case = multi.Case(factors, x)
        if peer in case.skipped:
            raise NotImplementedError(f"{peer}: {case.skipped[peer]}")
        self.call = case.function(peer)
        self._pin()
        # The first call may also compile or tune for the shapes: over the cap, it skips.
        start = time.perf_counter()
        self.call()
        seconds = time.perf_counter() - start
        if seconds > PEER_CALL_CAP_S:
            self.teardown()
            raise NotImplementedError(
                f"{peer} took {seconds:.1f} s for one call, over PEER_CALL_CAP_S"
            )

    def time_call(self, peer, factors, x):
        self.call()
