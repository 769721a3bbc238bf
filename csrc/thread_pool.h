/* matkron's own persistent thread pool.
 *
 *     matkron_pool_run(n_tasks, task, ctx, max_threads)
 *
 * runs task(ctx, i, thread) once for every i in [0, n_tasks) on the calling thread and up
 * to max_threads - 1 pool workers, and returns when all tasks are done. Threads claim task
 * indices one at a time from a shared counter, so a thread preempted on a busy core holds
 * up at most the one task it has claimed; a worker that has not woken up by the time the
 * caller runs out of tasks is not waited for.
 *
 * `thread` is 0 on the calling thread and 1..max_threads-1 on workers, and no two threads
 * of one call share it: tasks index per-thread workspaces of their call's `ctx` with it.
 *
 * Workers are created on first need (never per call) and reused. An idle worker spins for
 * at most MATKRON_POOL_SPIN_NS, then blocks on a semaphore (a futex): a pool that
 * busy-waits costs 15-50x on a shared machine. A call made from inside a pool task, or
 * while another thread's call holds the pool, runs all its tasks inline on the calling
 * thread with thread = 0 (no deadlock, no oversubscription). After fork() the child gets
 * a fresh pool whose workers are created on its first need.
 *
 * Every function here is plain C and may be called without the GIL.
 */
#ifndef MATKRON_THREAD_POOL_H
#define MATKRON_THREAD_POOL_H

/* The most threads one call uses (the caller and MATKRON_POOL_MAX_THREADS - 1 workers). */
#define MATKRON_POOL_MAX_THREADS 256
/* The longest an idle worker, or a caller waiting for workers, spins before it blocks. */
#define MATKRON_POOL_SPIN_NS 20000

typedef void (*matkron_task_fn)(void *ctx, int task, int thread);

/* Run task(ctx, i, thread) for i in [0, n_tasks). Returns the number of threads the tasks
 * were offered to (1 when they ran inline, 0 for n_tasks == 0), or -1 (nothing run) for
 * n_tasks < 0, task == NULL or max_threads < 1. Fewer threads are used when workers cannot
 * be created. Writes made by the tasks are visible to the caller on return. */
int matkron_pool_run(int n_tasks, matkron_task_fn task, void *ctx, int max_threads);

/* Whether the calling thread is running a pool task (a pool call here would run inline). */
int matkron_pool_in_task(void);

/* Contention: whether the next split should run on one thread instead (and counts it).
 * A pool call of at least two tasks per thread that lasts 10 MATKRON_POOL_SPIN_NS (0.2 ms)
 * or more is judged when it ends: it did not pay when no worker ran a task, or when the
 * caller, out of tasks, waited for the workers more than half of the call (a worker woke
 * late or was preempted: another process on its core). After one that did not, the next
 * 4 split decisions are answered 1, then one split probes again; each probe that does
 * not pay doubles the count, up to 256, and one that pays ends the back-off. */
int matkron_pool_contended(void);

/* Forget the contention history (for tests). */
void matkron_pool_reset_contention(void);

/* Workers created so far (diagnostics and tests). */
int matkron_pool_workers(void);

#endif
