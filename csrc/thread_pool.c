/* matkron's persistent thread pool (see thread_pool.h).
 *
 * One job at a time: the calling thread that wins `busy` publishes the job, wakes the
 * workers it wants (one semaphore post each), runs tasks itself, then closes the job.
 * `job_word` holds the number of workers inside the job and a CLOSED bit:
 *
 *   - a woken worker joins by incrementing the count, only while CLOSED is clear;
 *   - the caller, out of tasks, sets CLOSED; if the count was 0 it returns at once (a
 *     worker still asleep or preempted never joins this job), otherwise it waits on
 *     `done`, which the last worker to leave a closed job posts exactly once.
 *
 * A worker with a stale wake-up (posted for an earlier job it never joined) may join the
 * current job; it reads the job only after joining, and leaves at once when the job did
 * not ask for it (id >= n_workers), so `thread` indices stay below max_threads.
 */
#define _GNU_SOURCE
#include "thread_pool.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define CLOSED ((uint32_t)1 << 31)
#define ACTIVE_MASK (CLOSED - 1)

typedef struct {
    sem_t wake;
    int id; /* 0-based; runs tasks as thread id + 1 */
} worker_t;

static struct {
    matkron_task_fn task;
    void *ctx;
    int n_tasks;
    int n_workers; /* workers this job asked for */
    atomic_int next;
    atomic_int by_workers; /* tasks the workers ran */
} job;

/* The back-off after splits that did not pay (see matkron_pool_contended). */
#define BACKOFF_FIRST 4
#define BACKOFF_MAX 256
/* Shorter pool calls are not judged: a worker's wake-up (tens of microseconds when its
 * core is free) would decide them. */
#define JUDGE_MIN_NS (10 * MATKRON_POOL_SPIN_NS)
static atomic_int backoff_level;     /* 0: splits pay; else the current back-off */
static atomic_int backoff_countdown; /* split decisions still to run on one thread */

static _Atomic uint32_t job_word = CLOSED;
static atomic_flag busy = ATOMIC_FLAG_INIT;
static sem_t done;
static worker_t *workers[MATKRON_POOL_MAX_THREADS];
static atomic_int n_workers;
static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local int in_task;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Take one post of `s`: spin for at most MATKRON_POOL_SPIN_NS, then block. */
static void take(sem_t *s)
{
    double start = now_ns();
    do {
        for (int k = 0; k < 64; k++) {
            if (sem_trywait(s) == 0)
                return;
            CPU_RELAX();
        }
    } while (now_ns() - start < MATKRON_POOL_SPIN_NS);
    while (sem_wait(s) != 0 && errno == EINTR)
        ;
}

/* Run tasks until none is left; returns how many this thread ran. */
static int run_tasks(int thread)
{
    matkron_task_fn task = job.task;
    void *ctx = job.ctx;
    int n = job.n_tasks, ran = 0;
    for (;;) {
        int i = atomic_fetch_add_explicit(&job.next, 1, memory_order_relaxed);
        if (i >= n)
            return ran;
        task(ctx, i, thread);
        ran++;
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    in_task = 1; /* a pool call from a worker's task runs inline */
    for (;;) {
        take(&w->wake);
        uint32_t word = atomic_load_explicit(&job_word, memory_order_acquire);
        int joined = 0;
        while (!(word & CLOSED)) {
            if (atomic_compare_exchange_weak_explicit(&job_word, &word, word + 1,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire)) {
                joined = 1;
                break;
            }
        }
        if (!joined)
            continue;
        if (w->id < job.n_workers)
            atomic_fetch_add_explicit(&job.by_workers, run_tasks(w->id + 1),
                                      memory_order_relaxed);
        uint32_t left = atomic_fetch_sub_explicit(&job_word, 1, memory_order_acq_rel) - 1;
        if (left == CLOSED) /* closed, and the last one out */
            sem_post(&done);
    }
    return NULL;
}

static void reset(void)
{
    /* A fresh pool: no workers (the parent's are not in this process), nothing running. */
    atomic_store(&n_workers, 0);
    atomic_store(&job_word, CLOSED);
    atomic_flag_clear(&busy);
    sem_init(&done, 0, 0);
    pthread_mutex_init(&spawn_lock, NULL);
    atomic_store(&backoff_level, 0);
    atomic_store(&backoff_countdown, 0);
}

static void before_fork(void) { pthread_mutex_lock(&spawn_lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&spawn_lock); }

static void init(void)
{
    sem_init(&done, 0, 0);
    pthread_atfork(before_fork, after_fork_parent, reset);
}

/* Make sure `want` workers exist; returns how many do (fewer if creation fails). */
static int ensure_workers(int want)
{
    int have = atomic_load_explicit(&n_workers, memory_order_acquire);
    if (have >= want)
        return want;
    pthread_mutex_lock(&spawn_lock);
    have = atomic_load_explicit(&n_workers, memory_order_relaxed);
    if (have < want) {
        /* Workers block every signal, so that signals go to Python's threads. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        for (; have < want; have++) {
            worker_t *w = malloc(sizeof *w);
            if (w == NULL)
                break;
            w->id = have;
            sem_init(&w->wake, 0, 0);
            pthread_t tid;
            if (pthread_create(&tid, &attr, worker_main, w) != 0) {
                sem_destroy(&w->wake);
                free(w);
                break;
            }
            workers[have] = w;
        }
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        atomic_store_explicit(&n_workers, have, memory_order_release);
    }
    pthread_mutex_unlock(&spawn_lock);
    return have < want ? have : want;
}

static void split_outcome(int paid);

static void run_inline(int n_tasks, matkron_task_fn task, void *ctx)
{
    int was = in_task;
    in_task = 1;
    for (int i = 0; i < n_tasks; i++)
        task(ctx, i, 0);
    in_task = was;
}

int matkron_pool_run(int n_tasks, matkron_task_fn task, void *ctx, int max_threads)
{
    if (n_tasks < 0 || task == NULL || max_threads < 1)
        return -1;
    if (n_tasks == 0)
        return 0;
    int want = max_threads < n_tasks ? max_threads : n_tasks;
    if (want > MATKRON_POOL_MAX_THREADS)
        want = MATKRON_POOL_MAX_THREADS;
    if (want == 1 || in_task || atomic_flag_test_and_set_explicit(&busy, memory_order_acquire)) {
        run_inline(n_tasks, task, ctx);
        return 1;
    }
    pthread_once(&once, init);
    int nw = ensure_workers(want - 1);
    if (nw == 0) {
        atomic_flag_clear_explicit(&busy, memory_order_release);
        run_inline(n_tasks, task, ctx);
        return 1;
    }
    job.task = task;
    job.ctx = ctx;
    job.n_tasks = n_tasks;
    job.n_workers = nw;
    atomic_store_explicit(&job.next, 0, memory_order_relaxed);
    atomic_store_explicit(&job.by_workers, 0, memory_order_relaxed);
    double opened = now_ns();
    atomic_store_explicit(&job_word, 0, memory_order_release); /* open */
    for (int i = 0; i < nw; i++)
        sem_post(&workers[i]->wake);

    in_task = 1;
    run_tasks(0);
    in_task = 0;
    double caller_done = now_ns();

    uint32_t word = atomic_fetch_or_explicit(&job_word, CLOSED, memory_order_acq_rel);
    if (word & ACTIVE_MASK)
        take(&done);
    double closed = now_ns();
    if (n_tasks >= 2 * (nw + 1) && closed - opened >= JUDGE_MIN_NS) {
        /* Enough tasks to judge the split: it did not pay when no worker ran a task (none
         * woke in time), or when the caller, out of tasks, waited for the workers more
         * than half the call (one was preempted in a task): another process on a core. */
        int by_workers = atomic_load_explicit(&job.by_workers, memory_order_relaxed);
        int paid = by_workers > 0 && closed - caller_done <= 0.5 * (closed - opened);
        split_outcome(paid);
    }
    atomic_flag_clear_explicit(&busy, memory_order_release);
    return nw + 1;
}

static void split_outcome(int paid)
{
    if (atomic_load_explicit(&backoff_countdown, memory_order_relaxed) > 0)
        return; /* a split decided before the back-off began */
    if (paid) {
        atomic_store_explicit(&backoff_level, 0, memory_order_relaxed);
        return;
    }
    int level = atomic_load_explicit(&backoff_level, memory_order_relaxed);
    level = level == 0 ? BACKOFF_FIRST : level < BACKOFF_MAX ? 2 * level : BACKOFF_MAX;
    atomic_store_explicit(&backoff_level, level, memory_order_relaxed);
    atomic_store_explicit(&backoff_countdown, level, memory_order_relaxed);
}

int matkron_pool_contended(void)
{
    int left = atomic_load_explicit(&backoff_countdown, memory_order_relaxed);
    while (left > 0) {
        if (atomic_compare_exchange_weak_explicit(&backoff_countdown, &left, left - 1,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return 1;
    }
    return 0;
}

void matkron_pool_reset_contention(void)
{
    atomic_store(&backoff_level, 0);
    atomic_store(&backoff_countdown, 0);
}

int matkron_pool_in_task(void) { return in_task; }

int matkron_pool_workers(void) { return atomic_load(&n_workers); }
