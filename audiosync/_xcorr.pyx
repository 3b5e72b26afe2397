# cython: language_level=3
"""FFTW cross-correlation kernel (private; use audiosync.cross_correlation).

The kernel trusts its inputs: audiosync/xcorr.py checks shapes, dtypes and
lengths first and maps the status codes returned here to exceptions.
Everything from the first copy into FFTW's buffers to the Pearson
coefficient runs with the GIL released. Plans come from _planner.pyx.
"""

cimport cython
from libc.math cimport sqrt, log2, cos, M_PI, fabs, frexp, ldexp, pow
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from audiosync._fftw cimport (
    fftw_plan, fftwf_plan, fftw_complex, fftwf_complex,
    fftw_execute_dft_r2c, fftw_execute_dft_c2r, fftwf_execute_dft_r2c, fftwf_execute_dft_c2r,
    fftw_malloc, fftw_free,
)
from audiosync._planner cimport Plans, plans_for

ctypedef fused real_t:  # the caller's samples
    short
    float
    double

ctypedef fused fft_t:  # the transform's precision
    float
    double

# Status codes returned by the nogil kernels; xcorr.py maps them to exceptions.
cdef enum:
    ST_OK = 0
    ST_SOURCE_NOT_FINITE = 1
    ST_SAMPLE_NOT_FINITE = 2
    ST_SILENT = 3          # the overlap at the peak has no variance
    ST_NEED_DOUBLE = 4     # too many near-ties for single precision
    ST_NO_MEMORY = 5
    ST_NO_LAGS = 6         # no lag in [lo, hi] leaves 2 samples of overlap
    ST_NOT_FINITE = 7      # every correlation value is NaN (NaN weights, say)

OK = ST_OK
SOURCE_NOT_FINITE = ST_SOURCE_NOT_FINITE
SAMPLE_NOT_FINITE = ST_SAMPLE_NOT_FINITE
SILENT = ST_SILENT
NEED_DOUBLE = ST_NEED_DOUBLE
NO_MEMORY = ST_NO_MEMORY
NO_LAGS = ST_NO_LAGS
NOT_FINITE = ST_NOT_FINITE

cdef enum:
    # Near-ties of a single-precision peak settled exactly, at most this many.
    MAX_CANDIDATES = 32
    # The peak search keeps the largest |r| of every block of this many lags.
    BLOCK = 256

# A sum of squared deviations this small relative to the sum of squares is
# rounding noise around a constant: the overlap is silent.
cdef double SILENCE_RATIO = 1e-20
# Single-precision correlation values are within about
# eps * log2(n) * |x| * |y| of the exact ones; this factor is the margin.
cdef double FLOAT_EPS = 5.96e-08
cdef double FLOAT_ERROR_FACTOR = 8.0
# A signal whose largest magnitude is outside [2**-20, 2**20] is scaled by a
# power of two in the transform buffers: single precision would otherwise
# overflow (loud input) or sink into denormals (quiet input) and find a wrong
# peak. A power of two is exact, so the lag does not depend on the scale;
# Pearson reads the caller's samples.
cdef double SCALE_HIGH = 1048576.0
cdef double SCALE_LOW = 1.0 / 1048576.0


# Transform buffers are kept for the next call of the same size: a fresh
# buffer of a 30 s call is 11 MB of new pages, and the kernel's page faults
# cost as much as one of its transforms. Only a few are kept (at most
# POOL_SLOTS and POOL_BYTES, the oldest freed first); the pool is changed
# under the GIL.
cdef enum:
    POOL_SLOTS = 8

cdef size_t POOL_BYTES = 128 << 20
cdef void *_pool_data[POOL_SLOTS]
cdef size_t _pool_size[POOL_SLOTS]
cdef int _pool_count = 0
cdef size_t _pool_bytes = 0


cdef void _pool_remove(int i) noexcept:
    global _pool_count, _pool_bytes
    cdef int j
    _pool_bytes -= _pool_size[i]
    for j in range(i, _pool_count - 1):
        _pool_data[j], _pool_size[j] = _pool_data[j + 1], _pool_size[j + 1]
    _pool_count -= 1


cdef void *_take(size_t nbytes) noexcept:
    """A buffer of nbytes from the pool, or a new one (NULL when out of memory)."""
    cdef int i
    cdef void *p
    for i in range(_pool_count - 1, -1, -1):
        if _pool_size[i] == nbytes:
            p = _pool_data[i]
            _pool_remove(i)
            return p
    return fftw_malloc(nbytes)


cdef void _give(void *p, size_t nbytes) noexcept:
    """Return a buffer from _take to the pool, or free it when it does not fit."""
    global _pool_count, _pool_bytes
    if p == NULL:
        return
    if nbytes > POOL_BYTES:
        fftw_free(p)
        return
    while _pool_count == POOL_SLOTS or _pool_bytes + nbytes > POOL_BYTES:
        fftw_free(_pool_data[0])
        _pool_remove(0)
    _pool_data[_pool_count] = p
    _pool_size[_pool_count] = nbytes
    _pool_count += 1
    _pool_bytes += nbytes


def free_buffers():
    """Free the transform buffers kept for later calls; return the bytes freed."""
    cdef size_t total = _pool_bytes
    while _pool_count > 0:
        fftw_free(_pool_data[0])
        _pool_remove(0)
    return total


# --- the nogil pieces ---------------------------------------------------------

cdef inline void _r2c(void *plan, fft_t *real, fft_t *cplx) noexcept nogil:
    if fft_t is float:
        fftwf_execute_dft_r2c(<fftwf_plan>plan, real, <fftwf_complex *>cplx)
    else:
        fftw_execute_dft_r2c(<fftw_plan>plan, real, <fftw_complex *>cplx)


cdef inline void _c2r(void *plan, fft_t *cplx, fft_t *real) noexcept nogil:
    # Destroys cplx (FFTW's default for complex-to-real).
    if fft_t is float:
        fftwf_execute_dft_c2r(<fftwf_plan>plan, <fftwf_complex *>cplx, real)
    else:
        fftw_execute_dft_c2r(<fftw_plan>plan, <fftw_complex *>cplx, real)


# The loops below keep two or four independent accumulators: with one, each
# element would wait for the previous addition's latency (the compiler may not
# reorder floating-point sums itself).

@cython.cdivision(True)     # fade >= 1 where it divides
cdef int _load(const real_t *x, Py_ssize_t m, fft_t *buf, Py_ssize_t total, double *sumsq,
               Py_ssize_t fade) noexcept nogil:
    """Copy x[:m] into buf zero-padded to total, its first and last ``fade``
    samples faded in and out (raised cosine); return 1 when x holds NaN or
    infinity."""
    cdef Py_ssize_t i = 0, lane
    cdef double v, w, check = 0.0, sq = 0.0, peak = 0.0
    cdef double[4] checks, sqs, peaks
    cdef int e
    for lane in range(4):
        checks[lane] = sqs[lane] = peaks[lane] = 0.0
    while i + 4 <= m:
        for lane in range(4):  # unrolled by the compiler: a constant trip count
            v = x[i + lane]
            buf[i + lane] = <fft_t>v
            # v * 0.0 is NaN exactly when v is NaN or infinite.
            checks[lane] += v * 0.0
            sqs[lane] += v * v
            v = fabs(v)
            peaks[lane] = v if v > peaks[lane] else peaks[lane]
        i += 4
    while i < m:
        v = x[i]
        buf[i] = <fft_t>v
        checks[0] += v * 0.0
        sqs[0] += v * v
        v = fabs(v)
        peaks[0] = v if v > peaks[0] else peaks[0]
        i += 1
    for lane in range(4):
        check += checks[lane]
        sq += sqs[lane]
        peak = peaks[lane] if peaks[lane] > peak else peak
    memset(buf + m, 0, sizeof(fft_t) * (total - m))
    if check != 0.0:
        return 1
    if peak > SCALE_HIGH or (0.0 < peak < SCALE_LOW):
        frexp(peak, &e)  # peak = f * 2**e with 0.5 <= f < 1
        sq = 0.0
        for i in range(m):
            v = ldexp(<double>x[i], -e)  # exact, and never out of range: |v| < 1
            buf[i] = <fft_t>v
            sq += v * v
    # Cut edges would correlate with onsets: fade them.
    fade = min(fade, m // 2)
    for i in range(fade):
        w = 0.5 - 0.5 * cos(M_PI * (i + 0.5) / fade)
        buf[i] = <fft_t>(buf[i] * w)
        buf[m - 1 - i] = <fft_t>(buf[m - 1 - i] * w)
    sumsq[0] = sq
    return 0


@cython.cdivision(True)     # length >= 2, square roots of positives
cdef int pearson(const real_t *source, Py_ssize_t m, const real_t *sample, Py_ssize_t ns,
                  Py_ssize_t lag, double *coef_out) noexcept nogil:
    """Pearson over the overlap at lag, read in place through offsets, in two
    passes (means, then deviations: no cancellation on a DC offset)."""
    cdef Py_ssize_t i, lane, length
    cdef const real_t *x
    cdef const real_t *y
    cdef double v, mx = 0.0, my = 0.0, dx, dy, sxx = 0.0, syy = 0.0, sxy = 0.0, qx = 0.0, qy = 0.0
    cdef double[4] ax, ay
    cdef double[2] axx, ayy, axy, aqx, aqy
    if lag >= 0:
        x, y = sample, source + lag
        length = min(ns, m - lag)
    else:
        x, y = sample - lag, source
        length = min(ns + lag, m)
    if length < 2:
        return ST_SILENT
    for lane in range(4):
        ax[lane] = ay[lane] = 0.0
    i = 0
    while i + 4 <= length:
        for lane in range(4):
            ax[lane] += x[i + lane]
            ay[lane] += y[i + lane]
        i += 4
    while i < length:
        ax[0] += x[i]
        ay[0] += y[i]
        i += 1
    mx = ((ax[0] + ax[1]) + (ax[2] + ax[3])) / length
    my = ((ay[0] + ay[1]) + (ay[2] + ay[3])) / length
    for lane in range(2):
        axx[lane] = ayy[lane] = axy[lane] = aqx[lane] = aqy[lane] = 0.0
    i = 0
    while i < length:
        for lane in range(2):
            if i + lane < length:
                v = x[i + lane]
                dx = v - mx
                aqx[lane] += v * v
                v = y[i + lane]
                dy = v - my
                aqy[lane] += v * v
                axx[lane] += dx * dx
                ayy[lane] += dy * dy
                axy[lane] += dx * dy
        i += 2
    sxx, syy, sxy = axx[0] + axx[1], ayy[0] + ayy[1], axy[0] + axy[1]
    qx, qy = aqx[0] + aqx[1], aqy[0] + aqy[1]
    if sxx <= SILENCE_RATIO * qx or syy <= SILENCE_RATIO * qy:
        return ST_SILENT
    v = sxy / sqrt(sxx) / sqrt(syy)
    coef_out[0] = 1.0 if v > 1.0 else (-1.0 if v < -1.0 else v)
    return ST_OK


cdef double _exact_at(const real_t *source, Py_ssize_t m, const real_t *sample, Py_ssize_t ns,
                      Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    """The circular correlation at index k, in double, straight from the samples:
    sample[i] meets source[(i + k) % n], where the source is m long and zero beyond."""
    cdef Py_ssize_t i
    cdef double acc = 0.0
    # i + k runs from k to k + ns - 1 < 2n: the part below n, then the part that wraps.
    for i in range(min(ns, m - k)):
        acc += <double>sample[i] * <double>source[i + k]
    for i in range(n - k, min(ns, n - k + m)):
        acc += <double>sample[i] * <double>source[i + k - n]
    return acc


cdef inline Py_ssize_t _lag_of(Py_ssize_t k, Py_ssize_t n, Py_ssize_t ns) noexcept nogil:
    # Indices past n - ns are where the sample starts before the source.
    return k - n if k > n - ns else k



cdef struct Search:
    # What one correlation is asked; set by correlate(), read by the phases.
    void *r2c
    void *c2r
    Py_ssize_t n            # transform size
    double source_sumsq
    Py_ssize_t lo           # lags searched: [lo, hi]
    Py_ssize_t hi
    bint refine             # settle single-precision near-ties exactly
    const float *weights    # one per frequency bin, or NULL
    double beta             # whitening exponent, 0 for none
    Py_ssize_t guard        # half-width of the zone left out of the second peak
    Py_ssize_t fade
    const void *given       # the sample's own spectrum (made by spectrum()), or NULL
    double given_sumsq


cdef struct Lags:
    # The allowed lags as two index ranges of r: [start[0], stop[0]) holds
    # the lags >= 0 (index k is lag k), [start[1], stop[1]) the negative ones
    # (index k is lag k - n); nblocks blocks of BLOCK lags, count lags in all.
    Py_ssize_t start[2]
    Py_ssize_t stop[2]
    Py_ssize_t nblocks
    Py_ssize_t count


cdef struct Found:
    Py_ssize_t lag      # integer lag of the peak
    double fraction     # sub-sample offset of the peak, in (-0.5, 0.5)
    double coefficient  # Pearson over the overlap at lag
    double value        # |r| at the peak
    double second       # largest |r| more than guard samples from the peak
    Py_ssize_t second_lag  # its lag (the peak's own lag when there is none)
    double rms          # root mean square of r over the searched lags


cdef void _cross_spectrum(const fft_t *spectrum, fft_t *b, Py_ssize_t nc,
                          const float *weights, double beta) noexcept nogil:
    """b <- spectrum * conj(b), times the weights and whitened by beta, as
    interleaved real/imaginary pairs; the source's spectrum is left as it
    is, for the next sample."""
    cdef Py_ssize_t k
    cdef double mag, w, eps = 0.0
    cdef fft_t ar, ai, br, bi, pr, pi
    if beta == 0 and weights == NULL:
        for k in range(nc):  # the plain product, kept apart so it vectorizes
            ar = spectrum[2 * k]
            ai = spectrum[2 * k + 1]
            br = b[2 * k]
            bi = b[2 * k + 1]
            b[2 * k] = ar * br + ai * bi
            b[2 * k + 1] = ai * br - ar * bi
        return
    if beta > 0:
        # Whitening divides by |X||Y|^beta; eps keeps empty bins from
        # blowing up: 1e-6 of the mean magnitude.
        for k in range(nc):
            eps += sqrt(<double>(spectrum[2 * k] * spectrum[2 * k] + spectrum[2 * k + 1] * spectrum[2 * k + 1])
                        * <double>(b[2 * k] * b[2 * k] + b[2 * k + 1] * b[2 * k + 1]))
        eps = 1e-6 * eps / nc + 1e-30
    for k in range(nc):
        ar = spectrum[2 * k]
        ai = spectrum[2 * k + 1]
        br = b[2 * k]
        bi = b[2 * k + 1]
        pr = ar * br + ai * bi
        pi = ai * br - ar * bi
        w = 1.0 if weights == NULL else weights[k]
        if beta > 0:
            mag = sqrt(<double>(pr * pr + pi * pi)) + eps
            # C's pow: Cython's ** on doubles may make a complex number and raise,
            # which a nogil noexcept function can only print (and then answers OK).
            w = w / mag if beta == 1.0 else (w / sqrt(mag) if beta == 0.5 else w / pow(mag, beta))
        b[2 * k] = <fft_t>(pr * w)
        b[2 * k + 1] = <fft_t>(pi * w)


@cython.cdivision(True)  # stop >= start
cdef inline Py_ssize_t _nblocks(Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    return (stop - start + BLOCK - 1) // BLOCK


cdef void _allowed_lags(Lags *lags, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t m, Py_ssize_t ns,
                        Py_ssize_t n) noexcept nogil:
    """[lo, hi] of the lags with at least 2 samples of overlap, [-(ns - 2), m - 2]."""
    cdef int r
    lo = max(lo, -(ns - 2))
    hi = min(hi, m - 2, n - ns)
    lags.start[0] = max(lo, 0)
    lags.stop[0] = hi + 1
    lags.start[1] = n + lo if lo < 0 else n
    lags.stop[1] = n + min(hi, -1) + 1 if lo < 0 else n
    lags.nblocks = lags.count = 0
    for r in range(2):
        lags.stop[r] = max(lags.stop[r], lags.start[r])
        lags.nblocks += _nblocks(lags.start[r], lags.stop[r])
        lags.count += lags.stop[r] - lags.start[r]


cdef double _block_max(const fft_t *b, Py_ssize_t count, double *sumsq) noexcept nogil:
    """The largest |b[i]| of count >= 1 values (-1 when all are NaN); adds their squares to sumsq.

    |r| by fabs, here and below, not by a comparison: the sign of r is
    random, and a branch on it is mispredicted half the time. Four
    independent lanes: one running maximum or sum would wait on the
    previous one's latency at every element.
    """
    cdef Py_ssize_t i = 0
    cdef double v0, v1, v2, v3, m0 = -1.0, m1 = -1.0, m2 = -1.0, m3 = -1.0
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    while i + 4 <= count:
        v0 = fabs(<double>b[i])
        v1 = fabs(<double>b[i + 1])
        v2 = fabs(<double>b[i + 2])
        v3 = fabs(<double>b[i + 3])
        s0 += v0 * v0
        s1 += v1 * v1
        s2 += v2 * v2
        s3 += v3 * v3
        m0 = v0 if v0 > m0 else m0
        m1 = v1 if v1 > m1 else m1
        m2 = v2 if v2 > m2 else m2
        m3 = v3 if v3 > m3 else m3
        i += 4
    while i < count:
        v0 = fabs(<double>b[i])
        s0 += v0 * v0
        m0 = v0 if v0 > m0 else m0
        i += 1
    sumsq[0] += (s0 + s1) + (s2 + s3)
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    return m2 if m2 > m0 else m0


cdef double _block_peaks(const fft_t *r, const Lags *lags, double *bmax, Py_ssize_t *peak,
                         double *sumsq) noexcept nogil:
    """One pass over r: each block's largest |r| into bmax, the sum of r**2
    into sumsq; return the largest of all (-1 when every value is NaN) and
    its index in peak. The near-ties and the second peak then read only the
    blocks that can hold them."""
    cdef Py_ssize_t q, kb, j = 0, at = 0
    cdef double best = -1.0
    cdef int i
    for i in range(2):
        for q in range(_nblocks(lags.start[i], lags.stop[i])):
            kb = lags.start[i] + q * BLOCK
            bmax[j] = _block_max(r + kb, min(BLOCK, lags.stop[i] - kb), sumsq)
            if bmax[j] > best:  # the first one wins a tie
                best = bmax[j]
                at = kb
            j += 1
    if best >= 0:
        while fabs(r[at]) != best:
            at += 1
    peak[0] = at
    return best


cdef int _settle_near_ties(const real_t *source, Py_ssize_t m, const real_t *sample, Py_ssize_t ns,
                           const fft_t *r, const Lags *lags, const double *bmax, double floor,
                           Py_ssize_t n, Py_ssize_t *peak) noexcept nogil:
    """Single precision cannot tell apart peaks closer than its rounding:
    every |r| >= floor is settled by the exact double-precision sum, and the
    best becomes the peak. ST_NEED_DOUBLE when there are too many."""
    cdef Py_ssize_t q, k, kb, j = 0, ncand = 0
    cdef Py_ssize_t[MAX_CANDIDATES] cand
    cdef double exact, best_exact = -1.0
    cdef int i
    for i in range(2):
        for q in range(_nblocks(lags.start[i], lags.stop[i])):
            kb = lags.start[i] + q * BLOCK
            if bmax[j] >= floor:
                for k in range(kb, min(kb + BLOCK, lags.stop[i])):
                    if fabs(r[k]) >= floor:
                        if ncand == MAX_CANDIDATES:
                            return ST_NEED_DOUBLE
                        cand[ncand] = k
                        ncand += 1
            j += 1
    if ncand > 1:
        for i in range(ncand):
            exact = fabs(_exact_at(source, m, sample, ns, cand[i], n))
            if exact > best_exact:
                best_exact = exact
                peak[0] = cand[i]
    return ST_OK


cdef double _second_peak(const fft_t *r, const Lags *lags, const double *bmax, Py_ssize_t lag,
                         Py_ssize_t guard, Py_ssize_t n, Py_ssize_t *where) noexcept nogil:
    """The largest |r| more than guard samples (in lag) from lag, and its
    lag in where: whole blocks outside the guard zone by their maximum (the
    winning block read again for its index), the blocks it cuts element by
    element. Within a range the lag is k, or k - n, so the zone is one
    index interval in each."""
    cdef Py_ssize_t q, k, kb, ke, d, shift, j = 0, at = -1, block_at = -1
    cdef double v, second = 0.0, block_best = 0.0
    cdef int i
    for i in range(2):
        shift = 0 if i == 0 else n
        for q in range(_nblocks(lags.start[i], lags.stop[i])):
            kb = lags.start[i] + q * BLOCK
            ke = min(kb + BLOCK, lags.stop[i])
            if ke - 1 < lag - guard + shift or kb > lag + guard + shift:
                if bmax[j] > second:
                    second = bmax[j]
                    block_at, block_best, at = kb, bmax[j], -1
            else:
                for k in range(kb, ke):
                    d = k - shift - lag
                    if d > guard or d < -guard:
                        v = fabs(r[k])
                        if v > second:
                            second = v
                            at, block_at = k, -1
            j += 1
    if block_at >= 0:  # the best was a whole block's maximum: find it in the block
        at = block_at
        while fabs(r[at]) != block_best:
            at += 1
    where[0] = at
    return second


@cython.cdivision(True)  # n > 0 and the indices below are made non-negative first
cdef double _fraction(const fft_t *r, Py_ssize_t peak, Py_ssize_t n) noexcept nogil:
    """A parabola through the peak and its neighbours places it between samples."""
    cdef double ym = fabs(r[(peak - 1 + n) % n]), y0 = fabs(r[peak]), yp = fabs(r[(peak + 1) % n])
    cdef double den = ym - 2.0 * y0 + yp, v
    if den < 0:
        v = 0.5 * (ym - yp) / den
        if -0.5 < v < 0.5:
            return v
    return 0.0


cdef int _correlate(const real_t *source, Py_ssize_t m, const real_t *sample, Py_ssize_t ns,
                    const fft_t *spectrum, fft_t *a, fft_t *b, const Search *s,
                    Found *found) noexcept nogil:
    """The whole search: r into a, the allowed lags, the block peaks, the
    near-ties, the second peak, the sub-sample fraction and Pearson."""
    cdef Lags lags
    cdef double sample_sumsq, best, tol, sumsq = 0.0
    cdef double *bmax
    cdef Py_ssize_t peak = 0, second_at = -1
    cdef int status
    if s.given != NULL:  # transformed once for several searches: copied, as r2c would write it
        memcpy(b, s.given, sizeof(fft_t) * 2 * (s.n // 2 + 1))
        sample_sumsq = s.given_sumsq
    else:
        if _load(sample, ns, a, s.n, &sample_sumsq, s.fade):
            return ST_SAMPLE_NOT_FINITE
        _r2c(s.r2c, a, b)
    _cross_spectrum(spectrum, b, s.n // 2 + 1, s.weights, s.beta)
    _c2r(s.c2r, b, a)  # r, n times over, in a

    _allowed_lags(&lags, s.lo, s.hi, m, ns, s.n)
    if lags.count == 0:
        return ST_NO_LAGS
    bmax = <double *>malloc(sizeof(double) * lags.nblocks)
    if bmax == NULL:
        return ST_NO_MEMORY
    best = _block_peaks(a, &lags, bmax, &peak, &sumsq)
    status = ST_NOT_FINITE if best < 0 else ST_OK
    if status == ST_OK and s.refine and s.beta == 0 and s.weights == NULL and s.fade == 0:
        tol = FLOAT_EPS * FLOAT_ERROR_FACTOR * log2(<double>s.n) * sqrt(s.source_sumsq * sample_sumsq) * s.n
        status = _settle_near_ties(source, m, sample, ns, a, &lags, bmax, best - tol, s.n, &peak)
    if status == ST_OK:
        found.lag = _lag_of(peak, s.n, ns)
        found.value = fabs(a[peak]) / s.n
        found.second = _second_peak(a, &lags, bmax, found.lag, s.guard, s.n, &second_at) / s.n
        found.second_lag = found.lag if second_at < 0 else _lag_of(second_at, s.n, ns)
        if found.second > found.value:
            # A near-tie settled by exact sums can pick a lag whose transform value rounding put
            # a hair below the second's; exactly, the second is not above the peak.
            found.second = found.value
        found.fraction = _fraction(a, peak, s.n)
        found.rms = sqrt(sumsq / lags.count) / s.n
    free(bmax)
    if status != ST_OK:
        return status
    return pearson(source, m, sample, ns, found.lag, &found.coefficient)


# --- the Python-facing kernel ---------------------------------------------------

cdef class Spectrum:
    """The forward transform of a source, kept to correlate several samples against."""
    cdef void *data
    cdef size_t nbytes
    cdef readonly Plans plans
    cdef readonly Py_ssize_t n
    cdef readonly Py_ssize_t m
    cdef readonly bint single
    cdef readonly double sumsq
    cdef readonly Py_ssize_t fade
    cdef readonly object source  # the samples, read again for Pearson

    def __dealloc__(self):
        _give(self.data, self.nbytes)


def spectrum(const real_t[::1] source, Py_ssize_t n, bint single, object owner, Py_ssize_t fade=0):
    """Return (status, Spectrum or None) of ``source`` zero-padded to ``n``.

    ``owner`` is the array behind ``source``, kept alive with the spectrum.
    """
    cdef Py_ssize_t nbuf = 2 * (n // 2 + 1)
    cdef int status = 0
    cdef double sq = 0.0
    if n < source.shape[0] or n < 2 or source.shape[0] < 2:
        raise ValueError("need 2 <= len(source) <= n")
    cdef Plans plans = plans_for(n, single)
    cdef Spectrum spec = Spectrum.__new__(Spectrum)
    cdef size_t elem = sizeof(float) if single else sizeof(double)
    spec.nbytes = elem * nbuf
    spec.data = _take(spec.nbytes)
    cdef void *real = _take(elem * n)
    if spec.data == NULL or real == NULL:
        _give(real, elem * n)
        return ST_NO_MEMORY, None
    spec.plans, spec.n, spec.m, spec.single, spec.source = plans, n, source.shape[0], single, owner
    spec.fade = fade
    with nogil:
        if single:
            status = _load(&source[0], source.shape[0], <float *>real, n, &sq, fade)
            if not status:
                _r2c(plans.r2c, <float *>real, <float *>spec.data)
        else:
            status = _load(&source[0], source.shape[0], <double *>real, n, &sq, fade)
            if not status:
                _r2c(plans.r2c, <double *>real, <double *>spec.data)
    _give(real, elem * n)
    spec.sumsq = sq
    return (ST_SOURCE_NOT_FINITE, None) if status else (ST_OK, spec)


def correlate(Spectrum spec, const real_t[::1] source, const real_t[::1] sample,
              Py_ssize_t lo, Py_ssize_t hi, bint refine,
              const float[:] weights=None, double beta=0.0, Py_ssize_t guard=0, Spectrum given=None):
    """Return (status, (lag, fraction, coefficient, value, second, second_lag, rms)) of ``sample``
    against the source of ``spec``: the fields of ``audiosync.xcorr.Peak``.

    ``source`` must be the samples ``spec`` was made from, of the sample's
    dtype; lags are searched in [lo, hi]. ``weights`` (one per frequency
    bin, or None) and ``beta`` (whitening exponent, 0 for none) shape the
    cross-spectrum; ``guard`` is the half-width, in samples, of the zone
    around the peak left out of ``second``. ``given``: the sample's own
    spectrum (``spectrum(sample, spec.n, spec.single, sample, spec.fade)``),
    so that several searches of one sample transform it once.
    """
    cdef Py_ssize_t n = spec.n
    cdef Found found
    cdef Search search
    cdef int status
    found.lag = found.second_lag = 0
    found.fraction = found.coefficient = found.value = found.second = found.rms = 0.0
    if source.shape[0] != spec.m or sample.shape[0] > n or sample.shape[0] < 2:
        raise ValueError("the source is not the spectrum's, or the sample does not fit")
    search.weights = NULL
    if weights is not None:
        if weights.shape[0] != n // 2 + 1 or (weights.shape[0] > 1 and weights.strides[0] != sizeof(float)):
            raise ValueError("weights must be contiguous float32, one per frequency bin")
        search.weights = &weights[0]
    if beta < 0 or guard < 0:
        raise ValueError("beta and guard must not be negative")
    search.r2c, search.c2r, search.n = spec.plans.r2c, spec.plans.c2r, n
    search.source_sumsq, search.lo, search.hi = spec.sumsq, lo, hi
    search.refine = refine and spec.single  # double precision needs no settling
    search.beta, search.guard, search.fade = beta, guard, spec.fade
    search.given, search.given_sumsq = NULL, 0.0
    if given is not None:
        if given.n != n or given.single != spec.single or given.fade != spec.fade or given.m != sample.shape[0]:
            raise ValueError("the given spectrum is not the sample's at this transform")
        search.given, search.given_sumsq = given.data, given.sumsq
    # Each call owns its buffers, so concurrent calls share only plans and spectrum.
    cdef size_t elem = sizeof(float) if spec.single else sizeof(double)
    cdef void *a = _take(elem * n)
    cdef void *b = _take(elem * 2 * (n // 2 + 1))
    if a == NULL or b == NULL:
        _give(a, elem * n)
        _give(b, elem * 2 * (n // 2 + 1))
        return ST_NO_MEMORY, None
    try:
        with nogil:
            if spec.single:
                status = _correlate(&source[0], spec.m, &sample[0], sample.shape[0],
                                    <float *>spec.data, <float *>a, <float *>b, &search, &found)
            else:
                status = _correlate(&source[0], spec.m, &sample[0], sample.shape[0],
                                    <double *>spec.data, <double *>a, <double *>b, &search, &found)
    finally:
        _give(a, elem * n)
        _give(b, elem * 2 * (n // 2 + 1))
    return status, (found.lag, found.fraction, found.coefficient, found.value, found.second, found.second_lag, found.rms)
