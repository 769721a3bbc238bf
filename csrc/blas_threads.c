/* The BLAS thread count and the serial guard (see blas_threads.h). */
#define _GNU_SOURCE
#include "blas_threads.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef void (*setter_fn)(int);
typedef int (*getter_fn)(void);

static const char *const CANDIDATES[][2] = {
    {"scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"},
    {"scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"},
    {"openblas_set_num_threads", "openblas_get_num_threads"},
    {"MKL_Set_Num_Threads", "MKL_Get_Max_Threads"},
    {"bli_thread_set_num_threads", "bli_thread_get_num_threads"},
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int initialized;
static setter_fn set_threads;
static getter_fn get_threads;
static char library[PATH_MAX];
static const char *setter_name = "";
static const char *getter_name = "";
static int depth;  /* guard nesting, under `lock` */
static int saved;  /* the count the first entrant found */
static int owed;   /* a count to put back: a fork happened inside a guarded region */

/* fork() while another thread holds `lock` must not leave it locked in the child, where
 * no matkron region runs. A fork inside a region leaves the child's BLAS at the 1 the
 * region set: the child owes the saved count back, and restores it at its first guard
 * (not in the fork handler, where calling into the BLAS is not safe). */
static void before_fork(void) { pthread_mutex_lock(&lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&lock); }
static void after_fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
    if (depth > 0 && saved > 1)
        owed = saved;
    depth = 0;
}

int matkron_blas_init(const void *blas_function)
{
    pthread_mutex_lock(&lock);
    if (!initialized) {
        initialized = 1;
        pthread_atfork(before_fork, after_fork_parent, after_fork_child);
        Dl_info info;
        void *handle = NULL;
        if (blas_function != NULL && dladdr(blas_function, &info) && info.dli_fname != NULL)
            handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
        for (size_t i = 0; handle != NULL && i < sizeof CANDIDATES / sizeof *CANDIDATES; i++) {
            void *set = dlsym(handle, CANDIDATES[i][0]);
            void *get = dlsym(handle, CANDIDATES[i][1]);
            if (set == NULL || get == NULL)
                continue;
            set_threads = (setter_fn)set;
            get_threads = (getter_fn)get;
            setter_name = CANDIDATES[i][0];
            getter_name = CANDIDATES[i][1];
            if (dladdr(set, &info) && info.dli_fname != NULL
                && realpath(info.dli_fname, library) == NULL)
                strncpy(library, info.dli_fname, sizeof library - 1);
            break;
        }
        /* The handle stays open: the library is loaded for the life of the process. */
    }
    int found = set_threads != NULL;
    pthread_mutex_unlock(&lock);
    return found;
}

const char *matkron_blas_library(void) { return library; }
const char *matkron_blas_setter(void) { return setter_name; }
const char *matkron_blas_getter(void) { return getter_name; }

int matkron_blas_get_num_threads(void)
{
    return get_threads != NULL ? get_threads() : -1;
}

int matkron_blas_set_num_threads(int n)
{
    if (set_threads == NULL || n < 1)
        return -1;
    set_threads(n);
    return 0;
}

int matkron_blas_serial_enter(void)
{
    pthread_mutex_lock(&lock);
    int d = ++depth;
    if (d == 1 && get_threads != NULL) {
        if (owed > 1 && get_threads() == 1)
            set_threads(owed);
        owed = 0;
        /* A count below 1 is no count (BLIS with its BLIS_*_NT ways set): left alone. */
        saved = get_threads();
        if (saved > 1)
            set_threads(1);
    }
    pthread_mutex_unlock(&lock);
    return d;
}

void matkron_blas_serial_leave(void)
{
    pthread_mutex_lock(&lock);
    if (depth > 0 && --depth == 0 && get_threads != NULL && saved > 1 && get_threads() == 1)
        set_threads(saved);
    pthread_mutex_unlock(&lock);
}
