"""Exceptions raised by audiosync."""

__all__ = ["AudiosyncError", "SilentInputError"]


class AudiosyncError(Exception):
    """Base class of every error audiosync raises on purpose."""


class SilentInputError(AudiosyncError, ValueError):
    """The overlap of the two signals has no variance, so Pearson is undefined."""
