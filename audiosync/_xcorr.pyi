from typing import Literal

import numpy as np
import numpy.typing as npt

OK: Literal[0]
SOURCE_NOT_FINITE: Literal[1]
SAMPLE_NOT_FINITE: Literal[2]
SILENT: Literal[3]
fftw_version: str

def cached_sizes() -> list[int]: ...
def clear_plans() -> None: ...
def correlate(
    source: npt.NDArray[np.float64] | npt.NDArray[np.float32] | npt.NDArray[np.int16],
    sample: npt.NDArray[np.float64] | npt.NDArray[np.float32] | npt.NDArray[np.int16],
    n: int,
) -> tuple[int, int, float]: ...
