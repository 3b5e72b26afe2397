"""audiosync: how far apart two recordings of the same music are."""

import logging

from audiosync._planner import fftw_version
from audiosync.batch import Pair, batch
from audiosync.capture import list_sources
from audiosync.control import (
    abort, default_job, get_debug, get_lag, pause, resume, run, set_debug, setup, status, sync,
)
from audiosync.errors import (
    AudiosyncError, CaptureError, ClusterError, FFmpegNotFoundError, InputError, InputNotFoundError,
    JobBusyError, ManifestError, MissingExtraError, SilentInputError, WindowError,
)
from audiosync.offline import sync_files
from audiosync.options import FileOptions, SyncOptions
from audiosync.lagmap import Break, MapPoint
from audiosync.results import Match, Progress, SyncResult
from audiosync.session import JobState, SyncJob
from audiosync.timeline import Edge, Placement, Timeline, align
from audiosync.xcorr import Correlation, Correlator, Peak, cross_correlation

__version__ = "0.1.0"

logging.getLogger("audiosync").addHandler(logging.NullHandler())

__all__ = [
    "AudiosyncError", "Break", "CaptureError", "ClusterError", "Correlation", "Correlator", "Edge", "FFmpegNotFoundError",
    "FileOptions", "InputError", "InputNotFoundError", "JobBusyError", "JobState", "ManifestError", "MapPoint", "Match",
    "MissingExtraError", "Pair", "Peak", "Placement", "Progress", "SilentInputError", "SyncJob", "SyncOptions",
    "SyncResult", "Timeline", "WindowError", "__version__", "abort", "align", "batch", "cross_correlation", "default_job", "fftw_version", "get_debug",
    "get_lag", "list_sources", "pause", "resume", "run", "set_debug", "setup", "status", "sync", "sync_files",
]
