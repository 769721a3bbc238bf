"""Per-thread scratch memory for the kernels.

Each thread keeps one byte buffer that grows to the largest request it has seen, so repeated
products allocate nothing, and threads sharing an operator never share scratch memory.
"""

import threading

import numpy as np

_local = threading.local()


def workspace(nbytes=0):
    """Return this thread's scratch buffer, grown to at least `nbytes` bytes."""
    buf = getattr(_local, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        # Grow geometrically so a slowly increasing sequence of sizes reallocates rarely.
        size = max(nbytes, 4096 if buf is None else 2 * buf.nbytes)
        buf = _local.buf = np.empty(size, dtype=np.uint8)
    return buf


def release():
    """Free this thread's scratch buffer (it is re-created on the next product)."""
    _local.buf = None
