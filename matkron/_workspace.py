"""Per-thread scratch memory for the Python layer.

Each thread keeps one byte buffer per slot that grows to the largest request it has seen,
so repeated products allocate nothing, and threads sharing an operator never share scratch
memory. (The compiled kernels keep their own per-thread buffer in C, csrc/workspace.c.)
"""

import sys
import threading

import numpy as np

_local = threading.local()


def _references(obj):
    return sys.getrefcount(obj)


def _unused_references():
    """What _references gives here for an object held only by a dict and one local
    variable (measured: interpreters differ in the references their calls hold)."""
    held = {0: object()}
    obj = held.get(0)
    return _references(obj)


_UNUSED = _unused_references()


def workspace(nbytes=0, slot=0):
    """Return this thread's scratch buffer number `slot`, grown to at least `nbytes` bytes.

    Slot 0 is the matrix chain's (used within one call); other slots hold the
    intermediate tensors of a product with structured factors between kernel calls.

    A buffer that something still references (a kernel running further up this thread's
    stack, say, when a signal handler or a LinearOperator factor's matmat starts another
    product) is busy: the caller then gets memory of its own.
    """
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    buf = bufs.get(slot)
    # Held by more than the dict and `buf`: a user is running.
    if buf is not None and _references(buf) > _UNUSED:
        return np.empty(max(nbytes, 1), dtype=np.uint8)
    if buf is None or buf.nbytes < nbytes:
        # Grow geometrically so a slowly increasing sequence of sizes reallocates rarely.
        size = max(nbytes, 4096 if buf is None else 2 * buf.nbytes)
        buf = bufs[slot] = np.empty(size, dtype=np.uint8)
    return buf


def release():
    """Free this thread's scratch buffers (they are re-created on the next product)."""
    _local.bufs = None
