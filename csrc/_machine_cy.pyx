# The machine's single-core float64 FMA peak: a probe in C (fma_peak.c), one variant per
# instruction set chosen at run time. The Python layer (matkron/_bench/machine.py) times
# the runs, pins them to one CPU and keeps the best.

cdef extern from "fma_peak.h":
    int FMA_PEAK_CHAINS
    int matkron_fma_peak_best() noexcept nogil
    int matkron_fma_peak_run(int isa, long rounds, double *flops, double *sink) noexcept nogil

# Variant names by code (the enum of fma_peak.h), with the registers they use.
ISA_NAMES = ("scalar", "AVX2+FMA (ymm)", "AVX-512F (zmm)")
CHAINS = FMA_PEAK_CHAINS


def fma_best_isa():
    """The code of the widest FMA variant this build and this CPU run (see ISA_NAMES)."""
    return matkron_fma_peak_best()


def fma_run(int isa, long rounds):
    """Run `rounds` rounds of FMA variant `isa` without the GIL; the flops done.

    Raises
    ------
    ValueError
        If the build or the CPU lacks the variant, or `rounds` is negative.
    """
    cdef double flops = 0.0, sink = 0.0
    cdef int status
    with nogil:
        status = matkron_fma_peak_run(isa, rounds, &flops, &sink)
    if status != 0:
        raise ValueError(f"FMA variant {isa} does not run here (or rounds < 0: {rounds})")
    return flops
