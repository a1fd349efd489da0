"""The layering rules of docs/architecture.md, checked on every import of the source tree (those
inside functions too), so that neither an upward import nor a cycle can hide in a lazy import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("camera", "conditioning", "recon", "nvs", "benchmarks")
TOP = ("nvs.commands", "nvs.cli")  # the command layer: may import everything, imported by nothing below it
# layer -> the layers it may import (its own included)
ALLOWED = {
    "camera": {"camera"},
    "conditioning": {"camera", "conditioning"},
    "recon": {"camera", "recon"},
    "nvs": {"camera", "conditioning", "recon", "nvs"},
    "commands": {"camera", "conditioning", "recon", "nvs", "commands"},
    "benchmarks": {"camera", "conditioning", "recon", "nvs", "benchmarks"},
}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def layer(module: str) -> str:
    if any(module == t or module.startswith(t + ".") for t in TOP):
        return "commands"
    return module.split(".")[0]


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules that ``module`` imports anywhere in its file (resolved to modules, not names)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] not in PACKAGES:
                continue
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != module:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    known = set(files)
    return {m: imports(m, p, known) for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_layers_import_only_downward():
    graph = import_graph()
    upward = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets if layer(t) not in ALLOWED[layer(m)])
    assert not upward, "imports that point up a layer (docs/architecture.md):\n" + "\n".join(upward)


def test_nothing_imports_the_commands_or_the_benchmarks():
    graph = import_graph()
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        for t in targets
        if layer(t) in ("commands", "benchmarks") and layer(m) != layer(t)
    )
    assert not bad, "the top layer is imported by:\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_source_file_over_the_line_limit():
    long = sorted(
        f"{p.relative_to(ROOT)}: {n}"
        for p in source_files().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    )
    assert not long, f"files over {MAX_LINES} lines (split them by concern):\n" + "\n".join(long)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from camera.cameras import Cameras", {"camera.cameras"}),
        ("from camera import cameras", {"camera.cameras"}),
        ("import nvs.models.pathnvs as m", {"nvs.models.pathnvs"}),
        ("from . import cameras", {"camera.cameras"}),
        ("from .cameras import Cameras", {"camera.cameras"}),
        ("import torch", set()),
    ],
)
def test_imports_resolve_to_modules(tmp_path, source, expected):
    path = tmp_path / "views.py"
    path.write_text(f"def f():\n    {source}\n")
    assert imports("camera.views", path, {"camera", "camera.cameras", "camera.views", "nvs.models.pathnvs"}) == expected


def test_a_cycle_and_an_upward_import_are_caught():
    graph = {"camera.a": {"nvs.b"}, "nvs.b": {"camera.a"}, "nvs.c": set()}
    assert cycles(graph) == [["camera.a", "nvs.b"]]
    assert layer("nvs.commands.bench") == "commands" and "nvs" not in ALLOWED["camera"]
