"""Hostile strings (issue 8): shell metacharacters, option-like and huge strings as URLs,
paths, titles and options, through the Python API, the command and run()."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

import audiosync
from audiosync import (
    CaptureError, InputError,
)
from audiosync.cli import main as cli_main

from helpers import RATE, needs_ffmpeg, write_wav

# --- strings ---------------------------------------------------------------------------


def nasty_strings(canary) -> list[str]:
    """Titles, URLs and paths that a shell, an option parser or a naive URL builder would misread."""
    c = str(canary)
    return [
        "it's a \"quoted\" 'song'",
        f"song; touch {c}",
        f"$(touch {c})",
        "$(touch CANARY)",
        f"`touch {c}`",
        "`touch CANARY`",
        f"song\ntouch {c}\n",
        f"| touch {c}",
        f"&& touch {c} &&",
        "-version",
        "-i",
        "-f lavfi -i sine",
        "-y",
        "--help",
        "x" * 5000,
        ("a" * 300 + "/") * 3,
        "ünïcödé ♪ 🎵 \t tab",
        "%s%n%x%d",
        "..",
        "/",
    ]


# What the string entry points may raise for a string that is no audio they can read.
NAMED = (FileNotFoundError, IsADirectoryError, ValueError, InputError, CaptureError)


@pytest.fixture
def hostile_env(tmp_path, monkeypatch):
    """Run in tmp_path (so relative `touch CANARY` would land there), with no sound server
    and every non-local HTTP(S) request sent to a closed port: nothing reaches the internet."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/no-sound-server")
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    canary = tmp_path / "CANARY"
    yield canary
    assert not canary.exists(), "a shell ran something"
    assert not (tmp_path / "CANARY").exists()


@pytest.fixture(scope="module")
def capture_file(media, tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    return write_wav(d / "capture.wav", media["song"][3 * RATE : 7 * RATE])


def _expect_named(fn, *args, **kwargs) -> BaseException:
    with pytest.raises(NAMED) as info:
        fn(*args, **kwargs)
    assert "ffmpeg version" not in str(info.value)  # "-version" was never an option
    return info.value


@needs_ffmpeg
@pytest.mark.timeout(120)
def test_hostile_urls_and_paths_through_the_python_api(hostile_env, capture_file, http_base):
    canary = hostile_env
    capture = ["-i", str(capture_file)]
    for s in nasty_strings(canary):
        # As a local path: never a shell word, never an ffmpeg option.
        _expect_named(audiosync.sync, s, capture=capture, intervals=(1,))
        _expect_named(audiosync.get_lag, s, capture=capture, intervals=(1,))
        _expect_named(audiosync.sync_files, s, str(capture_file))
        _expect_named(audiosync.sync_files, str(capture_file), s)
        # As part of an HTTP URL: one argument of ffmpeg, and the server says 404 (or lists a folder).
        url = f"{http_base}/{s}"
        if any(c in s for c in "$`;\n") or s.startswith("-") or len(s) > 1000:  # sync on some (it costs 0.4 s)
            err = _expect_named(audiosync.sync, url, capture=capture, intervals=(1,))
            assert isinstance(err, InputError), repr(err)
        err = _expect_named(audiosync.sync_files, url, str(capture_file))
        assert isinstance(err, InputError), repr(err)
        assert not canary.exists(), s
    assert audiosync.status() == "idle"


@needs_ffmpeg
@pytest.mark.timeout(60)
def test_option_like_file_names_are_read_as_files(hostile_env, capture_file, media, tmp_path):
    """Files really named -i, -version and '-f lavfi -i sine' are opened as files."""
    (tmp_path / "-i").write_bytes(media["wav"].read_bytes())
    (tmp_path / "-version").write_text("not audio\n")
    (tmp_path / "-f lavfi -i sine").write_bytes(media["wav"].read_bytes())
    result = audiosync.sync("-i", capture=["-i", str(capture_file)], intervals=(1, 3))
    assert result.confident and result.lag_ms == pytest.approx(3000.0, abs=1.0)
    err = _expect_named(audiosync.sync, "-version", capture=["-i", str(capture_file)])
    assert isinstance(err, InputError) and "cannot open or decode" in str(err)
    result = audiosync.sync_files("-f lavfi -i sine", str(capture_file))
    assert result.confident and result.lag_ms == pytest.approx(3000.0, abs=1.0)
    assert audiosync.get_lag("-i", capture=["-i", str(capture_file)], intervals=(1, 3)) == 3000


@pytest.mark.timeout(30)
def test_bad_url_types_and_nul(hostile_env, tmp_path):
    for bad in ("", "   ", "a\x00b", None, 42, b"/etc/passwd"):
        with pytest.raises(ValueError):
            audiosync.sync(bad, capture=["-i", "x"])  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            audiosync.sync_files(bad, "x")  # type: ignore[arg-type]
    for bad in ("javascript:alert(1)", "ftp://x/y", "gopher://x", "data:audio/wav;base64,AAAA", "concat:a|b",
                "pipe:0", "subfile:,,start,0,end,10,,:/etc/passwd"):
        with pytest.raises(ValueError, match="scheme"):
            audiosync.sync(bad, capture=["-i", "x"])
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    for bad in ("-f lavfi", "-i", "", "-"):
        with pytest.raises(ValueError, match="capture"):
            audiosync.sync(str(song), capture=bad)


@needs_ffmpeg
@pytest.mark.timeout(30)
def test_crlf_in_a_url_does_not_inject_headers(hostile_env, capture_file):
    """ffmpeg percent-encodes control characters in the request line: no header can be smuggled."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    requests: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    requests.append(data)
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, name="test-crlf-server", daemon=True)
    thread.start()
    try:
        with pytest.raises(InputError, match="404"):
            audiosync.sync(f"http://127.0.0.1:{port}/a\r\nX-Injected: yes\r\n\r\nGET /b HTTP/1.1",
                           capture=["-i", str(capture_file)])
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert not thread.is_alive()
    assert requests
    for raw in requests:
        lines = raw.decode("latin-1").split("\r\n")
        assert lines[0].startswith("GET /a%0D%0AX-Injected") and lines[0].endswith(" HTTP/1.1"), lines[0]
        assert not any(line.lower().startswith("x-injected") for line in lines), lines
        assert sum(line.startswith("GET ") for line in lines) == 1


# --- the command ------------------------------------------------------------------------


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = cli_main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


@needs_ffmpeg
@pytest.mark.timeout(120)
def test_hostile_arguments_through_the_command(hostile_env, capture_file, http_base, capsys, monkeypatch):
    canary = hostile_env
    monkeypatch.setattr("audiosync.download.search_url", lambda t: f"{http_base}/{t}")
    for s in nasty_strings(canary):
        runs = [
            ("files", "--", s, str(capture_file)),
            ("files", "--", str(capture_file), s),
            ("files", "--json", "--", f"{http_base}/{s}", str(capture_file)),
            ("live", "--capture", str(capture_file), "--timeout", "5", "--", s),
            ("live", "--capture", str(capture_file), "--timeout", "5", "--json", f"--title={s}"),
            ("live", "--timeout", "5", f"--capture={s}", "--", str(capture_file)),
        ]
        for argv in runs:
            status, out, err = _cli(capsys, *argv)
            err = err.removeprefix("recording the desktop ...\n")
            assert status in (2, 3), (argv, status, out, err)  # bad usage, or an input that fails
            assert out == "", (argv, out)  # no half answer, and never ffmpeg's version banner
            if err.startswith("usage:"):  # argparse refused it (only for option-like values)
                assert s.startswith("-") or f"={s}" in " ".join(argv), (argv, err)
            else:
                assert err.startswith("audiosync: error: ") and err.count("\n") == 1, (argv, err)
            assert "ffmpeg version" not in err and "Traceback" not in err
        # Without "--", an option-like value is a usage error, or (with a space in it, which
        # argparse never reads as an option) a file name; never an option passed on.
        if s == "--help":  # the command's own option: help, and nothing else
            status, out, err = _cli(capsys, "files", s, str(capture_file))
            assert status == 0 and out.startswith("usage: audiosync files") and err == ""
        elif s.startswith("-"):
            status, out, err = _cli(capsys, "files", s, str(capture_file))
            assert status in (2, 3) and out == ""
            assert "usage:" in err or err == f"audiosync: error: no such file: {s!r}\n", err
        assert not canary.exists(), s


@needs_ffmpeg
@pytest.mark.timeout(60)
def test_hostile_arguments_through_the_real_entry_point(hostile_env, capture_file, tmp_path):
    env = dict(os.environ)
    for argv in (["files", "--", "$(touch CANARY)", "`touch CANARY`"],
                 ["files", "--", f"x; touch {hostile_env}", str(capture_file)],
                 ["live", "--capture", str(capture_file), "--", "-f lavfi -i sine=f=440"],
                 ["live", "--capture", str(capture_file), "--", "-version"]):
        r = subprocess.run([sys.executable, "-m", "audiosync", *argv], capture_output=True, text=True,
                           timeout=30, cwd=tmp_path, env=env)
        assert r.returncode in (2, 3), (argv, r.stdout, r.stderr)
        assert r.stdout == "" and "ffmpeg version" not in r.stderr and "Traceback" not in r.stderr
        assert r.stderr.splitlines()[-1].startswith("audiosync: error: "), r.stderr
    assert not (tmp_path / "CANARY").exists()


@needs_ffmpeg
@pytest.mark.timeout(120)
def test_hostile_titles_through_run(hostile_env, http_base, monkeypatch):
    """run(title) with the search sent to the local server: nothing runs, (0, False) every time."""
    monkeypatch.setattr("audiosync.control.search_url", lambda t: f"{http_base}/{t}")
    for s in nasty_strings(hostile_env):
        assert audiosync.run(s) == (0, False), s
    assert audiosync.status() == "idle"


@pytest.mark.timeout(30)
def test_hostile_titles_reach_ytdlp_as_one_string(hostile_env, monkeypatch):
    """The real search URL: the title goes to yt-dlp's API whole, as data (yt-dlp replaced here)."""
    seen = []

    def fake_resolve(url):
        seen.append(url)
        raise InputError("no network in this test")

    monkeypatch.setattr("audiosync.download.resolve_with_ytdlp", fake_resolve)
    titles = nasty_strings(hostile_env)
    for s in titles:
        assert audiosync.run(s) == (0, False)
    assert seen == [f"ytsearch1:{s.strip()}" for s in titles if s.strip()]


# --- colon in a relative file name ------------------------------------------------------


# (Issue 8 found both taken for URL schemes or ffmpeg protocols; fixed in fab7ed5.)


@needs_ffmpeg
@pytest.mark.timeout(60)
def test_file_name_with_a_colon_is_a_file(hostile_env, media, capture_file, tmp_path):
    (tmp_path / "Song: Live.wav").write_bytes(media["wav"].read_bytes())
    result = audiosync.sync_files("Song: Live.wav", str(capture_file))
    assert result.confident and result.lag_ms == pytest.approx(3000.0, abs=1.0)


@needs_ffmpeg
@pytest.mark.timeout(60)
def test_command_capture_file_with_a_colon(hostile_env, media, capture_file, tmp_path, capsys):
    (tmp_path / "take:1.wav").write_bytes(capture_file.read_bytes())
    status, out, err = _cli(capsys, "live", str(media["wav"]), "--capture", "take:1.wav", "--json")
    assert status == 0, err
    assert '"lag_ms": 3000.0' in out


@pytest.mark.timeout(30)
def test_bad_method_names(hostile_env, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    for bad in ("", "PHAT ", "seed; rm -rf /", None, 1):
        with pytest.raises(ValueError, match="method"):
            audiosync.sync(str(song), capture=["-i", str(song)], method=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="method"):
            audiosync.sync_files(str(song), str(song), method=bad)  # type: ignore[arg-type]
