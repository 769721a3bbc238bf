/* The thread count of the BLAS that SciPy's cython_blas calls (the BLAS of matkron's
 * kernels), and a guard that keeps it single-threaded while matkron runs its own threads.
 *
 * The library is found from the address of a function of SciPy's cython_blas module
 * (dladdr gives that module's path; dlopen(RTLD_NOLOAD) a handle whose symbol search
 * covers its dependencies, the BLAS among them), then the first setter/getter pair it
 * exports among:
 *
 *   scipy_openblas_set_num_threads / scipy_openblas_get_num_threads   (SciPy's OpenBLAS)
 *   scipy_openblas_set_num_threads64_ / scipy_openblas_get_num_threads64_ (NumPy's ILP64)
 *   openblas_set_num_threads / openblas_get_num_threads               (system OpenBLAS)
 *   MKL_Set_Num_Threads / MKL_Get_Max_Threads                         (MKL)
 *   bli_thread_set_num_threads / bli_thread_get_num_threads           (BLIS)
 *
 * All of these are process-wide settings. (MKL_Set_Num_Threads_Local is per-thread, but
 * matkron's workers would each need it; OpenBLAS's openblas_set_num_threads_local is
 * process-wide in pthreads builds such as SciPy's.) Callable without the GIL.
 */
#ifndef MATKRON_BLAS_THREADS_H
#define MATKRON_BLAS_THREADS_H

/* Find the BLAS from the address of any function of SciPy's cython_blas (or of the BLAS
 * itself). Returns 1 when a setter was found, 0 otherwise (then the guard does nothing).
 * Call once before the others; later calls return the first result. */
int matkron_blas_init(const void *blas_function);

/* The path of the library that exports the setter, the setter's and the getter's names;
 * "" when none was found. */
const char *matkron_blas_library(void);
const char *matkron_blas_setter(void);
const char *matkron_blas_getter(void);

/* The BLAS's thread count, or -1 when unknown. */
int matkron_blas_get_num_threads(void);

/* Set the BLAS's thread count (n >= 1). Returns 0, or -1 when no setter was found. */
int matkron_blas_set_num_threads(int n);

/* Reference-counted: the first entrant saves the count and sets 1 when it is not 1
 * already, the last leaver restores the saved count (unless someone else changed the
 * count in between: a count other than 1 is then left alone). Safe under concurrent
 * callers from any threads. enter returns the nesting depth after entering (>= 1). */
int matkron_blas_serial_enter(void);
void matkron_blas_serial_leave(void);

#endif
