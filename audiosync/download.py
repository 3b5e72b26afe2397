"""Turn what the caller gives (a media URL, a path, a YouTube page or search) into ffmpeg input arguments."""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

from audiosync.errors import InputError, InputNotFoundError, MissingExtraError

__all__ = ["accepts_ranges", "input_args", "resolve_with_ytdlp", "search_url"]

log = logging.getLogger("audiosync")

_YOUTUBE_HOSTS = ("youtube.com", "youtu.be", "youtube-nocookie.com")
# A server that stops sending makes ffmpeg give up after this long, so a
# stalled download ends in an error instead of a wait without end.
NETWORK_TIMEOUT_S = 15.0
_DIRECT_SCHEMES = ("http", "https")


def search_url(title: str) -> str:
    """The yt-dlp query that finds the first YouTube video for ``title``."""
    return f"ytsearch1:{title}"


def _is_youtube(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in _YOUTUBE_HOSTS)


def resolve_with_ytdlp(url: str) -> tuple[str, dict[str, str]]:
    """Resolve a page URL or ``ytsearch1:`` query to (direct audio URL, HTTP headers).

    Uses yt-dlp's Python API (the ``audiosync[youtube]`` extra), never its
    command line, so the URL is data, not a shell word.
    """
    try:
        import yt_dlp
    except ImportError:
        raise MissingExtraError(
            "resolving YouTube pages and searches needs yt-dlp: pip install 'audiosync[youtube]'"
        ) from None
    options = {
        "format": "bestaudio/best",
        "quiet": True,
        "no_warnings": True,
        "noplaylist": True,
        "logger": _YtdlpLogger(),
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=False)
    except yt_dlp.utils.DownloadError as exc:
        raise InputError(f"yt-dlp could not resolve {url!r}: {exc}") from None
    if info and info.get("entries") is not None:  # a search or playlist
        entries = [e for e in info["entries"] if e]
        if not entries:
            raise InputError(f"yt-dlp found nothing for {url!r}")
        info = entries[0]
    media = (info or {}).get("url")
    if not media:
        raise InputError(f"yt-dlp found no audio stream at {url!r}")
    headers = {str(k): str(v) for k, v in (info.get("http_headers") or {}).items()}
    log.debug("yt-dlp resolved %r to %s", url, media[:120])
    return media, headers


class _YtdlpLogger:
    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    info = debug

    def warning(self, msg: str) -> None:
        log.debug("yt-dlp warning: %s", msg)

    def error(self, msg: str) -> None:
        log.debug("yt-dlp error: %s", msg)


def _network_args() -> list[str]:
    return ["-rw_timeout", str(int(NETWORK_TIMEOUT_S * 1_000_000))]


def _header_args(headers: dict[str, str]) -> list[str]:
    lines = "".join(
        f"{k}: {v}\r\n" for k, v in headers.items() if "\n" not in k + v and "\r" not in k + v
    )
    return ["-headers", lines] if lines else []


def accepts_ranges(args: list[str], timeout: float) -> bool:
    """Whether the http(s) input of ``args`` (as :func:`input_args` made them) serves byte ranges.

    ffmpeg seeks in a stream by asking for a range; a server that ignores
    the request and sends the whole file again would make it read the
    start of the file as if it were the middle. One byte is asked for,
    with the same headers ffmpeg sends; any failure reads as no.
    """
    url = args[-1] if args[-2:-1] == ["-i"] else ""
    if urlsplit(url).scheme.lower() not in _DIRECT_SCHEMES:
        return False
    import http.client  # here: import audiosync stays light
    import urllib.request

    headers = {"Range": "bytes=0-0"}
    if "-headers" in args:
        for line in args[args.index("-headers") + 1].split("\r\n"):
            name, sep, value = line.partition(": ")
            if sep:
                headers.setdefault(name, value)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
            return r.status == 206 and r.headers.get("Content-Range", "").startswith("bytes 0-0/")
    except (OSError, ValueError, http.client.HTTPException):  # URLError and timeouts are OSError
        return False


def input_args(url: str | os.PathLike[str], use_ytdlp: bool | None = None) -> list[str]:
    """ffmpeg input arguments for ``url``.

    A local path (absolute in the result, so it can never read as an
    option), an http(s) media URL, a YouTube page URL (resolved with
    yt-dlp), or ``ytsearch1:QUERY``. ``use_ytdlp=True`` resolves any
    http(s) URL with yt-dlp (a page on one of the sites it knows), False
    never does, None does for YouTube and searches. Raises
    FileNotFoundError for a missing path and ValueError for anything else
    ffmpeg should not be handed.
    """
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"url must be a non-empty string or path, got {url!r}")
    if "\x00" in url:
        raise ValueError("url must not contain NUL characters")
    if url.startswith("ytsearch") and use_ytdlp is not False:
        media, headers = resolve_with_ytdlp(url)
        return [*_network_args(), *_header_args(headers), "-i", media]
    scheme = urlsplit(url).scheme.lower()
    if scheme in _DIRECT_SCHEMES:
        if use_ytdlp or (use_ytdlp is None and _is_youtube(url)):
            media, headers = resolve_with_ytdlp(url)
            return [*_network_args(), *_header_args(headers), "-i", media]
        return [*_network_args(), "-i", url]
    if scheme == "file":
        url = urlsplit(url).path
    elif len(scheme) > 1 and not os.path.exists(url):  # one letter is a Windows drive
        # (An existing file whose name only looks like a scheme, "Song: Live.ogg", is a file.)
        raise ValueError(f"unsupported URL scheme {scheme!r} in {url!r}: give an http(s) URL or a file path")
    path = os.path.abspath(url)
    if not os.path.exists(path):
        raise InputNotFoundError(f"no such file: {url!r}")
    if os.path.isdir(path):
        raise InputNotFoundError(f"{url!r} is a directory, not an audio file")
    return ["-i", "file:" + path]
