"""audiosync: how far apart two recordings of the same music are."""

from audiosync._xcorr import fftw_version
from audiosync.errors import AudiosyncError, SilentInputError
from audiosync.xcorr import Correlation, cross_correlation

__version__ = "0.1.0"

__all__ = [
    "AudiosyncError",
    "Correlation",
    "SilentInputError",
    "__version__",
    "cross_correlation",
    "fftw_version",
]
