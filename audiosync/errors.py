"""Exceptions raised by audiosync; all derive from AudiosyncError."""

__all__ = [
    "AudiosyncError",
    "CaptureError",
    "ClusterError",
    "FFmpegNotFoundError",
    "InputError",
    "InputNotFoundError",
    "JobBusyError",
    "ManifestError",
    "MissingExtraError",
    "SilentInputError",
    "WindowError",
]


class AudiosyncError(Exception):
    """Base class of every error audiosync raises on purpose."""


class SilentInputError(AudiosyncError, ValueError):
    """The overlap of the two signals has no variance, so Pearson is undefined."""


class FFmpegNotFoundError(AudiosyncError, FileNotFoundError):
    """The ffmpeg program is not installed or not on PATH."""


class InputError(AudiosyncError):
    """A URL or file could not be opened or decoded (the message ends with ffmpeg's words)."""


class InputNotFoundError(InputError, FileNotFoundError):
    """A local input file does not exist (or is a directory)."""


class WindowError(InputError, ValueError):
    """A search window (``reference_window``, ``other_window``) holds no audio of its input."""


class CaptureError(AudiosyncError):
    """The capture source does not exist, or no sound server answers."""


class MissingExtraError(AudiosyncError, ImportError):
    """An optional feature needs a package extra that is not installed."""


class JobBusyError(AudiosyncError, RuntimeError):
    """A job was started on a SyncJob that is already running one."""


class ManifestError(AudiosyncError, ValueError):
    """A batch manifest cannot be read: not UTF-8 CSV, empty, or without a required column."""


class ClusterError(AudiosyncError, ConnectionError):
    """The Dask scheduler of a batch cannot be reached."""
