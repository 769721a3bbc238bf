# The compiled kernels' per-thread scratch memory (csrc/workspace.c): one buffer per thread
# that grows to the largest request seen, shared by every compiled module through
# matkron/_workspace_cy.pxd, so kernels never call back into Python for memory.

cdef extern from "workspace.h" nogil:
    char* matkron_workspace_take(size_t nbytes, int* own)
    void matkron_workspace_give(char* data, int own)
    char* matkron_workspace_buffer(size_t* nbytes)
    void matkron_workspace_release()


cdef char* workspace_take(size_t nbytes, int* own) noexcept nogil:
    return matkron_workspace_take(nbytes, own)


cdef void workspace_give(char* data, int own) noexcept nogil:
    matkron_workspace_give(data, own)


def workspace_buffer():
    """(address, bytes) of this thread's kernel scratch buffer; (0, 0) before the first
    product that needs one, or after :func:`release_workspace`."""
    cdef size_t nbytes
    cdef char* data = matkron_workspace_buffer(&nbytes)
    return <size_t>data, nbytes


def release_workspace():
    """Free this thread's kernel scratch buffer (the next product that needs one allocates
    it anew)."""
    matkron_workspace_release()
