"""A long file decoded as two halves at once: the splice gives a whole decode's samples, and where
the halves differ (AAC after a seek, silence at the seam) the first half goes on alone."""

from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest

from audiosync import halves, offline, sync
from audiosync.fileserver import serving
from audiosync.halves import Halves, split_point, splittable
from audiosync.producer import Producer, complaints
from audiosync.synth import make_song

from helpers import RATE, decode, ffmpeg, needs_ffmpeg, write_wav

pytestmark = needs_ffmpeg
SR = 16000
LONG_S = 150.0  # over SPLIT_MIN_S


@pytest.fixture(scope="module")
def long_files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("halves")
    song = make_song(LONG_S, RATE, seed=7)
    wav = write_wav(d / "long.wav", song)
    quiet = song.copy()
    quiet[int(60 * RATE):int(90 * RATE)] = 0.0  # digital silence across the middle
    files = {"wav": wav, "quiet_wav": write_wav(d / "quiet.wav", quiet)}
    for name, src, codec in (("webm", wav, ["-c:a", "libopus", "-b:a", "96k"]),
                             ("mp3", wav, ["-c:a", "libmp3lame", "-b:a", "160k"]),
                             ("m4a", wav, ["-c:a", "aac", "-b:a", "128k"]),
                             ("quiet_webm", files["quiet_wav"], ["-c:a", "libopus", "-b:a", "96k"])):
        ext = name.split("_")[-1]
        files[name] = d / f"{name}.{ext}"
        ffmpeg("-i", str(src), *codec, str(files[name]))
    ffmpeg("-i", str(wav), "-t", "30", "-c:a", "libopus", str(d / "short.webm"))
    files["short"] = d / "short.webm"
    return files


@pytest.fixture
def made(monkeypatch) -> list:
    """Every Halves that decode_inputs makes, in order."""
    made = []

    class Recorded(Halves):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(halves, "Halves", Recorded)  # what halves.split makes
    return made


def _decode_halves(path, at_s: float) -> Halves:
    """One file through a Halves split at ``at_s``, run to the end."""
    cond = threading.Condition()
    url = f"file:{path}"
    first = Producer("first", ["-i", url], SR, int(LONG_S * 2 * SR), cond, buffered=True)
    h = Halves("input", ["-i", url], at_s, first, cond)
    try:
        assert offline.wait_decoded([h], cond)
    finally:
        h.stop()
    return h


@pytest.mark.parametrize("kind", ["webm", "mp3"])
def test_split_decode_gives_the_whole_decode(long_files, made, kind):
    path = long_files[kind]
    (split,), finished = offline.decode_inputs((path,), SR)
    assert finished
    assert len(made) == 1 and made[0].offset is not None, "the file was not decoded as two halves"
    # The seek lands where the container's timestamps say (Opus in WebM: 128 samples early);
    # the splice puts the second half where its audio is.
    assert abs(made[0].offset - made[0].at) < int(0.25 * SR)
    whole = decode(path, SR)
    assert len(split) == len(whole)
    np.testing.assert_allclose(split, whole, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(split, offline.decode_inputs((path,), SR, halves=False)[0][0])
    # Reading at most max_seconds: the halves split what is read, and stop where one ffmpeg would.
    (part,), _ = offline.decode_inputs((path,), SR, max_seconds=130.0)
    assert len(made) == 2 and made[1].offset is not None
    np.testing.assert_array_equal(part, split[:int(130.0 * SR)])


def test_halves_that_differ_are_not_spliced(long_files):
    # AAC's decoder does not give the same samples after a seek: the first half reads on.
    h = _decode_halves(long_files["m4a"], 75.0)
    assert h.offset is None and h.second is None
    np.testing.assert_array_equal(h.buffer[:h.count], decode(long_files["m4a"], SR))


def test_silence_at_the_seam_proves_nothing(long_files):
    h = _decode_halves(long_files["quiet_webm"], 75.0)
    assert h.offset is None
    np.testing.assert_array_equal(h.buffer[:h.count], decode(long_files["quiet_webm"], SR))


def test_a_seek_past_the_end_leaves_the_first_half_alone(long_files):
    h = _decode_halves(long_files["webm"], LONG_S + 20.0)
    assert h.offset is None
    np.testing.assert_array_equal(h.buffer[:h.count], decode(long_files["webm"], SR))


def _splittable(args: list[str], capacity: int, header: bool = True) -> float | None:
    """splittable() as decode_inputs asks it: of the ffmpeg already decoding ``args``."""
    first = Producer("first", args, SR, capacity, threading.Condition(), buffered=True, header=header)
    try:
        return splittable(args, first)
    finally:
        first.stop()


def test_which_inputs_are_split(long_files):
    cap = int(3600 * SR)
    span = _splittable(["-i", f"file:{long_files['webm']}"], cap)
    assert span is not None and abs(span - LONG_S) < 0.02
    assert _splittable(["-i", f"file:{long_files['mp3']}"], cap) is not None
    assert _splittable(["-i", f"file:{long_files['short']}"], cap) is None          # too short to gain
    assert _splittable(["-i", f"file:{long_files['wav']}"], cap) is None            # decodes fast anyway
    assert _splittable(["-i", f"file:{long_files['m4a']}"], cap) is None            # AAC: not equal after a seek
    assert _splittable(["-i", f"file:{long_files['webm']}"], int(130 * SR)) == 130.0  # max_seconds: what is read
    assert _splittable(["-i", f"file:{long_files['webm']}"], int(100 * SR)) is None  # too little of it read
    assert _splittable(["-i", "http://127.0.0.1:9/long.webm"], cap) is None  # no server: whole
    # An ffmpeg that was not asked to describe its input tells nothing: whole.
    assert _splittable(["-i", f"file:{long_files['webm']}"], cap, header=False) is None


def test_complaints_are_read_by_their_level():
    text = "\n".join([
        "[info]   Duration: 00:03:16.03, start: -0.007000, bitrate: 129 kb/s",
        "[Parsed_aresample_0 @ 0x55] [SWR @ 0x56] [error] Rematrix is needed",
        "  and it failed",                                   # continues the error
        "[aist#0:0/mp3 @ 0x57] [dec:mp3float @ 0x58] [warning] overread",
        "[matroska,webm @ 0x59] [error] File ended prematurely",
        "[info] size=   12251kB time=00:03:16.03",
    ])
    assert complaints(text) == ["[Parsed_aresample_0 @ 0x55] [SWR @ 0x56] Rematrix is needed", "and it failed",
                                "[matroska,webm @ 0x59] File ended prematurely"]
    # No level at all (an ffmpeg too old for the option): nothing to tell apart, all kept.
    assert complaints('Invalid loglevel "level+error"\n') == ['Invalid loglevel "level+error"']


def test_the_header_and_the_complaints_are_told_apart(long_files, tmp_path):
    cond = threading.Condition()
    first = Producer("first", ["-i", f"file:{long_files['mp3']}"], SR, int(10 * SR), cond, header=True)
    try:
        duration, codec = first.header(5.0)
    finally:
        first.stop()
    assert codec == "mp3" and abs(duration - LONG_S) < 0.1
    # A file cut short and damaged: ffmpeg's errors are the message, its descriptions are not.
    data = long_files["webm"].read_bytes()[:200_000]
    bad = tmp_path / "bad.webm"
    bad.write_bytes(data[:100_000] + bytes(5000) + data[105_000:])
    for header in (True, False):
        p = Producer("bad", ["-i", f"file:{bad}"], SR, int(200 * SR), cond, header=header)
        try:
            with cond:
                assert cond.wait_for(lambda: p.done, 30)
            tail = p.stderr_tail()
        finally:
            p.stop()
        assert "matroska" in tail and "[error]" not in tail, tail
        assert "Duration" not in tail and "Stream" not in tail and "[info]" not in tail, tail


def test_the_split_leaves_both_ffmpeg_as_much_to_decode():
    # The first ffmpeg decoded 20 s while the question was asked: the second starts 10 s past the middle.
    assert split_point(150.0, 0.0) == 75.0
    assert split_point(150.0, 20.0) == 85.0
    assert split_point(100.0, 1.23456) == 50.6  # on a 40 ms grid: whole samples at 11.025 kHz too
    for rate in (8000, 11025, 16000, 22050, 44100, 48000):
        samples = split_point(301.7, 3.3) * rate
        assert abs(samples - round(samples)) < 1e-6, rate


def test_sync_files_on_a_split_reference(long_files, tmp_path, made):
    # A capture from 100 s (in the second half): the lag is where it is in a whole decode.
    song = decode(long_files["wav"], SR)
    clip = write_wav(tmp_path / "clip.wav", song[int(100.25 * SR):int(115.25 * SR)], SR)
    from audiosync import sync_files
    r = sync_files(long_files["webm"], clip)
    assert r.confident and len(made) == 1 and made[0].offset is not None
    whole = sync_files(long_files["webm"], clip, split_decode=False)  # one ffmpeg per input
    assert len(made) == 1
    assert r.lag_ms == whole.lag_ms and r.confidence == whole.confidence
    assert abs(r.lag_ms - 100250.0) < 1.0


def test_a_stream_is_split_only_where_its_server_serves_ranges(long_files):
    folder = long_files["webm"].parent
    with serving(folder) as base:  # byte ranges, as YouTube serves them
        url = f"{base}/webm.webm"
        span = _splittable(["-rw_timeout", "15000000", "-i", url], int(3600 * SR))
        assert span is not None and abs(span - LONG_S) < 1.0
        assert _splittable(["-i", f"{base}/short.webm"], int(3600 * SR)) is None
    # Python's own handler sends the whole file whatever range is asked: a seek would read garbage.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webm.webm"
        assert _splittable(["-i", url], int(3600 * SR)) is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_live_sync_decodes_a_long_download_as_halves(long_files, tmp_path, made):
    # The live answer waits for the whole song: a long download over HTTP is decoded from
    # both ends, and the song the estimate sees is a whole decode's, sample for sample.
    song = decode(long_files["wav"], SR)
    clip = write_wav(tmp_path / "clip.wav", song[int(110.5 * SR):int(120.5 * SR)], SR)
    with serving(long_files["webm"].parent) as base:
        r = sync(f"{base}/webm.webm", capture=["-i", str(clip)], intervals=(5, 10), keep_audio=True)
    assert len(made) == 1 and made[0].offset is not None, "the download was not decoded as two halves"
    assert r.confident and abs(r.lag_ms - 110500.0) < 1.0
    whole = decode(long_files["webm"], SR)
    assert len(r.audio[0]) == len(whole)
    np.testing.assert_array_equal(r.audio[0], whole)


def test_the_file_server_serves_byte_ranges(tmp_path):
    import urllib.error
    import urllib.request

    (tmp_path / "f.bin").write_bytes(bytes(range(100)))

    def get(rng=None):
        req = urllib.request.Request(f"{base}/f.bin", headers={"Range": rng} if rng else {})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read(), r.headers.get("Content-Range")
        except urllib.error.HTTPError as exc:
            return exc.code, b"", exc.headers.get("Content-Range")

    with serving(tmp_path) as base:
        assert get() == (200, bytes(range(100)), None)
        assert get("bytes=2-5") == (206, bytes([2, 3, 4, 5]), "bytes 2-5/100")
        assert get("bytes=97-") == (206, bytes([97, 98, 99]), "bytes 97-99/100")
        assert get("bytes=-2") == (206, bytes([98, 99]), "bytes 98-99/100")
        assert get("bytes=90-200") == (206, bytes(range(90, 100)), "bytes 90-99/100")
        assert get("bytes=100-")[::2] == (416, "bytes */100")
        assert get("bytes=5-2") == (200, bytes(range(100)), None)  # not a range: the whole file


def test_the_range_question_carries_the_downloads_headers():
    from audiosync.download import accepts_ranges

    seen = []

    class Picky(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # ranges only for a client that sends the token, as a signed URL would
            seen.append(dict(self.headers))
            ok = self.headers.get("X-Token") == "abc" and self.headers.get("Range") == "bytes=0-0"
            self.send_response(206 if ok else 200)
            if ok:
                self.send_header("Content-Range", "bytes 0-0/10")
            self.send_header("Content-Length", "1" if ok else "10")
            self.end_headers()
            self.wfile.write(b"x" if ok else b"x" * 10)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Picky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/song.webm"
        headers = "X-Token: abc\r\nUser-Agent: test-agent\r\n"  # as download._header_args writes them
        assert accepts_ranges(["-rw_timeout", "1", "-headers", headers, "-i", url], 2.0)
        assert seen[-1]["User-Agent"] == "test-agent"
        assert not accepts_ranges(["-i", url], 2.0)  # without the token: the whole file
        assert not accepts_ranges(["-i", "file:/tmp/x.webm"], 2.0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _is_reaped(proc) -> bool:
    return proc.poll() is not None


def test_decoders_started_early_are_the_ones_read(long_files, made, tmp_path):
    # The command starts the decoders before it imports numpy: decode_inputs reads those very
    # processes, split as usual, and gives the same samples as a decode started on the spot.
    from audiosync import decoding, ffmpeg as ff
    clip = write_wav(tmp_path / "clip.wav", decode(long_files["wav"], SR)[:10 * SR], SR)
    inputs = (long_files["webm"], clip)
    decoding.start_early(inputs, SR, (None, None))
    try:
        early = [proc for waiting in ff._early.values() for proc, _ in waiting]
        assert len(early) == 2
        (ref, oth), finished = offline.decode_inputs(inputs, SR)
        assert finished and ff._early == {}, "a decoder started early was not read"
        assert all(_is_reaped(p) for p in early)
    finally:
        ff.drop_early()
    assert len(made) == 1 and made[0].offset is not None
    (ref2, oth2), _ = offline.decode_inputs(inputs, SR)
    np.testing.assert_array_equal(ref, ref2)
    np.testing.assert_array_equal(oth, oth2)


def test_decoders_started_early_and_not_read_are_stopped(long_files):
    from audiosync import decoding, ffmpeg as ff
    # A window starts its own command line; a path that is no file starts nothing.
    decoding.start_early((long_files["webm"], "/no/such/file.ogg"), SR, ((10.0, 5.0), None))
    early = [proc for waiting in ff._early.values() for proc, _ in waiting]
    assert len(early) == 1 and any("atrim=start=10.000000" in a for a in early[0].args)
    ff.drop_early()
    assert ff._early == {} and all(_is_reaped(p) for p in early)
    ff.drop_early()  # nothing left: a no-op
