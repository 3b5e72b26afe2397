# cython: language_level=3
"""FFTW cross-correlation kernel (private; use audiosync.cross_correlation).

The kernel trusts its inputs: audiosync/xcorr.py checks shapes, dtypes and
lengths first.  Everything from the first copy into FFTW's buffers to the
Pearson coefficient runs with the GIL released.
"""

cimport cython
from cpython.pythread cimport (
    PyThread_type_lock, PyThread_allocate_lock, PyThread_acquire_lock,
    PyThread_release_lock, WAIT_LOCK,
)
from libc.math cimport sqrt
from libc.string cimport memset

from audiosync._fftw cimport (
    fftw_plan, fftw_complex, fftw_plan_dft_r2c_1d, fftw_plan_dft_c2r_1d,
    fftw_destroy_plan, fftw_execute_dft_r2c,
    fftw_execute_dft_c2r, fftw_malloc, fftw_free, fftw_version as _c_version,
    FFTW_ESTIMATE,
)

ctypedef fused real_t:
    short
    float
    double

# Status codes returned by the nogil kernel; xcorr.py maps them to exceptions.
cdef enum:
    ST_OK = 0
    ST_SOURCE_NOT_FINITE = 1
    ST_SAMPLE_NOT_FINITE = 2
    ST_SILENT = 3

OK = ST_OK
SOURCE_NOT_FINITE = ST_SOURCE_NOT_FINITE
SAMPLE_NOT_FINITE = ST_SAMPLE_NOT_FINITE
SILENT = ST_SILENT

cdef enum:
    # Plans kept per transform size; the least recently used is dropped beyond.
    PLAN_CACHE_SIZE = 32

# FFTW_ESTIMATE plans in well under 0.1 s at every size we meet; FFTW_MEASURE
# took seconds to minutes at audio sizes here and, under a time limit, was
# sometimes slower than the estimate.  A live sync cannot stall on planning.
cdef unsigned PLANNER_FLAGS = FFTW_ESTIMATE
# A sum of squared deviations this small relative to the sum of squares is
# rounding noise around a constant: the overlap is silent.
cdef double SILENCE_RATIO = 1e-20

fftw_version = (<bytes>_c_version).decode("ascii")

# FFTW's planner is not thread-safe: every call that plans, destroys a plan or
# changes a global planner setting holds this one lock.  Execution does not.
cdef PyThread_type_lock _planner_lock = PyThread_allocate_lock()
if _planner_lock == NULL:
    raise MemoryError("cannot allocate the FFTW planner lock")


cdef class _Plans:
    """The forward and inverse in-place real transforms of one size."""
    cdef fftw_plan r2c
    cdef fftw_plan c2r
    cdef readonly Py_ssize_t n

    def __cinit__(self, Py_ssize_t n):
        cdef int size = <int>n
        cdef unsigned flags = PLANNER_FLAGS
        # Plan on scratch memory: planning may overwrite its arrays.
        cdef double *scratch = <double *>fftw_malloc(sizeof(double) * 2 * (n // 2 + 1))
        self.n = n
        if scratch == NULL:
            raise MemoryError(f"cannot allocate {n} samples for FFTW")
        with nogil:
            PyThread_acquire_lock(_planner_lock, WAIT_LOCK)
            self.r2c = fftw_plan_dft_r2c_1d(size, scratch, <fftw_complex *>scratch, flags)
            self.c2r = fftw_plan_dft_c2r_1d(size, <fftw_complex *>scratch, scratch, flags)
            PyThread_release_lock(_planner_lock)
        fftw_free(scratch)
        if self.r2c == NULL or self.c2r == NULL:
            raise MemoryError(f"FFTW could not plan a transform of {n} samples")

    def __dealloc__(self):
        with nogil:
            PyThread_acquire_lock(_planner_lock, WAIT_LOCK)
            if self.r2c != NULL:
                fftw_destroy_plan(self.r2c)
            if self.c2r != NULL:
                fftw_destroy_plan(self.c2r)
            PyThread_release_lock(_planner_lock)


cdef dict _cache = {}


cdef _Plans _plans_for(Py_ssize_t n):
    # Dict operations are atomic under the GIL; two threads may both plan a
    # new size, and the loser's plans are simply dropped.
    cdef _Plans plans = _cache.pop(n, None)
    if plans is None:
        plans = _Plans(n)
    _cache[n] = plans  # most recently used last
    while len(_cache) > PLAN_CACHE_SIZE:
        del _cache[next(iter(_cache))]
    return plans


def cached_sizes():
    """Transform sizes with plans in the cache, least recently used first."""
    return list(_cache)


def clear_plans():
    """Drop every cached plan (they are destroyed under the planner lock)."""
    _cache.clear()


# All indices below are bounded by the lengths the caller checked, and none
# is negative, so bounds and wraparound checks would only cost time.
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)  # divisors are overlap sizes >= 1 and sqrt of positives
cdef int _kernel(const real_t[:] source, const real_t[:] sample,
                 fftw_plan r2c, fftw_plan c2r, Py_ssize_t n,
                 double *a, double *b,
                 Py_ssize_t *lag_out, double *coef_out) noexcept nogil:
    cdef Py_ssize_t m = source.shape[0]
    cdef Py_ssize_t ns = sample.shape[0]
    cdef Py_ssize_t nc = n // 2 + 1
    cdef Py_ssize_t i, k, peak, lag, length, off_src, off_smp
    cdef double v, check_src = 0.0, check_smp = 0.0
    cdef double ar, ai, br, bi, best, mx, my, dx, dy, sxx, syy, sxy, qx, qy

    # Copy into FFTW's aligned buffers with zero padding.  v * 0.0 is NaN
    # exactly when v is NaN or infinite, so the sums flag bad input for free.
    for i in range(m):
        v = source[i]
        a[i] = v
        check_src += v * 0.0
    memset(a + m, 0, sizeof(double) * (2 * nc - m))
    for i in range(ns):
        v = sample[i]
        b[i] = v
        check_smp += v * 0.0
    memset(b + ns, 0, sizeof(double) * (2 * nc - ns))
    if check_src != 0.0:
        return ST_SOURCE_NOT_FINITE
    if check_smp != 0.0:
        return ST_SAMPLE_NOT_FINITE

    fftw_execute_dft_r2c(r2c, a, <fftw_complex *>a)
    fftw_execute_dft_r2c(r2c, b, <fftw_complex *>b)
    # a <- a * conj(b), interleaved real/imaginary pairs.
    for k in range(nc):
        ar = a[2 * k]
        ai = a[2 * k + 1]
        br = b[2 * k]
        bi = b[2 * k + 1]
        a[2 * k] = ar * br + ai * bi
        a[2 * k + 1] = ai * br - ar * bi
    fftw_execute_dft_c2r(c2r, <fftw_complex *>a, a)

    # Peak of |correlation|; the first one wins a tie.
    peak = 0
    best = -1.0
    for k in range(n):
        v = a[k] if a[k] >= 0 else -a[k]
        if v > best:
            best = v
            peak = k
    # Indices past n - ns are where the sample starts before the source.
    lag = peak - n if peak > n - ns else peak
    lag_out[0] = lag

    # Pearson over the overlap only, read in place through offsets.
    if lag >= 0:
        off_src = lag
        off_smp = 0
        length = min(ns, m - lag)
    else:
        off_src = 0
        off_smp = -lag
        length = min(ns + lag, m)
    if length < 2:
        return ST_SILENT
    mx = 0.0
    my = 0.0
    for i in range(length):
        mx += sample[off_smp + i]
        my += source[off_src + i]
    mx /= length
    my /= length
    sxx = syy = sxy = qx = qy = 0.0
    for i in range(length):
        v = sample[off_smp + i]
        dx = v - mx
        qx += v * v
        v = source[off_src + i]
        dy = v - my
        qy += v * v
        sxx += dx * dx
        syy += dy * dy
        sxy += dx * dy
    if sxx <= SILENCE_RATIO * qx or syy <= SILENCE_RATIO * qy:
        return ST_SILENT
    v = sxy / sqrt(sxx) / sqrt(syy)
    coef_out[0] = 1.0 if v > 1.0 else (-1.0 if v < -1.0 else v)
    return ST_OK


def correlate(const real_t[:] source, const real_t[:] sample, Py_ssize_t n):
    """Return (status, lag, coefficient) for checked 1-D inputs of one dtype.

    ``n`` is the transform size, at least ``len(source)`` (checked here: a
    smaller one would write past the buffers).
    """
    if n < source.shape[0] or source.shape[0] < sample.shape[0]:
        raise ValueError("need len(sample) <= len(source) <= n")
    cdef _Plans plans = _plans_for(n)
    cdef Py_ssize_t nbuf = 2 * (n // 2 + 1)
    cdef Py_ssize_t lag = 0
    cdef double coef = 0.0
    cdef int status
    # Each call owns its buffers, so concurrent calls share only the plans.
    cdef double *a = <double *>fftw_malloc(sizeof(double) * nbuf)
    cdef double *b = <double *>fftw_malloc(sizeof(double) * nbuf)
    if a == NULL or b == NULL:
        fftw_free(a)
        fftw_free(b)
        raise MemoryError(f"cannot allocate 2 x {nbuf} samples for the correlation")
    try:
        with nogil:
            status = _kernel(source, sample, plans.r2c, plans.c2r, n, a, b, &lag, &coef)
    finally:
        fftw_free(a)
        fftw_free(b)
    return status, lag, coef
