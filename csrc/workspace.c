/* Per-thread scratch memory for the compiled kernels: see workspace.h. */
#include "workspace.h"

#include <pthread.h>
#include <stdlib.h>

#define ALIGN 64
#define FIRST_BYTES 4096

typedef struct {
    char *data;
    size_t size;
    int taken;
} Buffer;

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok;

static void destroy(void *p)
{
    Buffer *b = p;
    free(b->data);
    free(b);
}

static void make_key(void) { key_ok = pthread_key_create(&key, destroy) == 0; }

/* This thread's buffer record, created on first use; NULL when that fails. */
static Buffer *local(int create)
{
    Buffer *b;
    pthread_once(&key_once, make_key);
    if (!key_ok)
        return NULL;
    b = pthread_getspecific(key);
    if (b == NULL && create) {
        b = calloc(1, sizeof *b);
        if (b != NULL && pthread_setspecific(key, b) != 0) {
            free(b);
            b = NULL;
        }
    }
    return b;
}

static char *aligned(size_t nbytes)
{
    void *p = NULL;
    return posix_memalign(&p, ALIGN, nbytes ? nbytes : 1) == 0 ? p : NULL;
}

char *matkron_workspace_take(size_t nbytes, int *own)
{
    Buffer *b = local(1);
    if (b == NULL || b->taken) {
        *own = 1;
        return aligned(nbytes);
    }
    *own = 0;
    if (b->data == NULL || b->size < nbytes) {
        /* Grow geometrically so a slowly increasing sequence of sizes reallocates rarely. */
        size_t size = b->data == NULL ? FIRST_BYTES : 2 * b->size;
        if (size < nbytes)
            size = nbytes;
        free(b->data);
        b->data = aligned(size);
        if (b->data == NULL && size > nbytes)  /* the doubling failed: just what is asked */
            b->data = aligned(size = nbytes);
        b->size = b->data == NULL ? 0 : size;
        if (b->data == NULL)
            return NULL;
    }
    b->taken = 1;
    return b->data;
}

void matkron_workspace_give(char *data, int own)
{
    Buffer *b;
    if (data == NULL)
        return;
    if (own) {
        free(data);
        return;
    }
    b = local(0);
    if (b != NULL)
        b->taken = 0;
}

char *matkron_workspace_buffer(size_t *nbytes)
{
    Buffer *b = local(0);
    *nbytes = b == NULL ? 0 : b->size;
    return b == NULL ? NULL : b->data;
}

void matkron_workspace_release(void)
{
    Buffer *b = local(0);
    if (b == NULL || b->taken)
        return;
    free(b->data);
    b->data = NULL;
    b->size = 0;
}
