"""N recordings on one timeline: every pair measured once, a tree of the surest pairs, cycles checked.

:func:`align` decodes each input once, measures every pair with the
offline method with drift (:func:`audiosync.offline.locate`: the lag at
the start of the pair's second input, and its drift), checks it against
the pair's best overlap (:mod:`audiosync.overlap`: a measured lag whose
overlap matches far less well than another lag's becomes that lag, not
confident alone), and hands the pairs to :func:`place`:

* confident pairs link files: the largest set that agrees with one
  placement (``_consensus``). Around every cycle the offsets must sum to
  0 within ``tolerance_ms``, and no pair joins two groups where it puts
  two inputs on top of each other that clash (``_Likeness``): music built
  on loops matches far beyond chance at places where the inputs do not
  overlap at all, but only at the true place does every overlap match as
  well as the inputs allow. One wrong pair loses to the several that
  contradict it; in a lone cycle the weakest pair goes. The others are
  dropped (``Edge.status == "dropped"``);
* a pair not confident alone then joins two groups when the overlaps it
  creates corroborate it (``_corroborated``);
* the kept pairs form a spanning tree of the surest (``"tree"``) and the
  rest (``"checked"``); the offsets are the least-squares fit of them all;
* the group holding ``reference`` (else the largest group) is the
  timeline; its earliest file starts at 0. A file outside it is unplaced,
  never forced onto the timeline.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from audiosync import exports
from audiosync.lagmap import warp
from audiosync.matches import MATCH_RATIO
from audiosync.method import EVIDENCE_95, pearson, waveform_evidence
from audiosync.offline import decode_inputs, locate
from audiosync.overlap import OVERLAP_LIMIT, best_overlap, parabola_top
from audiosync.options import FileOptions

__all__ = ["Edge", "Placement", "Timeline", "align", "place"]

# Inputs decoded at once (one ffmpeg each).
_DECODE_AT_ONCE = 4
# Two inputs placed on top of each other by at least this long must sound alike there.
CHECK_OVERLAP_S = 3.0
# Two inputs a placement puts on top of each other clash when their waveforms' Pearson there is
# below this share of the worse of the two inputs' bests (each input's best Pearson with another
# at a measured pair's lag): as a repeat is told from the clip (audiosync.matches).
ALIKE_RATIO = MATCH_RATIO
# ... or when their Fisher z there is this much below the pair's best overlap's (z = atanh r): a
# difference far beyond the estimate's noise (about 0.01 for 3 s of music), and below the 0.39-0.72
# between a loop heard again (0.976-0.987) and the true place (0.994) in fb-music-high's 2p.
ALIKE_Z = 0.25
# A measured lag whose overlap's Fisher z is this much below the pair's best overlap's is not the
# place (a passage repeated almost exactly: 0.9918 against 0.9938 is 0.14): about five times the
# noise of z over 3 s of music, and above what chance overlaps of 3 s reach against a true 0.2.
BEST_OVERLAP_Z = 0.1
# Of a longer overlap, the likeness is judged on its middle this long (the cost stays bounded).
LIKENESS_MAX_S = 60.0
# Up to this many lags are tried one by one when two inputs' likeness is looked for near a lag.
_DIRECT_SHIFTS = 129
# Up to this many confident pairs, every two of them are tried left out (else every one).
_MAX_PAIRS_LEFT_OUT_TWICE = 40


@dataclass(frozen=True)
class Edge:
    """One measured pair: ``b`` starts ``lag_ms`` after ``a`` on the timeline."""

    a: int
    b: int
    lag_ms: float
    confidence: float
    evidence: float
    status: str = "weak"
    """``"tree"`` (places a file: a confident pair, or one the timeline corroborates),
    ``"checked"`` (closes a cycle that agrees), ``"dropped"`` (disagreed with the pairs kept),
    ``"weak"`` (not confident, not corroborated: links nothing)."""
    residual_ms: float | None = None
    """For a pair that closes a cycle: its measured lag minus the lag the timeline gives it (None
    for a dropped pair that would have joined two groups: the overlaps it lays down clash)."""
    drift_ppm: float | None = None
    """How much faster ``b`` plays ``a`` (parts per million); None when not measured (too short)."""
    best_overlap: float | None = None
    """The best Pearson coefficient of the pair's overlap at any lag (overlaps of 3 s or more);
    None when not measured."""


@dataclass(frozen=True)
class Placement:
    """One input on the timeline."""

    path: str
    offset_ms: float | None
    """Where the input starts on the timeline (the earliest placed input starts at 0); None: unplaced."""
    confidence: float
    """The least confidence of the pairs that place it (1 for the first of its tree; 0 unplaced); a
    corroborated pair counts with the pairs that agree with it, 1 - the product of (1 - each)."""
    duration_s: float
    edges: tuple[int, ...] = ()
    """Indices into :attr:`Timeline.edges` of the tree pairs from the root to this input."""
    drift_ppm: float | None = None
    """How much faster this input plays the timeline's reference (else the first input of its
    group), in parts per million, from the lag maps of the pairs that place it; None when a pair
    on the way overlaps too little to tell (fewer than 3 windows) or for :func:`place` alone."""

    @property
    def unplaced(self) -> bool:
        return self.offset_ms is None


@dataclass(frozen=True)
class Timeline:
    """Every input's place on one timeline (see :func:`align`)."""

    files: tuple[Placement, ...]
    edges: tuple[Edge, ...]
    sample_rate: int = 16000
    tolerance_ms: float = 1.0
    reference: int | None = None

    @property
    def placed(self) -> tuple[Placement, ...]:
        return tuple(f for f in self.files if not f.unplaced)

    @property
    def unplaced(self) -> tuple[Placement, ...]:
        return tuple(f for f in self.files if f.unplaced)

    @property
    def dropped(self) -> tuple[Edge, ...]:
        """The pairs that disagreed with a cycle of surer pairs."""
        return tuple(e for e in self.edges if e.status == "dropped")

    def to_dict(self) -> dict:
        files = []
        for f in self.files:
            files.append({
                "path": f.path, "offset_ms": None if f.unplaced else round(f.offset_ms, 3),
                "confidence": round(f.confidence, 6), "unplaced": f.unplaced,
                "duration_s": round(f.duration_s, 3), "drift_ppm": f.drift_ppm, "edges": list(f.edges),
            })
        edges = [{
            "a": self.files[e.a].path, "b": self.files[e.b].path, "lag_ms": round(e.lag_ms, 3),
            "confidence": round(e.confidence, 6),
            "evidence": round(e.evidence, 3) if math.isfinite(e.evidence) else None, "status": e.status,
            "residual_ms": None if e.residual_ms is None else round(e.residual_ms, 3),
            "drift_ppm": None if e.drift_ppm is None else round(e.drift_ppm, 3),
            "best_overlap": None if e.best_overlap is None else round(e.best_overlap, 6),
        } for e in self.edges]
        return {"files": files, "edges": edges, "tolerance_ms": self.tolerance_ms}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """One row per input: path, offset_ms (empty when unplaced), confidence, unplaced, duration_s."""
        exports.write_csv(self.files, path)

    def to_edl(self, path: str | os.PathLike[str], *, fps: int = 25, title: str = "audiosync") -> None:
        """A CMX3600 EDL: one audio event per placed input, recorded at its offset (frame accuracy)."""
        exports.write_edl(self.placed, path, fps=fps, title=title)

    def to_fcpxml(self, path: str | os.PathLike[str], *, title: str = "audiosync") -> None:
        """Final Cut Pro XML 1.10 (DaVinci Resolve and Premiere import it): one clip per placed
        input, each on its own lane at its offset, in sample-exact rational time."""
        exports.write_fcpxml(self.placed, path, title=title)

    def apply(self, directory: str | os.PathLike[str]) -> list[str]:
        """Write a copy of each placed input to ``directory`` that starts at timeline zero
        (audio delayed with silence, video shifted by stream copy); returns the paths."""
        return exports.apply(self.placed, directory)


class _Forest:
    """Union-find over the inputs."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> bool:
        ri, rj = self.root(i), self.root(j)
        if ri == rj:
            return False
        self.parent[rj] = ri
        return True


def _tree(n: int, edges: list[Edge], usable: list[int]) -> list[int]:
    """The surest spanning forest (Kruskal on evidence, then confidence) of the usable edges."""
    forest = _Forest(n)
    order = sorted(usable, key=lambda k: (-_strength(edges[k]), k))
    return [k for k in order if forest.join(edges[k].a, edges[k].b)]


def _strength(e: Edge) -> float:
    # Evidence keeps ranking surely matched pairs where confidence saturates at 1.
    return e.evidence if math.isfinite(e.evidence) else e.confidence


def _walk(n: int, edges: list[Edge], tree: list[int]) -> tuple[list[float | None], list[int | None], list[int]]:
    """Offsets along the tree from each group's first input: (offset, parent edge, group id) per input."""
    adjacent: list[list[int]] = [[] for _ in range(n)]
    for k in tree:
        adjacent[edges[k].a].append(k)
        adjacent[edges[k].b].append(k)
    offset: list[float | None] = [None] * n
    via: list[int | None] = [None] * n
    group = [-1] * n
    for start in range(n):
        if offset[start] is not None:
            continue
        offset[start], group[start] = 0.0, start
        stack = [start]
        while stack:
            i = stack.pop()
            for k in adjacent[i]:
                e = edges[k]
                j, step = (e.b, e.lag_ms) if e.a == i else (e.a, -e.lag_ms)
                if offset[j] is None:
                    offset[j], via[j], group[j] = offset[i] + step, k, start
                    stack.append(j)
    return offset, via, group


def _path(i: int, edges: list[Edge], via: list[int | None]) -> list[int]:
    """The tree edges from input i up to its group's first input."""
    out = []
    while via[i] is not None:
        k = via[i]
        out.append(k)
        e = edges[k]
        i = e.a if e.b == i else e.b
    return out


def _fit(n: int, edges: list[Edge], kept: list[int], members: list[int]) -> dict[int, float]:
    """Least-squares offsets of ``members`` from every kept edge among them, the first at 0."""
    index = {i: r for r, i in enumerate(members)}
    rows = [k for k in kept if edges[k].a in index and edges[k].b in index]
    a = np.zeros((len(rows) + 1, len(members)))
    y = np.zeros(len(rows) + 1)
    for r, k in enumerate(rows):
        a[r, index[edges[k].b]], a[r, index[edges[k].a]] = 1.0, -1.0
        y[r] = edges[k].lag_ms
    a[-1, 0] = 1.0  # the first member at 0
    solution = np.linalg.lstsq(a, y, rcond=None)[0]
    return {i: float(solution[index[i]]) for i in members}


class _Likeness:
    """How alike two inputs sound at a lag (cached), and whether a placement's overlap clashes.

    Each input's best is the highest Pearson of any measured pair of it at
    that pair's own lag: at the true place an overlap matches as well as the
    inputs' noise allows, and a repeat elsewhere matches less well.
    """

    def __init__(self, n: int, edges: list[Edge], alike: Callable[[int, int, float], float | None] | None):
        self.alike, self.heard = alike, {}
        self.best = [0.0] * n
        self.pair_best = {(e.a, e.b): e.best_overlap for e in edges if e.best_overlap is not None}
        for e in edges:
            r = self(e.a, e.b, e.lag_ms) if e.a != e.b else None
            if r is not None:
                self.best[e.a], self.best[e.b] = max(self.best[e.a], r), max(self.best[e.b], r)

    def __call__(self, a: int, b: int, lag_ms: float) -> float | None:
        if self.alike is None:
            return None
        key = (a, b, round(lag_ms, 1))
        if key not in self.heard:
            self.heard[key] = self.alike(a, b, lag_ms)
        return self.heard[key]

    def clashes(self, a: int, b: int, lag_ms: float) -> bool:
        """Whether a and b sound less alike at lag_ms than ALIKE_RATIO of the worse of their
        bests, or clearly less alike than the pair's own best overlap (a loop repeated almost
        exactly: 0.98 against the true place's 0.994)."""
        r = self(a, b, lag_ms)
        if r is None:
            return False
        if r < ALIKE_RATIO * min(self.best[a], self.best[b]):
            return True
        top = self.pair_best.get((a, b), self.pair_best.get((b, a)))
        return top is not None and _fisher(r) < _fisher(top) - ALIKE_Z

    def join(self, group: list[int], offset: list[float], e: Edge) -> list[float] | None:
        """The offsets with e.b's group moved so that e holds; None when two inputs the join puts
        on top of each other clash."""
        ga, gb = group[e.a], group[e.b]
        shift = offset[e.a] + e.lag_ms - offset[e.b]
        moved = [o + shift if g == gb else o for g, o in zip(group, offset)]
        across = [(i, j) for i, gi in enumerate(group) if gi == ga for j, gj in enumerate(group) if gj == gb]
        if any(self.clashes(i, j, moved[j] - moved[i]) for i, j in across):
            return None
        return moved


def _consensus(n: int, edges: list[Edge], usable: list[int], tolerance_ms: float, like: _Likeness) -> list[int]:
    """The largest set of confident pairs that agree with one placement.

    A placement is built from the pairs surest first, leaving out none, one
    or two of them (every choice; one for many pairs): a pair that links two
    groups moves the second group into place, a pair inside a group is kept
    when it agrees within ``tolerance_ms``; the left-out pairs are then kept
    if they agree. A pair never joins two groups where the join puts two
    inputs on top of each other that clash (``_Likeness``). Music built on
    exact loops matches far beyond chance at places where the inputs do
    not overlap at all; only at the true place does each overlap match as
    well as the inputs allow. The most pairs kept plus inputs linked wins,
    then the most evidence. So one or two wrong pairs lose to the several
    that contradict them, and in a lone cycle the weakest pair goes.
    """
    order = sorted(usable, key=lambda k: (-_strength(edges[k]), k))
    choices: list[tuple[int, ...]] = [()] + [(k,) for k in order]
    if len(order) <= _MAX_PAIRS_LEFT_OUT_TWICE:
        choices += [(j, k) for i, j in enumerate(order) for k in order[i + 1:]]
    chosen, chosen_score = list(usable), None
    for left_out in choices:
        group, offset, kept = list(range(n)), [0.0] * n, []
        for k in [k for k in order if k not in left_out]:
            e = edges[k]
            ga, gb = group[e.a], group[e.b]
            if ga != gb:
                moved = like.join(group, offset, e)
                if moved is not None:
                    offset, group = moved, [ga if g == gb else g for g in group]
                    kept.append(k)
            elif abs(e.lag_ms - (offset[e.b] - offset[e.a])) <= tolerance_ms:
                kept.append(k)
        kept += [k for k in left_out if group[edges[k].a] == group[edges[k].b]
                 and abs(edges[k].lag_ms - (offset[edges[k].b] - offset[edges[k].a])) <= tolerance_ms]
        # Pairs kept plus inputs linked: a wrong pair that leaves inputs it cannot accommodate
        # apart loses to the placement that holds them all.
        score = (len(kept) + n - len(set(group)), sum(_strength(edges[k]) for k in kept))
        if chosen_score is None or score > chosen_score:
            chosen, chosen_score = kept, score
    return chosen


def _corroborated(n: int, edges: list[Edge], kept: list[int], tolerance_ms: float,
                  like: _Likeness) -> dict[int, float]:
    """Pairs not confident alone that join two groups because the join is corroborated.

    In music built on loops or held chords a true pair is often not
    confident alone: a repeat a few seconds away matches nearly as well. It
    joins its two groups, surest and best matching pairs first, when its
    own overlap matches as well as the better input's best pair allows,
    nothing across the join clashes (``_Likeness``), and another measured
    pair across the join agrees with it within ``tolerance_ms``: two
    independent measurements that agree to a millisecond by chance are
    rare. Returns each joining pair's confidence: 1 - the product of
    (1 - confidence) over it and the pairs that agree.
    """
    offset, _, group = _walk(n, edges, _tree(n, edges, kept))
    offset = [0.0 if o is None else o for o in offset]
    joined: dict[int, float] = {}
    # The pairs whose own overlap matches best first (confidence first: most are 0 here); after
    # each join the list is gone through again, since a join can make another pair joinable.
    likeness_at = {k: like(e.a, e.b, e.lag_ms) for k, e in enumerate(edges) if k not in kept and e.a != e.b}
    weak = sorted((k for k, r in likeness_at.items() if r is not None),
                  key=lambda k: (-edges[k].confidence, -likeness_at[k], k))
    progressed = True
    while progressed:
        progressed = False
        for k in weak:
            e = edges[k]
            ga, gb = group[e.a], group[e.b]
            # Its own overlap must match as well as the better input's best (not the worse's: an
            # unrelated input's best is chance).
            if ga == gb or likeness_at[k] < ALIKE_RATIO * max(like.best[e.a], like.best[e.b]) \
                    or like.clashes(e.a, e.b, e.lag_ms):
                continue
            moved = like.join(group, offset, e)
            if moved is None:
                continue
            agreeing = [m for m, f in enumerate(edges)
                        if m != k and f.a != f.b and {group[f.a], group[f.b]} == {ga, gb}
                        and abs(f.lag_ms - (moved[f.b] - moved[f.a])) <= tolerance_ms]
            if not agreeing:
                continue
            miss = 1.0 - e.confidence
            for m in agreeing:
                miss *= 1.0 - edges[m].confidence
            joined[k] = 1.0 - miss
            offset = moved
            group = [ga if g == gb else g for g in group]
            progressed = True
            break
    return joined


def place(paths: Sequence[str], durations: Sequence[float], edges: Sequence[Edge], *,
          reference: int | None = None, min_confidence: float = 0.95, tolerance_ms: float = 1.0,
          sample_rate: int = 16000, alike: Callable[[int, int, float], float | None] | None = None) -> Timeline:
    """A timeline from measured pairs (see the module's description). ``reference``: the index of
    the input whose group is the timeline. ``alike(a, b, lag_ms)``: how alike inputs a and b sound
    with b starting lag_ms after a (a Pearson coefficient; 0 when no better than chance, None
    when they overlap too little to tell), asked of every two inputs a placement puts on top of
    each other: see ``_Likeness.clashes``. Without it, no clash is seen and no pair that is not
    confident alone places a file."""
    n = len(paths)
    edges = [replace(e, status="weak", residual_ms=None) for e in edges]
    usable = [k for k, e in enumerate(edges) if e.confidence >= min_confidence and e.a != e.b]
    like = _Likeness(n, edges, alike)
    kept = _consensus(n, edges, usable, tolerance_ms, like)
    joined = _corroborated(n, edges, kept, tolerance_ms, like) if alike is not None else {}
    kept = kept + list(joined)
    tree = _tree(n, edges, kept)
    offset, via, group = _walk(n, edges, tree)
    for k in usable:
        if k not in kept:
            e = edges[k]
            # Its residual when it closes a cycle; None when it would have joined two groups (refused:
            # the overlaps it lays down clash).
            residual = e.lag_ms - (offset[e.b] - offset[e.a]) if group[e.a] == group[e.b] else None
            edges[k] = replace(e, status="dropped", residual_ms=residual)
    usable = kept
    for k in usable:
        e = edges[k]
        if k in tree:
            edges[k] = replace(e, status="tree")
        elif group[e.a] == group[e.b]:
            edges[k] = replace(e, status="checked", residual_ms=e.lag_ms - (offset[e.b] - offset[e.a]))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(group[i], []).append(i)
    if reference is not None:
        chosen = groups[group[reference]]
    else:  # the largest group; on a tie, the one holding the earliest input
        chosen = max(groups.values(), key=lambda members: (len(members), -members[0]))
    files = [Placement(str(p), None, 0.0, float(d)) for p, d in zip(paths, durations)]
    if len(chosen) > 1 or reference is not None:
        kept = [k for k in usable if edges[k].status in ("tree", "checked")]
        fitted = _fit(n, edges, kept, chosen)
        zero = min(fitted.values())
        for i in chosen:
            route = tuple(reversed(_path(i, edges, via)))
            confidence = min((joined.get(k, edges[k].confidence) for k in route), default=1.0)
            files[i] = replace(files[i], offset_ms=fitted[i] - zero, confidence=confidence, edges=route)
    return Timeline(tuple(files), tuple(edges), sample_rate, tolerance_ms, reference)


def align(paths: Sequence[str | os.PathLike[str]], *, reference: str | os.PathLike[str] | None = None,
          tolerance_ms: float = 1.0, on_pair: Callable[[Edge], None] | None = None, **options) -> Timeline:
    """Put every input on one timeline.

    Parameters
    ----------
    paths : sequence of str or path
        Two or more inputs, anything ffmpeg reads (video included: only the
        audio is used).
    reference : str or path, optional
        One of ``paths``: the timeline is the group of inputs linked to it.
        Default: the largest group.
    tolerance_ms : float
        How far from 0 the offsets around a cycle of pairs may sum (1 ms).
    on_pair : callable, optional
        Called with each measured :class:`Edge` (for progress).
    **options
        The fields of :class:`audiosync.FileOptions` (``sample_rate``,
        ``max_seconds``, ``min_confidence``, ``method``, ``timeout``: per decode).

    Returns
    -------
    Timeline
    """
    names = [os.fspath(p) for p in paths]
    if len(names) < 2:
        raise ValueError(f"align needs at least 2 inputs, got {len(names)}")
    if len(set(names)) != len(names):
        repeated = sorted({p for p in names if names.count(p) > 1})
        raise ValueError(f"an input is given twice: {repeated[0]!r}")
    ref_index = None
    if reference is not None:
        if os.fspath(reference) not in names:
            raise ValueError(f"reference {os.fspath(reference)!r} is not one of the inputs")
        ref_index = names.index(os.fspath(reference))
    if not (isinstance(tolerance_ms, (int, float)) and not isinstance(tolerance_ms, bool)
            and math.isfinite(tolerance_ms) and tolerance_ms > 0):
        raise ValueError(f"tolerance_ms must be positive finite milliseconds, got {tolerance_ms!r}")
    opts = FileOptions(**options)
    rate = opts.sample_rate
    audio: list[np.ndarray] = []
    for start in range(0, len(names), _DECODE_AT_ONCE):
        # Several inputs at once already keep the cores busy: each with one ffmpeg.
        decoded, _ = decode_inputs(names[start:start + _DECODE_AT_ONCE], rate, opts.max_seconds, opts.timeout,
                                   halves=False)
        audio.extend(decoded)
    edges = []
    measure = replace(opts, drift=True)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            # With drift measured: the lag at j's start, and a pair whose drift smears the whole's
            # peak is judged on j played at i's pace (see sync_files).
            lag, est, lm, _ = locate(audio[i], audio[j], measure)
            edge = Edge(i, j, 1000.0 * lag / rate, est.confidence, est.evidence,
                        drift_ppm=None if lm is None else lm.drift_ppm)
            edge = _best_overlap_check(edge, audio[i], audio[j], rate, float(tolerance_ms))
            edges.append(edge)
            if on_pair is not None:
                on_pair(edge)
    drift = {(e.a, e.b): e.drift_ppm for e in edges if e.drift_ppm is not None}

    def alike(a: int, b: int, lag_ms: float) -> float | None:
        ppm = drift.get((a, b), None if (b, a) not in drift else -drift[(b, a)])
        return likeness(audio[a], audio[b], lag_ms, rate, float(tolerance_ms), ppm)

    timeline = place(names, [len(a) / rate for a in audio], edges, reference=ref_index,
                     min_confidence=opts.min_confidence, tolerance_ms=float(tolerance_ms), sample_rate=rate,
                     alike=alike)
    return _with_drift(timeline, ref_index)


def _fisher(r: float) -> float:
    return math.atanh(min(max(r, -0.999999), 0.999999))


def _best_overlap_check(edge: Edge, x: np.ndarray, y: np.ndarray, rate: int, tolerance_ms: float) -> Edge:
    """The pair as measured, or, when another lag's overlap matches far better than the measured
    lag's (the measured one lays the inputs over each other longer, at a place that only
    resembles: a loop heard again), that lag as a pair that is not confident alone. It can then
    place a file only when the timeline corroborates it (``_corroborated``)."""
    lag = edge.lag_ms * rate / 1000.0
    reach = tolerance_ms * rate / 1000.0
    overlap = min(len(y), len(x) - lag) - max(0.0, -lag)
    if overlap < CHECK_OVERLAP_S * rate:
        return edge  # too short an overlap to judge it by
    if edge.drift_ppm is not None and abs(edge.drift_ppm) * 1e-6 * overlap > reach:
        return edge  # one lag does not hold over the overlap: the drift's lag map is the check
    found = best_overlap(x, y, int(CHECK_OVERLAP_S * rate), at=lag, reach=int(math.ceil(reach)))
    if found is None:
        return edge
    if abs(found.lag - lag) <= reach or (
            found.at >= ALIKE_RATIO * found.coefficient
            and _fisher(found.at) >= _fisher(found.coefficient) - BEST_OVERLAP_Z):
        return replace(edge, best_overlap=found.coefficient)
    return Edge(edge.a, edge.b, 1000.0 * found.lag / rate, 0.0, float("nan"), drift_ppm=edge.drift_ppm,
                best_overlap=found.coefficient)


def _with_drift(timeline: Timeline, reference: int | None) -> Timeline:
    """Each placed input's clock drift against the timeline's reference (else its first input):
    the drift of every tree pair (from the pair's lag map), summed along the input's route."""
    edges = timeline.edges
    pair_ppm = {k: e.drift_ppm for k, e in enumerate(edges)}
    # The placed inputs are one group; its root (the walk's start) is the one with no route.
    root = next((i for i, f in enumerate(timeline.files) if not f.unplaced and not f.edges), None)
    against_first: dict[int, float | None] = {}
    for i, f in enumerate(timeline.files):
        if f.unplaced:
            continue
        total: float | None = 0.0
        at = root
        for k in f.edges:  # from the root to this input
            e, ppm = edges[k], pair_ppm[k]
            if ppm is None or total is None:
                total = None
                continue
            total, at = (total + ppm, e.b) if e.a == at else (total - ppm, e.a)
        against_first[i] = total
    base = against_first.get(reference, 0.0) if reference is not None else 0.0
    files = tuple(replace(f, drift_ppm=None if against_first.get(i) is None or base is None
                          else round(against_first[i] - base, 3))
                  for i, f in enumerate(timeline.files))
    return replace(timeline, files=files)


def likeness(x: np.ndarray, y: np.ndarray, lag_ms: float, rate: int, tolerance_ms: float,
             drift_ppm: float | None = None) -> float | None:
    """How alike ``y`` starting ``lag_ms`` after ``x`` sounds: the waveforms' best Pearson within
    ``tolerance_ms`` of that lag, or 0 when that is not beyond chance by EVIDENCE_95 decades (as
    a confident pair); None when they overlap by less than CHECK_OVERLAP_S (nothing to tell).
    ``drift_ppm``: how much faster y plays x. Then y is played at x's pace first when the drift
    moves the lag by more than the tolerance over the overlap (one lag would not hold), and the
    lag is looked for as much farther as the drift moves it over ``lag_ms`` (a timeline's offsets
    are in its reference's clock, not in x's). An overlap longer than LIKENESS_MAX_S is judged
    on its middle; None also when a wide reach is too long for the transforms (OVERLAP_LIMIT)."""
    lag = int(round(lag_ms * rate / 1000.0))  # y[i] meets x[i + lag]
    start, stop = max(0, -lag), min(len(y), len(x) - lag)
    if stop - start < CHECK_OVERLAP_S * rate:
        return None
    reach = int(math.ceil(tolerance_ms * rate / 1000.0))
    if drift_ppm is not None and abs(drift_ppm) * 1e-6 * (stop - start) > reach:
        y = warp(y, drift_ppm * 1e-6)
        start, stop = max(0, -lag), min(len(y), len(x) - lag)
        if stop - start < CHECK_OVERLAP_S * rate:
            return None
    if stop - start > LIKENESS_MAX_S * rate:  # the middle of a long overlap tells as much
        middle, half = (start + stop) // 2, int(LIKENESS_MAX_S * rate) // 2
        start, stop = middle - half, middle + half
    reach = int(math.ceil((tolerance_ms + abs(drift_ppm or 0.0) * 1e-6 * abs(lag_ms)) * rate / 1000.0))
    inner_y = y[start + reach:stop - reach]
    if 2 * reach + 1 <= _DIRECT_SHIFTS:
        rs = np.array([pearson(inner_y, x[start + reach + lag + d:stop - reach + lag + d])
                       for d in range(-reach, reach + 1)])
        best = parabola_top(rs, int(np.argmax(rs)))[1]  # as best_overlap judges a peak
    else:  # a wide reach (drift over a long offset): every shift at once, by transforms
        around = x[start + lag:stop + lag]
        if len(around) + len(inner_y) > OVERLAP_LIMIT:
            return None  # too long to tell this way
        found = best_overlap(around, inner_y, len(inner_y))
        if found is None:  # no shift correlates positively
            return 0.0
        best = found.coefficient
    xs = x[start + reach + lag:stop - reach + lag]
    return best if waveform_evidence(best, inner_y, xs) >= EVIDENCE_95 else 0.0
