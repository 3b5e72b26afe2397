"""Types of the compiled FFTW kernel (audiosync/_xcorr.pyx)."""

from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt

_Samples = npt.NDArray[np.float64] | npt.NDArray[np.float32] | npt.NDArray[np.int16]

OK: Literal[0]
SOURCE_NOT_FINITE: Literal[1]
SAMPLE_NOT_FINITE: Literal[2]
SILENT: Literal[3]
NEED_DOUBLE: Literal[4]
NO_MEMORY: Literal[5]
EFFORTS: dict[str, int]
fftw_version: str

class Found(TypedDict):
    lag: int
    coefficient: float
    fraction: float
    value: float
    second: float
    rms: float

class Spectrum:
    n: int
    m: int
    single: bool
    sumsq: float
    fade: int
    source: Any

def set_effort(name: str, time_limit: float | None = ...) -> None: ...
def get_effort() -> tuple[str, float | None]: ...
def cached_sizes() -> list[int]: ...
def clear_plans() -> None: ...
def free_buffers() -> int: ...
def take_estimated() -> list[tuple[int, bool]]: ...
def drop_estimated_plans() -> None: ...
def planning_stats() -> dict[str, float]: ...
def plan(n: int, single: bool) -> float: ...
def import_wisdom(path: bytes, single: bool) -> bool: ...
def export_wisdom(path: bytes, single: bool) -> bool: ...
def forget_wisdom() -> None: ...
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
) -> tuple[int, Found]: ...
