"""Types of the compiled FFTW kernel (audiosync/_xcorr.pyx)."""

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from audiosync._planner import Plans

_Samples = npt.NDArray[np.float64] | npt.NDArray[np.float32] | npt.NDArray[np.int16]
# lag, fraction, coefficient, value, second, second_lag, rms: the fields of audiosync.xcorr.Peak
_Found = tuple[int, float, float, float, float, int, float]

OK: Literal[0]
SOURCE_NOT_FINITE: Literal[1]
SAMPLE_NOT_FINITE: Literal[2]
SILENT: Literal[3]
NEED_DOUBLE: Literal[4]
NO_MEMORY: Literal[5]
NO_LAGS: Literal[6]
NOT_FINITE: Literal[7]

class Spectrum:
    plans: Plans
    n: int
    m: int
    single: bool
    sumsq: float
    fade: int
    source: Any

def free_buffers() -> int: ...
def spectrum(source: _Samples, n: int, single: bool, owner: Any, fade: int = ...) -> tuple[int, Spectrum | None]: ...
def correlate(
    spec: Spectrum,
    source: _Samples,
    sample: _Samples,
    lo: int,
    hi: int,
    refine: bool,
    weights: npt.NDArray[np.float32] | None = ...,
    beta: float = ...,
    guard: int = ...,
    given: Spectrum | None = ...,
) -> tuple[int, _Found | None]: ...
