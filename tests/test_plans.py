"""The FFTW planner: plans cached per size, wisdom on disk, explicit measuring, the buffer pool,
and no process or thread that the caller did not ask for."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from audiosync import _planner, _xcorr, cross_correlation, wisdom
from audiosync._sizes import working_length


def test_plans_are_cached_and_bounded():
    _planner.clear_plans()
    rng = np.random.default_rng(1)
    source = rng.standard_normal(4999)
    cross_correlation(source, source[:100])
    cross_correlation(source, source[:200])
    assert _planner.cached_sizes() == [5000]
    for m in range(100, 4000, 50):
        other = rng.standard_normal(m)
        cross_correlation(other, other[:10])
    assert len(_planner.cached_sizes()) == 32


def test_wisdom_round_trip_and_corrupt_files(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOSYNC_CACHE_DIR", str(tmp_path))
    seconds = wisdom.prepare(seconds=(0.05,), sample_rate=8000, effort="measure", download_s=0)
    assert seconds >= 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(f.startswith("wisdom-") for f in files)
    _planner.forget_wisdom()
    assert wisdom.load() == (True, True)
    # Plans of that size now come from the wisdom, instantly.
    _planner.clear_plans()
    before = _planner.planning_stats()["from_wisdom"]
    _planner.plan(working_length(800), True)
    assert _planner.planning_stats()["from_wisdom"] == before + 1
    # A corrupt or foreign file is ignored, never a crash.
    for single in (False, True):
        with open(wisdom.path(single), "wb") as f:
            f.write(b"(fftw-3.3.10 fftw_wisdom #x0 garbage \x00\xff" * 50)
    assert wisdom.load() == (False, False)
    assert cross_correlation(np.arange(100.0) % 7, (np.arange(50.0) % 7)).lag % 7 == 0
    # An unwritable cache folder is not an error either.
    monkeypatch.setenv("AUDIOSYNC_CACHE_DIR", "/proc/no-such-folder")
    wisdom.save()


def test_buffer_pool_is_bounded_and_reused():
    rng = np.random.default_rng(31)
    _xcorr.free_buffers()
    source = rng.standard_normal(4000).astype(np.float32)
    first = cross_correlation(source, source[500:1500])
    kept = _xcorr.free_buffers()
    # The call's three buffers (spectrum, real and complex work arrays) were kept for the next.
    n = working_length(4000)
    assert kept == 4 * (n + 2 * 2 * (n // 2 + 1))
    assert _xcorr.free_buffers() == 0
    # Reused buffers hold the last call's data: the answers must not depend on it.
    for _ in range(3):
        assert cross_correlation(source, source[500:1500]) == first
        assert cross_correlation(source, source[2000:2700]).lag == 2000
    # A buffer larger than the pool's budget is freed, not kept.
    big = rng.standard_normal(20_000_000).astype(np.float32)
    cross_correlation(big, big[:1000], lags=(0, 10))
    assert _xcorr.free_buffers() < 128 << 20


def test_prepare_measures_with_progress_and_saves(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOSYNC_CACHE_DIR", str(tmp_path))
    sizes = wisdom.prepare_sizes(seconds=(0.05, 0.1), sample_rate=8000, download_s=0.5)
    assert sizes == sorted({working_length(800), working_length(1600), working_length(4000 + 800 - 1)})
    calls = []
    old = _planner.get_effort()
    wisdom.prepare(seconds=(0.05, 0.1), sample_rate=8000, download_s=0.5,
                   on_progress=lambda *a: calls.append(a))
    assert [c[:3] for c in calls] == [(0, 3, sizes[0]), (1, 3, sizes[1]), (2, 3, sizes[2]), (3, 3, 0)]
    assert calls[0][3] is None and all(c[3] is not None and c[3] >= 0 for c in calls[1:])
    assert _planner.get_effort() == old  # the effort is put back
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        os.path.basename(wisdom.path(single)) for single in (False, True))
    with pytest.raises(ValueError, match="effort"):
        wisdom.prepare(effort="hard")
    with pytest.raises(ValueError, match="precisions"):
        wisdom.prepare(precisions=("half",))


# Run in a fresh process: 20 correlations of one size (and a sync_files and a
# second size), then list this process's children and threads.
_NO_CHILD = textwrap.dedent("""
    import os, threading, numpy as np, audiosync
    rng = np.random.default_rng(0)
    source = rng.standard_normal(300_000).astype(np.float32)
    for k in range(20):
        assert audiosync.cross_correlation(source, source[k * 1000 : k * 1000 + 100_000]).lag == k * 1000
    c = audiosync.Correlator(source, max_sample_length=100_000, linear=True)
    for k in range(5):
        assert c(source[k : k + 50_000]).lag == k
    kids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = open(f"/proc/{pid}/stat").read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == os.getpid():
                kids.append(stat[: stat.rindex(")") + 1])
    print("children:", kids)
    print("threads:", [t.name for t in threading.enumerate()])
""")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="lists children through /proc")
def test_correlations_start_no_process_or_thread(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIOSYNC_")}
    env["AUDIOSYNC_CACHE_DIR"] = str(tmp_path)  # no wisdom: every size is planned here
    out = subprocess.run([sys.executable, "-c", _NO_CHILD], capture_output=True, text=True, timeout=300,
                         env=env, cwd=tmp_path, check=True).stdout
    assert "children: []" in out, out
    assert "threads: ['MainThread']" in out, out
    assert list(tmp_path.iterdir()) == []  # and nothing written to the cache either


def test_import_reads_no_wisdom_and_the_first_plan_does(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, audiosync
        from audiosync import _planner, wisdom
        assert not wisdom._loaded, "import loaded the wisdom"
        audiosync.cross_correlation(np.arange(800.0) % 7, np.arange(400.0) % 7)
        assert wisdom._loaded
        print(_planner.planning_stats()["from_wisdom"])
    """)
    env = {**os.environ, "AUDIOSYNC_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c",
                    "from audiosync import wisdom; wisdom.prepare(seconds=(0.05,), sample_rate=8000, download_s=0)"],
                   env=env, cwd=tmp_path, check=True, timeout=300)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                         check=True, timeout=120).stdout
    assert out.split() == ["1"], out  # the plan of 800 points came from the saved wisdom
