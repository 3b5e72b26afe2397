# Declarations of the parts of FFTW's C API (fftw3.h) that audiosync uses.
# Logic lives in _xcorr.pyx; this file only tells Cython what the C symbols are.

cdef extern from *:
    # Make fftw3.h declare complex numbers as double[2] instead of C99
    # `double _Complex`, so Cython never needs C99 complex support.
    """
    #ifndef FFTW_NO_Complex
    #define FFTW_NO_Complex
    #endif
    """

cdef extern from "fftw3.h" nogil:
    ctypedef double fftw_complex[2]

    # Plans are opaque pointers.
    ctypedef struct fftw_plan_struct:
        pass
    ctypedef fftw_plan_struct *fftw_plan

    # Planner flags.
    unsigned FFTW_MEASURE
    unsigned FFTW_ESTIMATE
    unsigned FFTW_PATIENT
    unsigned FFTW_DESTROY_INPUT
    unsigned FFTW_WISDOM_ONLY

    # Planning and destruction are not thread-safe: callers hold the planner lock.
    fftw_plan fftw_plan_dft_r2c_1d(int n, double *inp, fftw_complex *out, unsigned flags)
    fftw_plan fftw_plan_dft_c2r_1d(int n, fftw_complex *inp, double *out, unsigned flags)
    void fftw_destroy_plan(fftw_plan p)
    void fftw_set_timelimit(double seconds)

    # Execution is thread-safe, also on other arrays of the same alignment.
    void fftw_execute_dft_r2c(const fftw_plan p, double *inp, fftw_complex *out)
    void fftw_execute_dft_c2r(const fftw_plan p, fftw_complex *inp, double *out)

    void *fftw_malloc(size_t n)
    void fftw_free(void *p)
    int fftw_alignment_of(double *p)

    const char fftw_version[]
