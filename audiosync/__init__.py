"""audiosync: how far apart two recordings of the same music are."""

import logging

from audiosync._xcorr import fftw_version
from audiosync.capture import list_sources
from audiosync.control import (
    abort, default_job, get_debug, get_lag, pause, resume, run, set_debug, setup, status, sync,
)
from audiosync.errors import (
    AudiosyncError, CaptureError, FFmpegNotFoundError, InputError, JobBusyError,
    MissingExtraError, SilentInputError,
)
from audiosync.offline import sync_files
from audiosync.session import Progress, SyncJob, SyncResult
from audiosync.xcorr import Correlation, Correlator, cross_correlation

__version__ = "0.1.0"

logging.getLogger("audiosync").addHandler(logging.NullHandler())

from audiosync import wisdom as _wisdom  # noqa: E402

_wisdom.load()

__all__ = [
    "AudiosyncError", "CaptureError", "Correlation", "Correlator", "FFmpegNotFoundError", "InputError",
    "JobBusyError", "MissingExtraError", "Progress", "SilentInputError", "SyncJob", "SyncResult",
    "__version__", "abort", "cross_correlation", "default_job", "fftw_version", "get_debug",
    "get_lag", "list_sources", "pause", "resume", "run", "set_debug", "setup", "status", "sync", "sync_files",
]
