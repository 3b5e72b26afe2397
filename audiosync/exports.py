"""A timeline written for other tools: CSV, a CMX3600 EDL, Final Cut Pro XML, and copies that start together.

Each function takes placements (objects with ``path``, ``offset_ms`` and
``duration_s``: :class:`audiosync.timeline.Placement`), so this module
needs nothing above the ffmpeg layer.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
from urllib.parse import quote

from audiosync import ffmpeg
from audiosync.errors import InputError

__all__ = ["apply", "read_edl", "write_csv", "write_edl", "write_fcpxml"]

# FCPXML times are rational seconds; 48 kHz ticks place audio to the sample.
_FCP_TICKS = 48000


def write_csv(files, path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["path", "offset_ms", "confidence", "unplaced", "duration_s"])
        for p in files:
            unplaced = p.offset_ms is None
            out.writerow([p.path, "" if unplaced else f"{p.offset_ms:.3f}", f"{p.confidence:.6f}",
                          "true" if unplaced else "false", f"{p.duration_s:.3f}"])


def _timecode(frames: int, fps: int) -> str:
    seconds, ff = divmod(frames, fps)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def _frames(timecode: str, fps: int) -> int:
    hh, mm, ss, ff = (int(x) for x in re.split(r"[:;]", timecode))
    return ((hh * 60 + mm) * 60 + ss) * fps + ff


def _track(n: int) -> str:
    return "A" if n == 1 else f"A{n}"


def write_edl(placed, path, *, fps: int = 25, title: str = "audiosync") -> None:
    """CMX3600, non-drop frame: event n is input n on audio track n (A, A2, A3, ...), source
    in at 0, recorded at its offset rounded to the frame. The file name goes in a
    ``* FROM CLIP NAME:`` comment (reels hold 8 characters)."""
    if not (isinstance(fps, int) and 1 <= fps <= 120):
        raise ValueError(f"fps must be an int from 1 to 120, got {fps!r}")
    lines = [f"TITLE: {title}", "FCM: NON-DROP FRAME", ""]
    for n, p in enumerate(placed, 1):
        length = max(1, round(p.duration_s * fps))
        start = round(p.offset_ms * fps / 1000.0)
        lines.append(f"{n:03d}  {'AX':<8} {_track(n):<5} C        {_timecode(0, fps)} {_timecode(length, fps)} "
                     f"{_timecode(start, fps)} {_timecode(start + length, fps)}")
        lines.append(f"* FROM CLIP NAME: {os.path.basename(p.path)}")
        lines.append(f"* SOURCE FILE: {p.path}")
        lines.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def read_edl(path, *, fps: int = 25) -> list[tuple[str, float, float]]:
    """The events of a CMX3600 EDL: (clip name, record in, record out) in seconds, in order."""
    events: list[tuple[str, float, float]] = []
    event = re.compile(r"^\d{3,}\s+\S+\s+\S+\s+C\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = event.match(line)
            if m:
                events.append(("", _frames(m.group(3), fps) / fps, _frames(m.group(4), fps) / fps))
            elif line.startswith("* FROM CLIP NAME:") and events:
                events[-1] = (line.split(":", 1)[1].strip(), *events[-1][1:])
    return events


def _seconds(value: float) -> str:
    """Rational FCPXML time in 48 kHz ticks, reduced: '3/2s', '10s', '0s'."""
    from fractions import Fraction  # here, not at import: it costs import audiosync ~30 ms

    t = Fraction(round(value * _FCP_TICKS), _FCP_TICKS)
    return f"{t.numerator}s" if t.denominator == 1 else f"{t.numerator}/{t.denominator}s"


def write_fcpxml(placed, path, *, title: str = "audiosync") -> None:
    """FCPXML 1.10: an asset per input (its file as a ``media-rep``) and a sequence whose gap
    holds one ``asset-clip`` per input on its own lane, at its offset."""
    import xml.etree.ElementTree as ET  # here, not at import: it costs import audiosync ~40 ms

    root = ET.Element("fcpxml", version="1.10")
    resources = ET.SubElement(root, "resources")
    ET.SubElement(resources, "format", id="r0", name="FFVideoFormat1080p25", frameDuration="1/25s",
                  width="1920", height="1080")
    end = max((p.offset_ms / 1000.0 + p.duration_s for p in placed), default=0.0)
    for n, p in enumerate(placed, 1):
        asset = ET.SubElement(resources, "asset", id=f"r{n}", name=os.path.basename(p.path), start="0s",
                              duration=_seconds(p.duration_s), hasAudio="1", audioSources="1")
        ET.SubElement(asset, "media-rep", kind="original-media",
                      src="file://" + quote(os.path.abspath(p.path)))
    project = ET.SubElement(ET.SubElement(ET.SubElement(root, "library"), "event", name=title),
                            "project", name=title)
    sequence = ET.SubElement(project, "sequence", format="r0", duration=_seconds(end), tcStart="0s",
                             tcFormat="NDF", audioLayout="stereo", audioRate="48k")
    gap = ET.SubElement(ET.SubElement(sequence, "spine"), "gap", name="Gap", offset="0s", start="0s",
                        duration=_seconds(end))
    for n, p in enumerate(placed, 1):
        ET.SubElement(gap, "asset-clip", ref=f"r{n}", lane=str(n), offset=_seconds(p.offset_ms / 1000.0),
                      name=os.path.basename(p.path), start="0s", duration=_seconds(p.duration_s))
    ET.indent(root)
    with open(path, "wb") as f:
        f.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n')
        f.write(ET.tostring(root, encoding="utf-8"))
        f.write(b"\n")


def apply(placed, directory) -> list[str]:
    """Copies of the inputs that all start at timeline zero, in ``directory`` under their own
    names: the audio delayed by the input's offset with silence (``adelay``, re-encoded with
    the container's default codec), a video stream shifted by as much, copied as it is."""
    os.makedirs(directory, exist_ok=True)
    names = [os.path.basename(p.path) for p in placed]
    if len(set(names)) != len(names):
        raise ValueError("two inputs share a file name; apply them into separate folders")
    written = []
    for p, name in zip(placed, names):
        out = os.path.join(directory, name)
        if os.path.abspath(out) == os.path.abspath(p.path):
            raise ValueError(f"apply would overwrite its input {p.path!r}; choose another folder")
        delay_s = p.offset_ms / 1000.0
        source = "file:" + os.path.abspath(p.path)
        run = subprocess.run(ffmpeg.command(
            "-y", "-itsoffset", f"{delay_s:.6f}", "-i", source, "-i", source,
            "-map", "0:v?", "-map", "1:a:0", "-c:v", "copy",
            "-af", f"adelay=delays={p.offset_ms:.3f}:all=1", "file:" + os.path.abspath(out),
        ), capture_output=True, text=True)
        if run.returncode != 0:
            words = (run.stderr.strip().splitlines() or ["no message"])[-1]
            raise InputError(f"cannot write a shifted copy of {p.path!r} to {out!r}: {words}")
        written.append(out)
    return written
