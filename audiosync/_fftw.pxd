# Declarations of the parts of FFTW's C API (fftw3.h) that audiosync uses,
# in double (fftw_) and single (fftwf_) precision.  Logic lives in _xcorr.pyx.

cdef extern from *:
    # Make fftw3.h declare complex numbers as real[2] instead of C99
    # `_Complex`, so Cython never needs C99 complex support.
    """
    #ifndef FFTW_NO_Complex
    #define FFTW_NO_Complex
    #endif
    """

cdef extern from "fftw3.h" nogil:
    ctypedef double fftw_complex[2]
    ctypedef float fftwf_complex[2]

    # Plans are opaque pointers.
    ctypedef struct fftw_plan_struct:
        pass
    ctypedef fftw_plan_struct *fftw_plan
    ctypedef struct fftwf_plan_struct:
        pass
    ctypedef fftwf_plan_struct *fftwf_plan

    # Planner flags.
    unsigned FFTW_MEASURE
    unsigned FFTW_ESTIMATE
    unsigned FFTW_PATIENT
    unsigned FFTW_WISDOM_ONLY

    # Planning, destruction and wisdom are not thread-safe: callers hold the
    # planner lock.
    fftw_plan fftw_plan_dft_r2c_1d(int n, double *inp, fftw_complex *out, unsigned flags)
    fftw_plan fftw_plan_dft_c2r_1d(int n, fftw_complex *inp, double *out, unsigned flags)
    void fftw_destroy_plan(fftw_plan p)
    void fftw_set_timelimit(double seconds)
    int fftw_export_wisdom_to_filename(const char *filename)
    int fftw_import_wisdom_from_filename(const char *filename)
    void fftw_forget_wisdom()

    fftwf_plan fftwf_plan_dft_r2c_1d(int n, float *inp, fftwf_complex *out, unsigned flags)
    fftwf_plan fftwf_plan_dft_c2r_1d(int n, fftwf_complex *inp, float *out, unsigned flags)
    void fftwf_destroy_plan(fftwf_plan p)
    void fftwf_set_timelimit(double seconds)
    int fftwf_export_wisdom_to_filename(const char *filename)
    int fftwf_import_wisdom_from_filename(const char *filename)
    void fftwf_forget_wisdom()

    # Execution is thread-safe, also on other arrays of the same alignment
    # (every buffer here comes from fftw_malloc, which aligns them alike).
    void fftw_execute_dft_r2c(const fftw_plan p, double *inp, fftw_complex *out)
    void fftw_execute_dft_c2r(const fftw_plan p, fftw_complex *inp, double *out)
    void fftwf_execute_dft_r2c(const fftwf_plan p, float *inp, fftwf_complex *out)
    void fftwf_execute_dft_c2r(const fftwf_plan p, fftwf_complex *inp, float *out)

    void *fftw_malloc(size_t n)
    void fftw_free(void *p)

    const char fftw_version[]
