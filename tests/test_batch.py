"""Batches: a manifest in, one JSON line per pair out; bad rows and missing files as error lines;
resume after SIGKILL; bad manifests as usage errors; a real Dask scheduler and worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from audiosync import batch
from audiosync.batch import read_manifest
from audiosync.cli import main
from audiosync.errors import ManifestError
from helpers import needs_ffmpeg, write_wav

RATE = 16_000
PAIRS = 8


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    """PAIRS (reference, other) pairs of noise with known lags, as WAV files."""
    folder = tmp_path_factory.mktemp("batch")
    rng = np.random.default_rng(9)
    rows = []
    for k in range(PAIRS):
        ref = rng.normal(0, 0.2, 8 * RATE).astype(np.float32)
        start = 0.5 + 0.25 * k
        other = ref[int(start * RATE):int((start + 4) * RATE)]
        rows.append((str(write_wav(folder / f"ref{k}.wav", ref, RATE)),
                     str(write_wav(folder / f"other{k}.wav", other, RATE)), 1000.0 * start))
    return folder, rows


def _manifest(path, rows, header="reference,other"):
    lines = [header] + [f"{r},{o}" for r, o, *_ in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _lines(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


@needs_ffmpeg
def test_every_pair_gets_one_line_with_the_files_keys(pairs_dir, tmp_path, capsys):
    folder, rows = pairs_dir
    manifest = _manifest(tmp_path / "m.csv", rows[:3])
    out = tmp_path / "out.jsonl"
    assert main(["batch", manifest, "--out", str(out), "--quiet"]) == 0
    got = {(r["reference"], r["other"]): r for r in _lines(out)}
    assert len(got) == 3
    assert main(["files", rows[0][0], rows[0][1], "--json"]) == 0
    files_keys = set(json.loads(capsys.readouterr().out.splitlines()[-1]))
    for ref, other, lag in rows[:3]:
        line = got[(ref, other)]
        assert set(line) == files_keys | {"reference", "other"}
        assert line["confident"] and abs(line["lag_ms"] - lag) < 0.5


@needs_ffmpeg
def test_window_columns_reach_the_pair_and_a_bad_window_is_its_line(pairs_dir, tmp_path):
    folder, rows = pairs_dir
    (ref, other, lag), (ref2, other2, _) = rows[0], rows[1]
    path = tmp_path / "m.csv"
    path.write_text("reference,other,other_window\n"
                    f"{ref},{other},1.5:2\n"
                    f"{ref2},{other2},soon\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(path), "--out", str(out), "--quiet"]) == 3  # a pair failed
    good, bad = sorted(_lines(out), key=lambda r: r["other"] != other)
    assert good["confident"] and abs(good["lag_ms"] - lag) < 0.5  # lags stay in each input's timeline
    assert good["interval_s"] == pytest.approx(2.0, abs=0.05)
    assert all(1.5 < p["time_s"] < 3.5 for p in good["lag_map"])
    assert bad["error_type"] == "ValueError" and "other_window" in bad["error"]


@needs_ffmpeg
def test_a_bad_row_and_a_missing_file_are_error_lines_and_the_rest_goes_on(pairs_dir, tmp_path):
    folder, rows = pairs_dir
    path = tmp_path / "m.csv"
    path.write_text("reference,other,max_seconds\n"
                    f"{rows[0][0]},{rows[0][1]},\n"
                    f"{rows[1][0]},{rows[1][1]},abc\n"
                    f"{rows[2][0]},{folder / 'missing.wav'},\n"
                    f"{rows[3][0]},,\n"
                    f"{rows[4][0]},{rows[4][1]},-3\n"
                    f"{rows[5][0]},{rows[5][1]},30\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(path), "--out", str(out), "--quiet", "--jobs", "2"]) == 3  # some failed
    lines = _lines(out)
    assert len(lines) == 6
    by_other = {r["other"]: r for r in lines}
    assert "max_seconds must be a number" in by_other[rows[1][1]]["error"]
    missing = by_other[str(folder / "missing.wav")]
    assert missing["error_type"] == "InputNotFoundError" and "missing.wav" in missing["error"]
    assert "empty reference or other" in by_other[""]["error"]
    assert "max_seconds" in by_other[rows[4][1]]["error"]
    for ok in (rows[0], rows[5]):
        assert by_other[ok[1]]["confident"] and abs(by_other[ok[1]]["lag_ms"] - ok[2]) < 0.5


@needs_ffmpeg
def test_a_batch_killed_halfway_resumes_with_one_line_per_pair(pairs_dir, tmp_path):
    folder, rows = pairs_dir
    manifest = _manifest(tmp_path / "m.csv", rows)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "audiosync", "batch", manifest, "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # the batch and its ffmpeg children, mid-pair
    finally:
        proc.wait()
    before = out.read_text().count("\n")
    assert 2 <= before < PAIRS, "the batch was not killed halfway"
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"reference": "half a line')  # as a crash mid-write would leave it
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = _lines(out)
    assert len(lines) == PAIRS
    assert sorted((r["reference"], r["other"]) for r in lines) == sorted((r, o) for r, o, _ in rows)
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and len(_lines(out)) == PAIRS  # nothing left to do


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"reference,clip\na.wav,b.wav\n", "no 'other' column"),
    (b"reference,other,speed\na.wav,b.wav,2\n", "unknown column 'speed'"),
    (b"reference,other\n\xff\xfe\x00a.wav,b.wav\n", "not UTF-8"),
])
def test_bad_manifests_are_one_line_usage_errors(tmp_path, capsys, content, match):
    path = tmp_path / "m.csv"
    path.write_bytes(content)
    with pytest.raises(ManifestError, match=match):
        read_manifest(path)
    assert main(["batch", str(path), "--out", str(tmp_path / "o.jsonl"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err
    assert not (tmp_path / "o.jsonl").exists() or (tmp_path / "o.jsonl").read_text() == ""


def test_a_missing_manifest_is_a_usage_error(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, match", [
    ({"jobs": 0}, "jobs"), ({"jobs": 1.5}, "jobs"), ({"jobs": 2, "scheduler": "tcp://x:1"}, "not both"),
    ({"on_result": 3}, "on_result"),
])
def test_bad_batch_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        list(batch([("a", "b")], **kwargs))


def _children() -> set[int]:
    """This process's live children (zombies count: they were not waited for)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                found.add(int(entry))
    return found


@needs_ffmpeg
def test_local_processes_give_every_result_and_leave_nothing_running(pairs_dir):
    folder, rows = pairs_dir
    before = _children()
    seen = []
    results = list(batch([(r, o) for r, o, _ in rows], jobs=2, on_result=seen.append))
    assert len(results) == PAIRS and seen == results
    lags = {(r["reference"], r["other"]): r["lag_ms"] for r in results}
    for ref, other, lag in rows:
        assert abs(lags[(ref, other)] - lag) < 0.5
    deadline = time.monotonic() + 10
    while _children() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (_children() - before)
    assert [t.name for t in threading.enumerate() if t.name.startswith(("QueueManager", "ExecutorManager"))] == []


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and one `dask worker` on 127.0.0.1, stopped afterwards."""
    pytest.importorskip("distributed")
    bin_dir = os.path.dirname(sys.executable)
    dask = os.path.join(bin_dir, "dask")
    info = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert info.exists(), "the dask scheduler did not start"
        time.sleep(0.2)  # the file is written whole once the scheduler listens
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen([dask, "worker", "--scheduler-file", str(info), "--nworkers", "1",
                                       "--nthreads", "1", "--no-dashboard", "--local-directory", str(tmp_path)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@needs_ffmpeg
def test_a_real_dask_cluster_runs_the_pairs(pairs_dir, tmp_path, dask_cluster):
    folder, rows = pairs_dir
    manifest = _manifest(tmp_path / "m.csv", rows[:4] + [(rows[4][0], str(folder / "missing.wav"))])
    out = tmp_path / "out.jsonl"
    assert main(["batch", manifest, "--out", str(out), "--quiet", "--scheduler", dask_cluster]) == 3
    lines = {(r["reference"], r["other"]): r for r in _lines(out)}
    assert len(lines) == 5
    for ref, other, lag in rows[:4]:
        assert lines[(ref, other)]["confident"] and abs(lines[(ref, other)]["lag_ms"] - lag) < 0.5
    assert lines[(rows[4][0], str(folder / "missing.wav"))]["error_type"] == "InputNotFoundError"


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("distributed")
    manifest = _manifest(tmp_path / "m.csv", [("a.wav", "b.wav")])
    code = main(["batch", manifest, "--out", str(tmp_path / "o.jsonl"), "--quiet",
                 "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 3
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
