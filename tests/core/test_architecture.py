"""The shape of the code: one-way imports (pages -> ui -> retention_core), no import cycle, small modules, short
functions.

The import graph is read from the sources with ``ast`` (imports inside functions included, since a lazy import is
still a dependency), over the library (``retention_core``), the Streamlit helpers (``ui``) and the page scripts
(``pages``). A package importing its own submodules is not an edge of a cycle: that is how a package exposes
them (``retention_core.models`` loads its model modules lazily, and they read the registry back).
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("retention_core", "ui", "pages")

MAX_LINES = {"retention_core": 700, "ui": 450, "pages": 150}
MAX_FUNCTION_LINES = 80



# ------------------------------------------------------------------------------------------------ the graph
def _sources() -> dict[str, Path]:
    """Module name -> file, for every Python file of the three packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``from ... import`` statement names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(path) else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the three packages that ``module`` imports, anywhere in its source."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            # ``from package import submodule`` imports the submodule; ``from module import name`` the module
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known and name != module:
                out.add(name)
    return out


def _external(path: Path) -> set[str]:
    """The top-level names of every module a file imports (``streamlit``, ``argparse``, ``retention_core``...)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


@lru_cache(maxsize=1)
def import_graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {m: _targets(m, p, known) for m, p in sources.items()}


def _own_submodule(a: str, b: str) -> bool:
    return b.startswith(a + ".") and _is_package(_sources()[a])


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# ------------------------------------------------------------------------------------------------ imports
def test_the_graph_sees_relative_lazy_and_package_imports():
    graph = import_graph()
    assert "retention_core.bundle" in graph["retention_core.training"]  # from .bundle import refit_note, ...
    assert "retention_core.models" in graph["retention_core.training"]  # from .models import REGISTRY, ...
    assert {"ui.jobs", "ui.state"} <= graph["ui.widgets"]  # from . import jobs, state
    assert "retention_core.training" in graph["ui.jobs"]  # imported inside a function
    assert "retention_core.io" in graph["ui.tables"]  # from retention_core import io as rio
    assert all(any(t.startswith("ui.") for t in graph[m]) for m in graph if m.startswith("pages."))


def test_no_import_cycle():
    graph = {m: {t for t in targets if not _own_submodule(m, t)} for m, targets in import_graph().items()}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_find_cycles_finds_one():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_pages_import_only_ui_and_streamlit():
    sources = _sources()
    pages = {m: p for m, p in sources.items() if m.startswith("pages.")}
    assert len(pages) == 8
    pages["app"] = ROOT / "app.py"  # the router too
    offenders = {m: sorted(_external(p) - {"ui", "streamlit", "__future__"}) for m, p in pages.items()}
    offenders = {m: bad for m, bad in offenders.items() if bad}
    assert not offenders, f"a page imports only ui (and streamlit): {offenders}"


def test_the_library_imports_neither_streamlit_nor_argparse():
    sources = _sources()
    offenders = []
    for m, path in sources.items():
        if not m.startswith("retention_core"):
            continue
        names = _external(path)
        if "streamlit" in names or ("argparse" in names and m != "retention_core.cli"):
            offenders.append(m)
    assert not offenders, f"only the command line imports argparse, and nothing imports streamlit: {offenders}"


def test_the_ui_never_imports_the_pages():
    graph = import_graph()
    offenders = {m: sorted(t for t in ts if not t.startswith(("retention_core", "ui"))) for m, ts in graph.items()
                 if m.startswith("ui")}
    assert not {m: t for m, t in offenders.items() if t}


# ------------------------------------------------------------------------------------------------ sizes
def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _long_modules() -> dict[str, int]:
    out = {}
    for path in _sources().values():
        rel = _rel(path)
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES[rel.split("/")[0]]:
            out[rel] = n
    return out


def _long_functions() -> dict[str, int]:
    out = {}
    for path in _sources().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out[f"{_rel(path)}::{node.name}"] = n
    return out


def test_modules_stay_small():
    over = _long_modules()
    assert not over, f"modules over their limit ({MAX_LINES} lines): {over}"


def test_functions_stay_short():
    over = _long_functions()
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines: {over}"



def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for t in graph.get(stack.pop(), ()):
            if t not in seen:
                seen.add(t)
                stack.append(t)
    return seen


def test_training_does_not_import_monitoring():
    """Training feeds monitoring (the drift reference saved with a run, ``retention_core.drift_reference``) and never
    imports it, not even through another module: monitoring reads runs, a floor above training."""
    reached = _reachable(import_graph(), "retention_core.training")
    assert "retention_core.drift_reference" in reached
    assert not {m for m in reached if m == "retention_core.monitor" or m.startswith("retention_core.monitor.")}
