"""Cross-correlation of two recordings: the validated public face of the kernel."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from audiosync import _planner, _xcorr, wisdom
from audiosync._sizes import working_length
from audiosync.errors import SilentInputError

__all__ = ["Correlation", "Correlator", "Peak", "cross_correlation", "free_buffers", "working_length"]

# dtypes the kernel reads directly; anything else is converted to float64 once.
_KERNEL_DTYPES = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.int16))
# FFTW's basic interface takes sizes as C int, and the working length may
# round a source up by a few percent.
_MAX_LENGTH = 2**30


class Correlation(NamedTuple):
    """Result of :func:`cross_correlation`."""

    lag: int
    """Samples such that ``sample[i] ≈ source[i + lag]``."""
    coefficient: float
    """Pearson correlation of the overlapping segments at ``lag``, in [-1, 1]."""


class Peak(NamedTuple):
    """What :meth:`Correlator.find` found: the kernel's whole answer."""

    lag: int
    """Integer lag of the peak: ``sample[i] ≈ source[i + lag]``."""
    fraction: float
    """Sub-sample offset of the peak, in (-0.5, 0.5), from a parabola through it."""
    coefficient: float
    """Pearson correlation of the overlapping segments at ``lag``, in [-1, 1]."""
    value: float
    """|r| at the peak, divided by the transform size."""
    second: float
    """The largest |r| more than ``guard`` samples from the peak, likewise scaled."""
    second_lag: int
    """Where that second peak is (the peak's own lag when no lag lies outside the guard)."""
    rms: float
    """The root mean square of r over the searched lags, likewise scaled: the chance level."""

    @property
    def prominence(self) -> float:
        """The peak over the second peak (inf when nothing else is there, 0 when all is 0)."""
        if self.second > 0:
            return self.value / self.second
        return math.inf if self.value > 0 else 0.0


def _raise_for(status: int, n: int, lag: int = 0) -> None:
    """Map a kernel status to its exception: the one place that does."""
    if status == _xcorr.OK:
        return
    if status == _xcorr.SOURCE_NOT_FINITE:
        raise ValueError("source contains NaN or infinity")
    if status == _xcorr.SAMPLE_NOT_FINITE:
        raise ValueError("sample contains NaN or infinity")
    if status == _xcorr.NO_MEMORY:
        raise MemoryError(f"cannot allocate a transform of {n} samples")
    if status == _xcorr.SILENT:
        raise SilentInputError(f"the overlap at lag {lag} is silent (no variance): the correlation is undefined")
    if status == _xcorr.NO_LAGS:
        raise ValueError("no lag in the range searched leaves the signals 2 samples of overlap")
    if status == _xcorr.NOT_FINITE:
        raise ValueError("the correlation has no finite value (weights or beta make every value NaN)")
    raise RuntimeError(f"unknown kernel status {status}")


def _as_signal(x: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged sequences and the like
        raise ValueError(f"{name} must be a 1-D array of real numbers: {exc}") from None
    if arr.dtype not in _KERNEL_DTYPES:
        if arr.dtype.kind == "c":
            raise ValueError(f"{name} must be real, got complex dtype {arr.dtype}")
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: an int beyond float's range
            raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got {arr.ndim} dimensions with shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} must have at least 2 samples, got {arr.shape[0]}")
    if arr.shape[0] > _MAX_LENGTH:
        raise ValueError(f"{name} has {arr.shape[0]} samples; FFTW takes at most {_MAX_LENGTH}")
    # The kernel reads plain C arrays: a strided view (one channel of a
    # stereo array, say) is copied once; a contiguous array is not.
    return np.ascontiguousarray(arr)


_PRECISIONS = ("single", "double")


def free_buffers() -> int:
    """Give back the transform buffers the kernel keeps for the next call of the same size; the bytes freed.

    Worth it after a large transform that will not come again (the first
    look at an hour-long pair): the buffers otherwise stay until reused.
    """
    return _xcorr.free_buffers()


class Correlator:
    """Correlate one or more samples against one source, transforming the source once.

    Parameters
    ----------
    source : array_like
        1-D real signal (see :func:`cross_correlation`).
    max_sample_length : int, optional
        The longest sample to come; needed (and only used) with ``linear``.
        Defaults to the source's length.
    linear : bool
        See :func:`cross_correlation`.
    precision : {"single", "double"}
        See :func:`cross_correlation`.
    """

    def __init__(self, source: object, *, max_sample_length: int | None = None,
                 linear: bool = False, precision: str = "single", fade: int = 0):
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be 'single' or 'double', got {precision!r}")
        src = _as_signal(source, "source")
        m = src.shape[0]
        longest = m if max_sample_length is None else int(max_sample_length)
        if not 2 <= longest <= m:
            raise ValueError(f"max_sample_length must be from 2 to len(source) = {m}, got {max_sample_length!r}")
        self.source = src
        self.linear = linear
        self.precision = precision
        self.max_sample_length = longest
        # A fade longer than the signal fades all of it (none below 0); clipped, it fits the
        # kernel's C integer (a Python int of any size would raise OverflowError).
        self.fade = max(0, min(int(fade), m))
        self.n = working_length(m + longest - 1 if linear else m)
        self._spectra: dict[str, object] = {}

    def plan(self, precision: str | None = None) -> None:
        """Make this transform's plans now (from this machine's wisdom when it has them): threads
        that transform next all use these, so their rounding is the same."""
        wisdom.load_once()  # plans measured by `audiosync prepare` serve this size
        _planner.plan(self.n, (precision or self.precision) == "single")

    def _spectrum(self, precision: str):
        spec = self._spectra.get(precision)
        if spec is None:
            self.plan(precision)
            status, spec = _xcorr.spectrum(self.source, self.n, precision == "single", self.source, self.fade)
            _raise_for(status, self.n)
            self._spectra[precision] = spec
        return spec

    def __call__(self, sample: object, *, lags: tuple[int, int] | None = None) -> Correlation:
        """Find where ``sample`` lies in the source; ``lags=(lo, hi)`` limits the search."""
        peak = self.find(sample, lags=lags)
        return Correlation(peak.lag, peak.coefficient)

    def sample_spectrum(self, sample: np.ndarray):
        """``sample``'s own transform at this correlator's size, for :meth:`find` to use (``spectrum=``)
        when one sample is searched for several ways: transformed once, and while the source's
        transform is made (the kernel releases the GIL). ``sample`` must be of the source's dtype."""
        smp = _as_signal(sample, "sample")
        if smp.dtype != self.source.dtype or smp.shape[0] > self.max_sample_length:
            raise ValueError("sample_spectrum needs a sample of the source's dtype, no longer than "
                             "max_sample_length")
        self.plan()
        status, spec = _xcorr.spectrum(smp, self.n, self.precision == "single", smp, self.fade)
        _raise_for(_xcorr.SAMPLE_NOT_FINITE if status == _xcorr.SOURCE_NOT_FINITE else status, self.n)
        return spec

    def prepare(self) -> None:
        """Make the source's transform now (else the first :meth:`find` makes it)."""
        self._spectrum(self.precision)

    def find(self, sample: object, *, lags: tuple[int, int] | None = None,
             weights: np.ndarray | None = None, beta: float = 0.0, guard: int = 0, spectrum=None) -> Peak:
        """The kernel's whole answer: lag, sub-sample fraction, coefficient, peak, second peak and RMS.

        ``weights`` (float32, one per frequency bin of the transform) and
        ``beta`` (1 for the phase transform) shape the cross-spectrum; the
        second peak is the largest more than ``guard`` samples from the peak.
        ``spectrum``: :meth:`sample_spectrum` of this very ``sample``.
        """
        smp = _as_signal(sample, "sample")
        m = self.source.shape[0]
        if smp.shape[0] > self.max_sample_length:
            raise ValueError(
                f"sample ({smp.shape[0]} samples) must not be longer than "
                f"{'max_sample_length' if self.linear else 'source'} ({self.max_sample_length})"
            )
        lo, hi = (-(smp.shape[0] - 1), m - 1) if lags is None else (int(lags[0]), int(lags[1]))
        if lo > hi:
            raise ValueError(f"lags must be (lo, hi) with lo <= hi, got {lags!r}")
        # Bounds beyond the signals only mean "no limit there"; clipped, they
        # also fit the kernel's C integers.
        lo = min(max(lo, -smp.shape[0]), m)
        hi = min(max(hi, -smp.shape[0]), m)
        beta, guard = float(beta), int(guard)
        if not beta >= 0 or guard < 0:  # NaN is refused too, not read as 0
            raise ValueError(f"beta and guard must not be negative or NaN, got {beta!r} and {guard!r}")
        guard = min(guard, self.n)  # wider than the transform leaves nothing out; and fits C
        if smp.dtype != self.source.dtype:
            smp = smp.astype(self.source.dtype) if self.source.dtype != np.int16 else smp.astype(np.float64)
            if self.source.dtype == np.int16:  # rare: an int16 source and a float sample
                self.source = self.source.astype(np.float64)
                self._spectra.clear()
        status, found = _xcorr.correlate(
            self._spectrum(self.precision), self.source, smp, lo, hi, self.precision == "single",
            weights, beta, guard, spectrum)
        if status == _xcorr.NEED_DOUBLE:  # too many near-ties for single precision
            status, found = _xcorr.correlate(self._spectrum("double"), self.source, smp, lo, hi, False,
                                             weights, beta, guard)
        _raise_for(status, self.n, found[0] if found else 0)
        return Peak._make(found)


def cross_correlation(source: object, sample: object, *, linear: bool = False,
                      precision: str = "single", lags: tuple[int, int] | None = None) -> Correlation:
    """Find where ``sample`` lies in ``source``.

    Parameters
    ----------
    source : array_like
        1-D real signal, at least as long as ``sample`` (normally twice as
        long). float64, float32 and int16 are read directly; other real
        dtypes are converted to float64 once.
    sample : array_like
        1-D real signal of at least 2 samples.
    linear : bool
        False (default, as the original): the transform is as long as the
        source, so negative lags wrap onto the source's tail. True: long
        enough (``len(source) + len(sample) - 1``) that every lag from
        ``-(len(sample) - 1)`` to ``len(source) - 1`` is seen without wrap.
    precision : {"single", "double"}
        The transforms' precision. ``"single"`` (default) is about twice as
        fast and gives the same lag as ``"double"``: near-ties that single
        precision cannot separate are settled with exact double-precision
        sums (and with double-precision transforms when there are more than
        32 of them). The coefficient is always computed in double.
    lags : (int, int), optional
        Search only lags from ``lo`` to ``hi`` (inclusive).

    Returns
    -------
    Correlation
        ``(lag, coefficient)``: ``sample[i] ≈ source[i + lag]``; ``lag`` is
        negative when the sample starts before the source. ``coefficient``
        is the Pearson correlation of the overlapping segments at ``lag``.

    Raises
    ------
    ValueError
        An input is empty, shorter than 2 samples, not 1-D, not real, holds
        NaN or infinity, or the sample is longer than the source.
    SilentInputError
        The overlap at the peak has no variance (silence), so the
        coefficient is undefined.

    Notes
    -----
    Both signals are zero-padded to ``n = working_length(len(source))`` (or
    of ``len(source) + len(sample) - 1`` when ``linear``) and the circular
    cross-correlation ``irfft(rfft(source) * conj(rfft(sample_padded)))`` is
    computed with FFTW, with the GIL released; its largest absolute value is
    the peak. Peak indices past ``n - len(sample)`` are negative lags.
    """
    src = _as_signal(source, "source")
    smp = _as_signal(sample, "sample")
    if smp.shape[0] > src.shape[0]:
        raise ValueError(
            f"sample ({smp.shape[0]} samples) must not be longer than source ({src.shape[0]})"
        )
    if src.dtype != smp.dtype:
        src = src.astype(np.float64)
        smp = smp.astype(np.float64)
    correlator = Correlator(src, max_sample_length=smp.shape[0], linear=linear, precision=precision)
    return correlator(smp, lags=lags)
