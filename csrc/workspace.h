/* Per-thread scratch memory for the compiled kernels.
 *
 *     int own;
 *     char *ws = matkron_workspace_take(nbytes, &own);
 *     ... the kernel works in ws[0 .. nbytes) ...
 *     matkron_workspace_give(ws, own);
 *
 * Each thread keeps one buffer that grows to the largest request it has seen, so repeated
 * products allocate nothing, and threads sharing an operator never share scratch memory.
 * A thread whose buffer is taken (a kernel further up its stack) gets memory of its own,
 * freed by the matching give. Buffers start at 64-byte boundaries and are freed when their
 * thread exits. Plain C, callable without the GIL.
 */
#ifndef MATKRON_WORKSPACE_H
#define MATKRON_WORKSPACE_H

#include <stddef.h>

/* At least `nbytes` bytes (nbytes 0 counts as 1), or NULL when memory runs out; `*own` is
 * set to what matkron_workspace_give needs back. */
char *matkron_workspace_take(size_t nbytes, int *own);
/* Return what matkron_workspace_take gave (NULL is ignored). */
void matkron_workspace_give(char *data, int own);
/* This thread's buffer (NULL before its first take or after a release) and its size. */
char *matkron_workspace_buffer(size_t *nbytes);
/* Free this thread's buffer unless it is taken; the next take allocates anew. */
void matkron_workspace_release(void);

#endif
