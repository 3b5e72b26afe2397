# cython: language_level=3
"""FFTW's planner: plans per transform size, the planner lock, effort and wisdom (private).

The kernel (_xcorr.pyx) cimports :func:`plans_for`; audiosync/wisdom.py
keeps the wisdom on disk. Nothing here starts a process or a thread.
"""

from cpython.pythread cimport (
    PyThread_type_lock, PyThread_allocate_lock, PyThread_acquire_lock,
    PyThread_release_lock, WAIT_LOCK,
)

from audiosync._fftw cimport (
    fftw_plan, fftwf_plan, fftw_complex, fftwf_complex,
    fftw_plan_dft_r2c_1d, fftw_plan_dft_c2r_1d, fftw_destroy_plan, fftw_set_timelimit,
    fftwf_plan_dft_r2c_1d, fftwf_plan_dft_c2r_1d, fftwf_destroy_plan, fftwf_set_timelimit,
    fftw_export_wisdom_to_filename, fftw_import_wisdom_from_filename, fftw_forget_wisdom,
    fftwf_export_wisdom_to_filename, fftwf_import_wisdom_from_filename, fftwf_forget_wisdom,
    fftw_malloc, fftw_free, fftw_version as _c_version,
    FFTW_MEASURE, FFTW_ESTIMATE, FFTW_PATIENT, FFTW_WISDOM_ONLY,
)

import time

cdef enum:
    # Plans kept per (size, precision); the least recently used is dropped beyond.
    PLAN_CACHE_SIZE = 32

EFFORTS = {"estimate": FFTW_ESTIMATE, "measure": FFTW_MEASURE, "patient": FFTW_PATIENT}

fftw_version = (<bytes>_c_version).decode("ascii")

# FFTW's planner is not thread-safe: every call that plans, destroys a plan,
# touches wisdom or changes a global planner setting holds this one lock.
# Execution does not.
cdef PyThread_type_lock _planner_lock = PyThread_allocate_lock()
if _planner_lock == NULL:
    raise MemoryError("cannot allocate the FFTW planner lock")

cdef unsigned _effort = FFTW_ESTIMATE
cdef double _time_limit = -1.0  # FFTW_NO_TIMELIMIT


def set_effort(str name, time_limit=None):
    """Planner effort for sizes not in the wisdom: estimate, measure or patient."""
    global _effort, _time_limit
    _effort = EFFORTS[name]
    _time_limit = -1.0 if time_limit is None else float(time_limit)


def get_effort():
    """The planner effort and time limit (None: no limit) now in force."""
    return next(k for k, v in EFFORTS.items() if v == _effort), (None if _time_limit < 0 else _time_limit)


cdef class Plans:
    """Forward and inverse out-of-place real transforms of one size and precision."""

    def __cinit__(self, Py_ssize_t n, bint single):
        cdef int size = <int>n
        cdef size_t elem = sizeof(float) if single else sizeof(double)
        cdef unsigned effort = _effort
        cdef double limit = _time_limit
        cdef unsigned known = FFTW_MEASURE | FFTW_WISDOM_ONLY
        # Plan on scratch memory (measuring overwrites its arrays), out of
        # place: a real array and a complex one, as the kernel runs them (in
        # place, FFTW spends about a tenth of the time copying).
        cdef void *real = fftw_malloc(elem * n)
        cdef void *cplx = fftw_malloc(elem * 2 * (n // 2 + 1))
        self.n = n
        self.single = single
        if real == NULL or cplx == NULL:
            fftw_free(real)
            fftw_free(cplx)
            raise MemoryError(f"cannot allocate {n} samples for FFTW")
        t0 = time.perf_counter()
        with nogil:
            PyThread_acquire_lock(_planner_lock, WAIT_LOCK)
            if single:
                fftwf_set_timelimit(limit)
                # Wisdom first: instant when this size was measured before.
                self.r2c = fftwf_plan_dft_r2c_1d(size, <float *>real, <fftwf_complex *>cplx, known)
                self.c2r = fftwf_plan_dft_c2r_1d(size, <fftwf_complex *>cplx, <float *>real, known)
                self.from_wisdom = self.r2c != NULL and self.c2r != NULL
                if self.r2c == NULL:
                    self.r2c = fftwf_plan_dft_r2c_1d(size, <float *>real, <fftwf_complex *>cplx, effort)
                if self.c2r == NULL:
                    self.c2r = fftwf_plan_dft_c2r_1d(size, <fftwf_complex *>cplx, <float *>real, effort)
            else:
                fftw_set_timelimit(limit)
                self.r2c = fftw_plan_dft_r2c_1d(size, <double *>real, <fftw_complex *>cplx, known)
                self.c2r = fftw_plan_dft_c2r_1d(size, <fftw_complex *>cplx, <double *>real, known)
                self.from_wisdom = self.r2c != NULL and self.c2r != NULL
                if self.r2c == NULL:
                    self.r2c = fftw_plan_dft_r2c_1d(size, <double *>real, <fftw_complex *>cplx, effort)
                if self.c2r == NULL:
                    self.c2r = fftw_plan_dft_c2r_1d(size, <fftw_complex *>cplx, <double *>real, effort)
            PyThread_release_lock(_planner_lock)
        self.planning_s = time.perf_counter() - t0
        fftw_free(real)
        fftw_free(cplx)
        if self.r2c == NULL or self.c2r == NULL:
            raise MemoryError(f"FFTW could not plan a transform of {n} samples")

    def __dealloc__(self):
        with nogil:
            PyThread_acquire_lock(_planner_lock, WAIT_LOCK)
            if self.single:
                if self.r2c != NULL:
                    fftwf_destroy_plan(<fftwf_plan>self.r2c)
                if self.c2r != NULL:
                    fftwf_destroy_plan(<fftwf_plan>self.c2r)
            else:
                if self.r2c != NULL:
                    fftw_destroy_plan(<fftw_plan>self.r2c)
                if self.c2r != NULL:
                    fftw_destroy_plan(<fftw_plan>self.c2r)
            PyThread_release_lock(_planner_lock)


cdef dict _cache = {}
_planning = {"plans": 0, "seconds": 0.0, "from_wisdom": 0}


cdef Plans plans_for(Py_ssize_t n, bint single):
    """The cached plans of size n, made (and counted) when missing."""
    # Dict operations are atomic under the GIL; two threads may both plan a
    # new size, and the loser's plans are simply dropped.
    key = (n, single)
    cdef Plans plans = _cache.pop(key, None)
    if plans is None:
        plans = Plans(n, single)
        _planning["plans"] += 1
        _planning["seconds"] += plans.planning_s
        _planning["from_wisdom"] += plans.from_wisdom
    _cache[key] = plans  # most recently used last
    while len(_cache) > PLAN_CACHE_SIZE:
        del _cache[next(iter(_cache))]
    return plans


def plan(Py_ssize_t n, bint single):
    """Make (or find) the plans of size n; return the seconds spent planning."""
    return plans_for(n, single).planning_s


def cached_sizes():
    """Transform sizes with plans in the cache (both precisions), least recently used first."""
    return [n for n, _ in _cache]


def clear_plans():
    """Drop every cached plan (they are destroyed under the planner lock)."""
    _cache.clear()


def planning_stats():
    """Plans made, seconds spent planning, and how many came from wisdom."""
    return dict(_planning)


cdef bint _wisdom_file(bytes path, bint single, bint export):
    cdef const char *p = path
    cdef int ok
    with nogil:
        PyThread_acquire_lock(_planner_lock, WAIT_LOCK)
        if export:
            ok = fftwf_export_wisdom_to_filename(p) if single else fftw_export_wisdom_to_filename(p)
        else:
            ok = fftwf_import_wisdom_from_filename(p) if single else fftw_import_wisdom_from_filename(p)
        PyThread_release_lock(_planner_lock)
    return ok != 0


def import_wisdom(bytes path, bint single):
    """Add the wisdom in ``path`` to FFTW's; False when FFTW cannot read it."""
    return _wisdom_file(path, single, False)


def export_wisdom(bytes path, bint single):
    """Write FFTW's wisdom of one precision to ``path``; False on failure."""
    return _wisdom_file(path, single, True)


def forget_wisdom():
    """Forget all wisdom of both precisions (plans already made stay)."""
    with nogil:
        PyThread_acquire_lock(_planner_lock, WAIT_LOCK)
        fftw_forget_wisdom()
        fftwf_forget_wisdom()
        PyThread_release_lock(_planner_lock)
