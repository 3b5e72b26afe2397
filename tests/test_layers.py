"""The package's imports run one way, down the layers, with no cycle.

The graph is read from the installed package's sources (every ``import`` and
``from ... import`` of an audiosync module, at any depth in the file, so a
lazy import inside a function counts too) and the compiled modules' .pyx
``cimport``/``import`` lines.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap

import pytest

import audiosync

PACKAGE = os.path.dirname(audiosync.__file__)

# Bottom to top. A module may import only from layers strictly below its own.
LAYERS = [
    {"_fast_sizes"},                                   # measured data (bench/sizes.py)
    {"errors", "_sizes", "_fftw", "synth", "fileserver"},  # facts and leaves
    {"_planner"},                                      # FFTW's planner
    {"_xcorr", "wisdom"},                              # the kernel; wisdom on disk
    {"xcorr", "ffmpeg", "download", "capture"},        # validated wrapper; inputs
    {"method", "producer", "exports", "ring", "decoding"},  # the decision rule; producer threads; timeline files; a ring; decoders
    {"lagmap", "matches", "overlap", "halves"},        # the lag over time; every match; best overlap; split decoding
    {"options", "results"},                            # a sync's options and answers
    {"session", "offline"},                            # the job; whole-file sync
    {"tracker"},                                       # following the player
    {"listener"},                                      # the always-on capture
    {"control", "pulse_server", "plot", "timeline", "batch"},  # the module API; N files; many pairs
    {"demo"},
    {"cli"},
    {"__init__", "__main__"},
]
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_names() -> set[str]:
    names = set()
    for entry in os.listdir(PACKAGE):
        stem, ext = os.path.splitext(entry)
        if ext in (".py", ".pyx", ".pxd"):
            names.add(stem)
    return names


def _imports_of_py(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("audiosync."):
                    found.add(alias.name.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "audiosync":
                found.update(alias.name for alias in node.names)  # from audiosync import wisdom
            elif node.module.startswith("audiosync."):
                found.add(node.module.split(".")[1])
    return found


def _imports_of_cython(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return set(re.findall(r"^\s*(?:from|c?import)\s+audiosync\.(\w+)", text, re.M))


def import_graph() -> dict[str, set[str]]:
    names = _module_names()
    graph: dict[str, set[str]] = {}
    for name in names:
        edges: set[str] = set()
        for ext, read in ((".py", _imports_of_py), (".pyx", _imports_of_cython), (".pxd", _imports_of_cython)):
            path = os.path.join(PACKAGE, name + ext)
            if os.path.exists(path):
                edges |= read(path)
        # "from audiosync import __version__" and the like name no module.
        graph[name] = {e for e in edges if e in names and e != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_module_has_a_layer():
    assert _module_names() - set(LAYER_OF) == set(), "add the new module to LAYERS"


def test_the_import_graph_has_no_cycle():
    assert _cycle(import_graph()) is None


def test_imports_only_go_down_the_layers():
    upward = [(name, target) for name, targets in import_graph().items() for target in targets
              if LAYER_OF[target] >= LAYER_OF[name]]
    assert upward == [], f"imports of a module at the same layer or above: {upward}"


def test_the_checks_can_fail():
    # A graph with a cycle is seen as one; an upward edge would be too.
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert LAYER_OF["wisdom"] < LAYER_OF["xcorr"] < LAYER_OF["method"] < LAYER_OF["session"] < LAYER_OF["control"]
    assert "wisdom" in import_graph()["xcorr"] and "_planner" in import_graph()["_xcorr"]


@pytest.mark.timeout(60)
def test_import_is_light(tmp_path):
    """``import audiosync`` loads no optional extra (matplotlib, yt-dlp, pulsectl), reads no wisdom,
    and loads no numpy: neither does the command's module, which starts its decoders first."""
    script = textwrap.dedent("""
        import sys, audiosync, audiosync.cli
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "yt_dlp", "pulsectl", "numpy"))
        from audiosync import wisdom
        print(heavy, wisdom._loaded)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         timeout=60, cwd=tmp_path).stdout
    assert out.strip() == "[] False", out


def test_every_public_name_is_found_where_type_checkers_read_it():
    """The package's names load on first use: each one in ``__all__`` resolves, from the module
    the ``TYPE_CHECKING`` imports (what type checkers and editors read) name."""
    with open(os.path.join(PACKAGE, "__init__.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    typed = {alias.name: node.module.split(".")[1] for block in tree.body if isinstance(block, ast.If)
             for node in ast.walk(block) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert set(typed) | {"__version__"} == set(audiosync.__all__)
    assert typed == audiosync._HOME_OF
    for name, module in typed.items():
        value = getattr(audiosync, name)
        assert value is getattr(sys.modules[f"audiosync.{module}"], name), name
    assert callable(audiosync.batch), "the batch module's import hid the batch function"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        audiosync.nope  # noqa: B018
    assert "sync_files" in dir(audiosync)


@pytest.mark.timeout(60)
def test_a_submodule_reads_as_an_attribute_of_the_package(tmp_path):
    """``audiosync.xcorr.working_length`` and the like work after a bare ``import audiosync``,
    as when the package imported every module."""
    script = "import audiosync; print(audiosync.xcorr.working_length(1000), audiosync._planner.planning_stats()['plans'])"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         timeout=60, cwd=tmp_path).stdout
    assert out.split() == ["1000", "0"], out
