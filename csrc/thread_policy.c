/* The thread count and the split decision (see thread_policy.h). */
#define _GNU_SOURCE
#include "thread_policy.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "blas_threads.h"
#include "thread_pool.h"

#define HANDOFF_REPEATS 15
#define RATE_REPEATS 5
/* Asleep for certain: longer than a worker's spin. */
#define SLEEP_NS (4 * MATKRON_POOL_SPIN_NS)
/* The longest the caller waits for the worker in one handoff measurement. */
#define WAIT_NS 5e6

static atomic_int num_threads = 1;

static matkron_probe_fn probe_fn;
static void *probe_ctx;
static double probe_flops;

static pthread_mutex_t calibrating = PTHREAD_MUTEX_INITIALIZER;
static atomic_int calibrated;
static double handoff; /* seconds */
static double rate;    /* flop/s */

int matkron_get_num_threads(void)
{
    return atomic_load_explicit(&num_threads, memory_order_relaxed);
}

void matkron_set_num_threads(int n)
{
    atomic_store_explicit(&num_threads, n < 1 ? 1 : n, memory_order_relaxed);
}

void matkron_policy_set_probe(matkron_probe_fn probe, void *ctx, double flops)
{
    pthread_mutex_lock(&calibrating);
    probe_fn = probe;
    probe_ctx = ctx;
    probe_flops = flops;
    pthread_mutex_unlock(&calibrating);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Task 0 waits (bounded) until task 1 has started: on a worker when one comes in time. */
static void handoff_task(void *ctx, int task, int thread)
{
    atomic_int *started = ctx;
    (void)thread;
    if (task == 1) {
        atomic_store_explicit(started, 1, memory_order_release);
        return;
    }
    double until = now() + 1e-9 * WAIT_NS;
    while (!atomic_load_explicit(started, memory_order_acquire) && now() < until)
        ;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void noop_task(void *ctx, int task, int thread)
{
    (void)ctx;
    (void)task;
    (void)thread;
}

static int calibrate_locked(void)
{
    if (probe_fn == NULL)
        return -1;
    double times[HANDOFF_REPEATS];
    struct timespec pause = {0, SLEEP_NS};
    atomic_int started;
    /* Without a worker (none could be created, or the pool is in use) the hand-off tasks
     * would run inline and task 0 would wait WAIT_NS for a task 1 queued behind it. */
    if (matkron_pool_run(2, noop_task, NULL, 2) != 2)
        return -1;
    for (int r = -1; r < HANDOFF_REPEATS; r++) { /* r = -1 creates the worker */
        nanosleep(&pause, NULL);
        atomic_store(&started, 0);
        double t0 = now();
        int used = matkron_pool_run(2, handoff_task, &started, 2);
        double t = now() - t0;
        if (used != 2)
            return -1; /* inline: the pool is in use, or no worker could be created */
        if (r >= 0)
            times[r] = t;
    }
    qsort(times, HANDOFF_REPEATS, sizeof *times, cmp_double);

    matkron_blas_serial_enter();
    double best = 1e300;
    for (int r = -1; r < RATE_REPEATS; r++) { /* r = -1 warms up */
        double t0 = now();
        probe_fn(probe_ctx);
        double t = now() - t0;
        if (r >= 0 && t < best)
            best = t;
    }
    matkron_blas_serial_leave();

    handoff = times[HANDOFF_REPEATS / 2];
    rate = probe_flops / (best > 1e-9 ? best : 1e-9);
    atomic_store_explicit(&calibrated, 1, memory_order_release);
    return 0;
}

/* A failed calibration is not retried before this time (CLOCK_MONOTONIC seconds, under
 * `calibrating`): products meanwhile stay on one thread at the cost of a clock read. */
static double retry_after;
#define RETRY_S 1.0

/* A fork while another thread calibrates must not leave `calibrating` locked in the child. */
static void after_fork_child(void) { pthread_mutex_init(&calibrating, NULL); }
static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;
static void register_fork_handler(void) { pthread_atfork(NULL, NULL, after_fork_child); }

int matkron_policy_calibrate(void)
{
    if (atomic_load_explicit(&calibrated, memory_order_acquire))
        return 0;
    pthread_once(&fork_handler_once, register_fork_handler);
    if (matkron_pool_in_task() || pthread_mutex_trylock(&calibrating) != 0)
        return -1;
    int status = 0;
    if (!atomic_load(&calibrated)) {
        if (now() < retry_after) {
            status = -1;
        } else {
            status = calibrate_locked();
            if (status != 0)
                retry_after = now() + RETRY_S;
        }
    }
    pthread_mutex_unlock(&calibrating);
    return status;
}

double matkron_policy_handoff(void)
{
    return atomic_load_explicit(&calibrated, memory_order_acquire) ? handoff : 0.0;
}

double matkron_policy_rate(void)
{
    return atomic_load_explicit(&calibrated, memory_order_acquire) ? rate : 0.0;
}

/* The cores this process may run on (its affinity mask), read once. */
static atomic_int cores;

static int available_cores(void)
{
    int n = atomic_load_explicit(&cores, memory_order_relaxed);
    if (n > 0)
        return n;
    cpu_set_t set;
    n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    if (n < 1) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    atomic_store_explicit(&cores, n, memory_order_relaxed);
    return n;
}

int matkron_policy_usable_threads(int requested)
{
    int cores = available_cores();
    return requested < 1 ? 1 : requested < cores ? requested : cores;
}

int matkron_policy_threads_for(double flops, int max_threads)
{
    if (max_threads <= 1 || !(flops > 0) || matkron_pool_in_task())
        return 1;
    /* More threads than cores only wait for each other's time slices. */
    if (max_threads > available_cores())
        max_threads = available_cores();
    if (max_threads <= 1)
        return 1;
    if (matkron_policy_calibrate() != 0)
        return 1;
    if (max_threads > MATKRON_POOL_MAX_THREADS)
        max_threads = MATKRON_POOL_MAX_THREADS;
    double t1 = flops / rate;
    int best = 1;
    double best_time = t1;
    for (int t = 2; t <= max_threads; t++) {
        double estimate = t1 / t + (t - 1) * handoff;
        if (estimate < best_time) {
            best = t;
            best_time = estimate;
        } else {
            break; /* the estimate is convex in t */
        }
    }
    if (best == 1 || t1 - best_time < handoff)
        return 1;
    /* A split that would run while the last ones did not pay stays on one thread (a busy
     * core: see thread_pool.h). */
    return matkron_pool_contended() ? 1 : best;
}

int matkron_pool_worth_splitting(double flops)
{
    return matkron_policy_threads_for(flops, matkron_get_num_threads()) > 1;
}
