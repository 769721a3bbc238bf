/* How many threads matkron uses: the process-wide count (matkron.set_num_threads), and
 * whether a product is large enough to split, decided from two measurements made once,
 * on first need, on the machine that runs it:
 *
 *   handoff  the wall time of a pool call with one worker, asleep when called, in which
 *            the caller waits until the worker has started a task: the worker's wake-up,
 *            the hand-off and the wait for it to finish; median of a few;
 *   rate     the single-thread flop rate of a probe GEMM (SciPy's BLAS held at one
 *            thread), best of a few.
 *
 * A product of `flops` takes t1 = flops / rate on one thread and, as estimated here,
 * t1 / t + (t - 1) * handoff on t threads (a pessimistic charge of one hand-off per
 * worker). It is split over the t <= max_threads (and <= the cores in the process's
 * affinity mask) that minimizes that estimate, and only
 * when that saves at least one more handoff (a split must win twice its measured
 * overhead); otherwise it stays on one thread. Calibration takes a few milliseconds once
 * per process.
 */
#ifndef MATKRON_THREAD_POLICY_H
#define MATKRON_THREAD_POLICY_H

/* The process-wide thread count (>= 1; 1 until set). */
int matkron_get_num_threads(void);
void matkron_set_num_threads(int n);

/* The probe for the flop rate: probe(ctx) performs `flops` floating-point operations on
 * one thread (a GEMM through SciPy's BLAS). Set once, before the first calibration. */
typedef void (*matkron_probe_fn)(void *ctx);
void matkron_policy_set_probe(matkron_probe_fn probe, void *ctx, double flops);

/* Calibrate now unless done: 0 on success or when done before, -1 when it cannot be done
 * now (no probe, or the pool is in use by another call: then nothing is stored). */
int matkron_policy_calibrate(void);

/* The measurements (seconds, flop/s), 0 before calibration. */
double matkron_policy_handoff(void);
double matkron_policy_rate(void);

/* The number of threads (1..max_threads) worth using for a product of `flops`;
 * calibrates on first need. 1 when calibration cannot be done now. */
int matkron_policy_threads_for(double flops, int max_threads);

/* `requested` capped at the cores this process may run on (at least 1). */
int matkron_policy_usable_threads(int requested);

/* Whether a product of `flops` is worth splitting with the process-wide count. */
int matkron_pool_worth_splitting(double flops);

#endif
