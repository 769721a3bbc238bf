/* A probe of the single-core float64 FMA peak: independent chains of fused multiply-adds,
 * enough of them to keep every FMA pipe busy (latency x pipes: 4 x 2 = 8 chains on Zen 3,
 * Zen 4 and Skylake-X; FMA_PEAK_CHAINS leaves room), on the widest vectors the CPU has.
 *
 * One variant per instruction set, compiled with __attribute__((target(...))) and chosen
 * at run time with __builtin_cpu_supports; a scalar loop elsewhere. On AMD Zen 4 a 512-bit
 * FMA runs as two 256-bit halves, so the AVX-512 and AVX2 variants reach the same peak.
 */
#ifndef MATKRON_FMA_PEAK_H
#define MATKRON_FMA_PEAK_H

/* Independent accumulator chains of every variant (registers: 12 + 2 of 16 ymm). */
#define FMA_PEAK_CHAINS 12

enum {
    FMA_PEAK_SCALAR = 0,  /* plain C: a*b + c on doubles, contracted or not */
    FMA_PEAK_AVX2 = 1,    /* AVX2 + FMA3, 4 doubles per ymm */
    FMA_PEAK_AVX512 = 2,  /* AVX-512F, 8 doubles per zmm */
};

/* The widest variant this build and this CPU run. */
int matkron_fma_peak_best(void);

/* Run `rounds` rounds of variant `isa` (each round one FMA on every chain) and store the
 * flops done in *flops (an FMA counts 2 per lane) and a checksum of the accumulators in
 * *sink, so that the loop is not optimized away. Returns 0, or -1 without running when the
 * build or the CPU lacks `isa`. */
int matkron_fma_peak_run(int isa, long rounds, double *flops, double *sink);

#endif
