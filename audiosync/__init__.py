"""audiosync: how far apart two recordings of the same music are.

The public names are loaded on first use (PEP 562): ``import audiosync`` and
the ``audiosync`` command's start-up then load only the modules they use
(the command starts its ffmpeg before numpy is imported).
"""

from __future__ import annotations

import importlib as _importlib
import importlib.util as _importlib_util
import logging as _logging
import sys as _sys
import types as _types
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_logging.getLogger("audiosync").addHandler(_logging.NullHandler())

# Each public name and the module that defines it.
_HOMES = {
    "batch": ("Pair", "batch"),
    "capture": ("list_sources",),
    "control": ("abort", "default_job", "default_listener", "get_debug", "get_lag", "listen", "pause", "resume",
                "run", "set_debug", "setup", "status", "stop_listening", "sync"),
    "errors": ("AudiosyncError", "CaptureError", "ClusterError", "FFmpegNotFoundError", "InputError",
               "InputNotFoundError", "JobBusyError", "ManifestError", "MissingExtraError", "SilentInputError",
               "WindowError"),
    "lagmap": ("Break", "MapPoint"),
    "listener": ("Listener", "ListenerStatus"),
    "offline": ("sync_files",),
    "options": ("FileOptions", "SyncOptions"),
    "_planner": ("fftw_version",),
    "results": ("Match", "Progress", "SyncResult"),
    "session": ("JobState", "SyncJob"),
    "timeline": ("Edge", "Placement", "Timeline", "align"),
    "tracker": ("Tracker",),
    "xcorr": ("Correlation", "Correlator", "Peak", "cross_correlation"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AudiosyncError", "Break", "CaptureError", "ClusterError", "Correlation", "Correlator", "Edge", "FFmpegNotFoundError",
    "FileOptions", "InputError", "InputNotFoundError", "JobBusyError", "JobState", "Listener", "ListenerStatus", "ManifestError", "MapPoint", "Match",
    "MissingExtraError", "Pair", "Peak", "Placement", "Progress", "SilentInputError", "SyncJob", "SyncOptions",
    "SyncResult", "Timeline", "Tracker", "WindowError", "__version__", "abort", "align", "batch", "cross_correlation",
    "default_job", "default_listener", "fftw_version", "get_debug", "get_lag", "list_sources", "listen", "pause", "resume", "run", "set_debug", "setup", "status", "stop_listening", "sync", "sync_files",
]


def __getattr__(name: str):
    module = _HOME_OF.get(name)
    if module is not None:
        value = getattr(_importlib.import_module(f"audiosync.{module}"), name)
        globals()[name] = value  # found once; later reads do not come here
        return value
    # A submodule read as an attribute (audiosync.xcorr.working_length), as when every module
    # was imported with the package.
    if not name.startswith("__") and _importlib_util.find_spec(f"audiosync.{name}") is not None:
        return _importlib.import_module(f"audiosync.{name}")
    raise AttributeError(f"module 'audiosync' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})


class _Package(_types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        # Importing a submodule makes it an attribute of the package: where a public function
        # has its module's name (batch), the function stays the attribute.
        if isinstance(value, _types.ModuleType) and _HOME_OF.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # what type checkers and editors read
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
    from audiosync.lagmap import Break, MapPoint
    from audiosync.listener import Listener, ListenerStatus
    from audiosync.offline import sync_files
    from audiosync.options import FileOptions, SyncOptions
    from audiosync.results import Match, Progress, SyncResult
    from audiosync.session import JobState, SyncJob
    from audiosync.timeline import Edge, Placement, Timeline, align
    from audiosync.tracker import Tracker
    from audiosync.xcorr import Correlation, Correlator, Peak, cross_correlation
