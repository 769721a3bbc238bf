# The C interface of the kernels' per-thread scratch memory (csrc/workspace.h):
#
#     from matkron._workspace_cy cimport workspace_take, workspace_give
#
# (Cython imports these functions from matkron._workspace_cy at run time, so every compiled
# module shares each thread's one buffer.) Both may be called without the GIL.

# At least nbytes bytes at a 64-byte boundary, or NULL when memory runs out.
cdef char* workspace_take(size_t nbytes, int* own) noexcept nogil
# Return what workspace_take gave, with the `own` it set (NULL is ignored).
cdef void workspace_give(char* data, int own) noexcept nogil
