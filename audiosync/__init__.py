"""audiosync: how far apart two recordings of the same music are."""

import logging

from audiosync._planner import fftw_version
from audiosync.batch import Pair, batch
from audiosync.capture import list_sources
from audiosync.control import (
    abort, default_job, default_listener, get_debug, get_lag, listen, pause, resume, run, set_debug, setup,
    status, stop_listening, sync,
)
from audiosync.errors import (
    AudiosyncError, CaptureError, ClusterError, FFmpegNotFoundError, InputError, InputNotFoundError,
    JobBusyError, ManifestError, MissingExtraError, SilentInputError, WindowError,
)
from audiosync.offline import sync_files
from audiosync.options import FileOptions, SyncOptions
from audiosync.lagmap import Break, MapPoint
from audiosync.listener import Listener, ListenerStatus
from audiosync.results import Match, Progress, SyncResult
from audiosync.session import JobState, SyncJob
from audiosync.timeline import Edge, Placement, Timeline, align
from audiosync.tracker import Tracker
from audiosync.xcorr import Correlation, Correlator, Peak, cross_correlation

__version__ = "0.1.0"

logging.getLogger("audiosync").addHandler(logging.NullHandler())

__all__ = [
    "AudiosyncError", "Break", "CaptureError", "ClusterError", "Correlation", "Correlator", "Edge", "FFmpegNotFoundError",
    "FileOptions", "InputError", "InputNotFoundError", "JobBusyError", "JobState", "Listener", "ListenerStatus", "ManifestError", "MapPoint", "Match",
    "MissingExtraError", "Pair", "Peak", "Placement", "Progress", "SilentInputError", "SyncJob", "SyncOptions",
    "SyncResult", "Timeline", "Tracker", "WindowError", "__version__", "abort", "align", "batch", "cross_correlation",
    "default_job", "default_listener", "fftw_version", "get_debug", "get_lag", "list_sources", "listen", "pause", "resume", "run", "set_debug", "setup", "status", "stop_listening", "sync", "sync_files",
]
