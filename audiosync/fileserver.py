"""A folder served over HTTP on 127.0.0.1 with byte ranges, as a media host serves a song.

The demo, the tests and the benches hand ffmpeg a URL on it. Byte ranges
matter: ffmpeg seeks in a stream with them (a download decoded as two
halves), and YouTube serves them. Python's own handler ignores ``Range``
and sends the whole file, which a seeking ffmpeg reads as garbage.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["serving"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CHUNK = 1 << 16


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Files with one ``Range: bytes=A-B`` honoured (206), quietly."""

    _left: int | None = None

    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        self._left = None
        path = self.translate_path(self.path)
        match = _RANGE.fullmatch(self.headers.get("Range", "").strip())
        if match is None or not (match[1] or match[2]) or not os.path.isfile(path):
            return super().send_head()
        if match[1] and match[2] and int(match[2]) < int(match[1]):
            return super().send_head()  # not a valid range: ignored, the whole file (RFC 9110)
        try:
            f = open(path, "rb")
        except OSError:
            return super().send_head()  # the handler's own answer (404)
        size = os.fstat(f.fileno()).st_size
        if match[1]:
            start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
        else:  # "bytes=-N": the last N bytes
            start, end = max(0, size - int(match[2])), size - 1
        if start > end:
            f.close()
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._left = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:
        if self._left is None:
            return super().copyfile(source, outputfile)
        while self._left > 0:
            chunk = source.read(min(_CHUNK, self._left))
            if not chunk:
                break
            outputfile.write(chunk)
            self._left -= len(chunk)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that stops reading mid-file (ffmpeg seeking, or stopped) is no fault


@contextmanager
def serving(folder: str | os.PathLike[str]) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 while the block runs; yields the base URL (no trailing slash)."""
    server = _Server(("127.0.0.1", 0), functools.partial(_RangeHandler, directory=os.fspath(folder)))
    thread = threading.Thread(target=server.serve_forever, name="audiosync-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
