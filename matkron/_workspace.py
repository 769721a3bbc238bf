"""Per-thread scratch memory for the kernels.

Each thread keeps one byte buffer that grows to the largest request it has seen, so repeated
products allocate nothing, and threads sharing an operator never share scratch memory.
"""

import threading

import numpy as np

_local = threading.local()


def workspace(nbytes=0, slot=0):
    """Return this thread's scratch buffer number `slot`, grown to at least `nbytes` bytes.

    Slot 0 is the compiled kernels' (used within one call); other slots hold the
    intermediate tensors of a product with structured factors between kernel calls.
    """
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    buf = bufs.get(slot)
    if buf is None or buf.nbytes < nbytes:
        # Grow geometrically so a slowly increasing sequence of sizes reallocates rarely.
        size = max(nbytes, 4096 if buf is None else 2 * buf.nbytes)
        buf = bufs[slot] = np.empty(size, dtype=np.uint8)
    return buf


def nested():
    """Whether a product with structured factors is already running in this thread (a
    LinearOperator factor's matmat may start another): the inner one then allocates its
    tensors instead of taking the outer one's scratch slots."""
    return getattr(_local, "depth", 0) > 1


def enter():
    """Mark the start of a product with structured factors in this thread."""
    _local.depth = getattr(_local, "depth", 0) + 1


def leave():
    """Mark its end."""
    _local.depth -= 1


def release():
    """Free this thread's scratch buffers (they are re-created on the next product)."""
    _local.bufs = None
