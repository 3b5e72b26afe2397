"""N files on one timeline: the placement rules on measured pairs, then real music end to end
(excerpts re-encoded in five formats, one muxed into a video), the exports and --apply."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from audiosync import Edge, align, sync_files
from audiosync.cli import main
from audiosync.exports import read_edl
from audiosync.timeline import place
from helpers import decode, ffmpeg, needs_ffmpeg, write_wav

RATE = 48_000
# (start s in the song, length s, codec arguments, file name): a chain where A-C, A-D and B-D
# do not overlap, so their offsets come only through the others. The song is a tracker module
# built on exact loops: pairs that do not overlap still find places that sound alike (see also
# test_a_loop_heard_again_does_not_place_an_excerpt, with overlaps of 7 s).
LAYOUT = (
    (0.5, 20.0, ("-c:a", "libopus", "-b:a", "96k"), "a.opus"),
    (10.5, 20.0, ("-c:a", "libmp3lame", "-b:a", "160k"), "b.mp3"),
    (20.5, 20.0, ("-c:a", "flac"), "c.flac"),
    (30.5, 20.0, None, "d.mp4"),  # AAC in a video
)


def _edge(a, b, lag, conf=1.0, ev=100.0):
    return Edge(a, b, lag, conf, ev)


# --- placement rules, on measured pairs -------------------------------------------------------

def test_chained_pairs_place_files_that_do_not_overlap():
    edges = [_edge(0, 1, 1000.0), _edge(1, 2, 500.0), _edge(0, 2, 0.0, conf=0.3, ev=1.0)]
    t = place(["a", "b", "c"], [2.0, 2.0, 2.0], edges)
    assert [f.offset_ms for f in t.files] == pytest.approx([0.0, 1000.0, 1500.0])
    assert t.files[2].edges == (0, 1)  # placed through b
    assert t.edges[2].status == "weak"


def test_earliest_file_starts_at_zero():
    t = place(["a", "b"], [2.0, 2.0], [_edge(0, 1, -750.0)])
    assert [f.offset_ms for f in t.files] == pytest.approx([750.0, 0.0])


def test_a_file_linked_to_none_is_unplaced():
    edges = [_edge(0, 1, 200.0), _edge(0, 2, 3.0, conf=0.5), _edge(1, 2, 9.0, conf=0.2)]
    t = place(["a", "b", "c"], [1.0] * 3, edges)
    assert t.files[2].unplaced and t.files[2].offset_ms is None
    row = json.loads(t.to_json())["files"][2]
    assert row["unplaced"] is True and row["offset_ms"] is None


def test_a_cycle_that_disagrees_drops_its_weakest_pair():
    # a-b-c-a: a corrupted a-c (40 ms off) is the weakest, so it is dropped and reported.
    edges = [_edge(0, 1, 1000.0, ev=300.0), _edge(1, 2, 2000.0, ev=250.0), _edge(0, 2, 3040.0, ev=80.0)]
    t = place(["a", "b", "c"], [5.0] * 3, edges)
    assert [e.status for e in t.edges] == ["tree", "tree", "dropped"]
    assert t.dropped[0].residual_ms == pytest.approx(40.0)
    assert t.files[2].offset_ms == pytest.approx(3000.0)


def test_a_sure_but_wrong_pair_loses_to_two_agreeing_cycles():
    # b-d is wrong and surer than each other pair; the cycles through c and e disagree with it.
    edges = [_edge(0, 1, 1000.0, ev=200.0), _edge(1, 2, 1000.0, ev=150.0), _edge(2, 3, 1000.0, ev=150.0),
             _edge(1, 3, 7000.0, ev=400.0), _edge(0, 3, 3000.0, ev=120.0), _edge(0, 2, 2000.0, ev=140.0)]
    t = place(list("abcd"), [5.0] * 4, edges)
    assert [k for k, e in enumerate(t.edges) if e.status == "dropped"] == [3]
    assert [f.offset_ms for f in t.files] == pytest.approx([0.0, 1000.0, 2000.0, 3000.0])


def test_consistent_cycles_refine_offsets_by_least_squares():
    edges = [_edge(0, 1, 1000.2), _edge(1, 2, 999.8), _edge(0, 2, 2000.6)]
    t = place(list("abc"), [5.0] * 3, edges)
    assert all(e.status in ("tree", "checked") for e in t.edges)
    fitted = [f.offset_ms for f in t.files]
    # Every pair's residual after the fit is smaller than the tree's 0.6 ms disagreement.
    assert max(abs(e.lag_ms - (fitted[e.b] - fitted[e.a])) for e in t.edges) < 0.4


def test_reference_picks_its_group():
    edges = [_edge(0, 1, 100.0), _edge(2, 3, 50.0), _edge(3, 4, 50.0)]
    t = place(list("abcde"), [1.0] * 5, edges, reference=0)
    assert [f.unplaced for f in t.files] == [False, False, True, True, True]
    t = place(list("abcde"), [1.0] * 5, edges)  # default: the largest group
    assert [f.unplaced for f in t.files] == [True, True, False, False, False]


def test_likeness_by_transforms_is_the_same_as_shift_by_shift(monkeypatch):
    from audiosync import timeline

    rng = np.random.default_rng(8)
    x = np.convolve(rng.normal(size=20 * 16000), np.hanning(7), "same")
    y = x[3 * 16000 + 5:15 * 16000] + rng.normal(0, 0.3, 12 * 16000 - 5)
    lag_ms = 1000.0 * (3 * 16000 + 5) / 16000 + 0.4  # 0.4 ms off: found within the 1 ms tolerance
    direct = timeline.likeness(x, y, lag_ms, 16000, 1.0)
    monkeypatch.setattr(timeline, "_DIRECT_SHIFTS", 0)
    assert timeline.likeness(x, y, lag_ms, 16000, 1.0) == pytest.approx(direct, abs=1e-6)
    assert 0.9 < direct < 1.0
    assert timeline.likeness(x, y, lag_ms + 250.0, 16000, 1.0) == 0.0  # nowhere near: chance
    assert timeline.likeness(x, y, 18_500.0, 16000, 1.0) is None  # overlaps 1.5 s: nothing to tell


@pytest.mark.parametrize("paths, kwargs, match", [
    (["a"], {}, "at least 2"),
    (["a", "a"], {}, "twice"),
    (["a", "b"], {"reference": "c"}, "not one of the inputs"),
    (["a", "b"], {"tolerance_ms": 0}, "tolerance_ms"),
    (["a", "b"], {"tolerance_ms": float("nan")}, "tolerance_ms"),
    (["a", "b"], {"max_seconds": -1}, "max_seconds"),
])
def test_bad_arguments_name_themselves(paths, kwargs, match):
    with pytest.raises(ValueError, match=match):
        align(paths, **kwargs)


# --- real music, end to end -------------------------------------------------------------------

@pytest.fixture(scope="module")
def excerpts(real_song, tmp_path_factory):
    """The layout cut from a real song at exact samples, each encoded its own way, plus an
    unrelated recording (noise shaped like speech) that overlaps nothing."""
    folder = tmp_path_factory.mktemp("timeline")
    song = decode(real_song, RATE)
    rng = np.random.default_rng(5)
    paths, truth = [], []
    for start, length, codec, name in LAYOUT:
        i = int(round(start * RATE))
        cut = song[i:i + int(length * RATE)] + rng.normal(0, 0.003, int(length * RATE)).astype(np.float32)
        wav = write_wav(folder / (name + ".wav"), cut)
        out = folder / name
        if codec is None:  # a video: test pattern plus the excerpt in AAC
            ffmpeg("-f", "lavfi", "-i", f"testsrc=size=160x120:rate=25:duration={length}", "-i", str(wav),
                   "-c:v", "mpeg4", "-c:a", "aac", "-b:a", "128k", "-shortest", str(out))
        else:
            ffmpeg("-i", str(wav), *codec, str(out))
        paths.append(str(out))
        truth.append(1000.0 * i / RATE)
    other = folder / "unrelated.wav"
    noise = np.convolve(rng.normal(0, 0.1, 12 * RATE), np.ones(8) / 8, "same").astype(np.float32)
    write_wav(other, noise)
    return paths, [t - truth[0] for t in truth], str(other)


@needs_ffmpeg
def test_real_excerpts_in_five_formats_land_within_a_millisecond(excerpts):
    paths, truth, other = excerpts
    t = align([*paths, other])
    assert not t.dropped
    for f, want in zip(t.files, truth):
        assert not f.unplaced, f.path
        assert abs(f.offset_ms - want) <= 1.0, (f.path, f.offset_ms, want)
    assert t.files[-1].unplaced
    # a-c, a-d and b-d do not overlap: they place nothing, c and d come through b and c.
    assert t.files[3].edges and all(t.edges[k].status == "tree" for k in t.files[3].edges)


@needs_ffmpeg
def test_exports_say_the_same_offsets(excerpts, tmp_path):
    paths, truth, other = excerpts
    t = align(paths, reference=paths[1])
    offsets = [f.offset_ms for f in t.files]

    t.to_csv(tmp_path / "t.csv")
    rows = (tmp_path / "t.csv").read_text().splitlines()
    assert rows[0] == "path,offset_ms,confidence,unplaced,duration_s"
    assert [float(r.split(",")[1]) for r in rows[1:]] == pytest.approx(offsets, abs=1e-3)

    t.to_edl(tmp_path / "t.edl", fps=25)
    events = read_edl(tmp_path / "t.edl", fps=25)
    assert [name for name, _, _ in events] == [os.path.basename(p) for p in paths]
    for (_, rec_in, rec_out), f in zip(events, t.files):
        assert abs(rec_in - f.offset_ms / 1000.0) <= 0.5 / 25 + 1e-9  # to the nearest frame
        assert abs((rec_out - rec_in) - f.duration_s) <= 0.5 / 25 + 1e-9

    t.to_fcpxml(tmp_path / "t.fcpxml")
    _check_fcpxml(tmp_path / "t.fcpxml", t)


def _time(value: str) -> float:
    assert value.endswith("s"), value
    num, _, den = value[:-1].partition("/")
    return int(num) / int(den or 1)


def _check_fcpxml(path, timeline):
    """The structure FCPXML 1.10's DTD asks of what is written: resources before library, every
    asset with an id, a media-rep with a file URL, every clip's ref resolving to an asset, times
    as rational seconds, and each clip at its input's offset."""
    text = path.read_text()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>')
    root = ET.fromstring(text.split("\n", 2)[2])
    assert root.tag == "fcpxml" and root.get("version") == "1.10"
    assert [c.tag for c in root] == ["resources", "library"]
    resources = root.find("resources")
    ids = {r.get("id"): r for r in resources}
    assert len(ids) == len(resources)  # ids unique
    assert resources[0].tag == "format" and _time(resources[0].get("frameDuration")) == pytest.approx(1 / 25)
    for asset in resources.findall("asset"):
        rep = asset.find("media-rep")
        assert rep is not None and rep.get("kind") == "original-media" and rep.get("src").startswith("file:///")
        _time(asset.get("duration"))
    sequence = root.find("library/event/project/sequence")
    assert sequence.get("format") in ids and ids[sequence.get("format")].tag == "format"
    clips = sequence.findall("spine/gap/asset-clip")
    assert len(clips) == len(timeline.placed)
    for clip, f in zip(clips, timeline.placed):
        assert ids[clip.get("ref")].tag == "asset"
        assert ids[clip.get("ref")].find("media-rep").get("src").endswith(os.path.basename(f.path))
        assert _time(clip.get("offset")) == pytest.approx(f.offset_ms / 1000.0, abs=1 / 48000)
        assert int(clip.get("lane")) >= 1
    assert _time(sequence.get("duration")) >= max(f.offset_ms / 1000 + f.duration_s for f in timeline.placed) - 1e-4


@needs_ffmpeg
def test_apply_writes_copies_that_start_together(excerpts, tmp_path):
    paths, truth, _ = excerpts
    out = tmp_path / "applied"
    code = main(["align", *paths[:3], paths[3], "--apply", str(out), "--json"])
    assert code == 0
    written = sorted(os.listdir(out))
    assert written == sorted(os.path.basename(p) for p in paths)
    # each copy against the one it overlaps: the same place in both, so a lag of 0
    copies = [str(out / os.path.basename(p)) for p in paths]
    for before, after in zip(copies, copies[1:]):
        r = sync_files(before, after)
        assert r.confident and abs(r.lag_ms) <= 1.0, (after, r.lag_ms)
    # the video stream is copied as it was (same codec), shifted by the file's offset
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name,start_time", "-of", "json", str(out / "d.mp4")],
                           capture_output=True, text=True, check=True)
    video = json.loads(probe.stdout)["streams"][0]
    assert video["codec_name"] == "mpeg4"
    assert float(video["start_time"]) == pytest.approx(truth[3] / 1000.0, abs=0.05)


@needs_ffmpeg
def test_cli_align_json(excerpts, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    paths, truth, other = excerpts
    png = tmp_path / "t.png"
    assert main(["align", paths[0], paths[1], other, "--json", "--plot", str(png)]) == 1  # one unplaced
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(capsys.readouterr().out)
    assert [f["unplaced"] for f in doc["files"]] == [False, False, True]
    assert doc["files"][1]["offset_ms"] == pytest.approx(truth[1], abs=1.0)
    assert {"a", "b", "lag_ms", "confidence", "status"} <= set(doc["edges"][0])


@needs_ffmpeg
def test_cli_align_bad_export_is_usage(excerpts, capsys):
    paths, _, _ = excerpts
    assert main(["align", *paths[:2], "--export", "aaf", "x.aaf"]) == 2
    assert "csv, edl, fcpxml" in capsys.readouterr().err


@needs_ffmpeg
def test_apply_that_ffmpeg_cannot_write_is_a_named_error(tmp_path):
    from audiosync.errors import InputError
    from audiosync.exports import apply
    from audiosync.timeline import Placement

    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(InputError, match="cannot write a shifted copy of .*notes.wav"):
        apply([Placement(str(text), 0.0, 1.0, 1.0)], tmp_path / "out")


def _loop_layout(song, seed, folder):
    """Six 20 s excerpts, each 6-7 s after the previous (each overlaps the next two only), 30 dB
    of noise each, as 16-bit WAV; their true starts (ms, the first at 0)."""
    rng = np.random.default_rng(seed)
    start = float(rng.uniform(0, len(song) / RATE - 60))
    paths, truth = [], []
    for k in range(6):
        i = int(round(start * RATE))
        cut = song[i:i + 20 * RATE].astype(np.float64)
        rms = float(np.sqrt(np.mean(cut ** 2))) or 1e-3
        cut = cut + rng.normal(0, rms * 10 ** -1.5, len(cut))
        paths.append(str(write_wav(folder / f"{seed}-{k}.wav", cut.astype(np.float32))))
        truth.append(1000.0 * i / RATE)
        start += 6 + float(rng.uniform(0, 1))
    return paths, [t - truth[0] for t in truth]


@needs_ffmpeg
@pytest.mark.parametrize("seed", [4, 10])
def test_a_loop_heard_again_does_not_place_an_excerpt(real_song, tmp_path, seed):
    # The song repeats a 14.4 s passage almost exactly. Excerpts two apart overlap 7 s at the
    # true place, and 19 s where the passage comes again at a Pearson of 0.98 (0.4 for others):
    # the measured pair took that place confidently, and the excerpt was placed 14 or 29 s off.
    # Each overlap laid down must match as well as that pair's best overlap does.
    song = decode(real_song, RATE)
    paths, truth = _loop_layout(song, seed, tmp_path)
    t = align(paths)
    for f, want in zip(t.files, truth):
        assert not f.unplaced, f.path
        assert abs(f.offset_ms - want) <= 1.0, (f.path, f.offset_ms, want)
