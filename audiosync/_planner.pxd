# The FFTW planner's shared state, cimported by the kernel (_xcorr.pyx).

cdef class Plans:
    cdef void *r2c
    cdef void *c2r
    cdef readonly Py_ssize_t n
    cdef readonly bint single
    cdef readonly double planning_s
    cdef readonly bint from_wisdom

cdef Plans plans_for(Py_ssize_t n, bint single)
