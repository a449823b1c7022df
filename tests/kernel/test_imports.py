"""The layering, read from the source: the kernel imports neither half, the connectors never
import the pipeline (nor the command layer), the pipeline never imports the connectors, and no
project module imports itself through others. Every import counts, including the ones inside
functions (a lazy import is still a dependency); only ``if TYPE_CHECKING:`` blocks do not."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Folder -> the package it is installed as (pyproject.toml's package-dir).
PACKAGES = {"newsmon": "newsmon", "pipeline": "newsmon.pipeline",
            "connectors": "newsmon.connectors"}
HALVES = ("newsmon.pipeline", "newsmon.connectors", "newsmon.cli", "newsmon.ops", "newsmon.serve")


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT / folder)
            # newsmon/pipeline and newsmon/connectors are links to the folders themselves.
            if folder == "newsmon" and relative.parts[0] in ("pipeline", "connectors"):
                continue
            parts = [package, *relative.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(name: str, tree: ast.AST) -> Iterator[str]:
    """The project modules ``name`` imports."""
    package = name if _is_package(name) else name.rpartition(".")[0]
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from package import module`` imports the module; ``from module import name``
            # the module.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


GRAPH = {name: set(_imported(name, ast.parse(path.read_text(encoding="utf-8"))))
         for name, path in MODULES.items()}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_walk_finds_the_project() -> None:
    # A walk that found nothing would pass every rule below.
    assert {"newsmon.models", "newsmon.connectors.runner", "newsmon.pipeline.app",
            "newsmon.cli", "newsmon.ops.loading"} <= set(MODULES)
    assert "newsmon.connectors.feeds" in GRAPH["newsmon.connectors.runner"]
    assert "newsmon.ops.orchestrate" in GRAPH["newsmon.cli.run"]


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("newsmon.connectors", ("newsmon.pipeline", "newsmon.cli", "newsmon.ops")),
    ("newsmon.pipeline", ("newsmon.connectors", "newsmon.cli", "newsmon.ops")),
    ("newsmon.ops", ("newsmon.cli",)),
])
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    wrong = sorted(f"{name} -> {target}" for name, targets in GRAPH.items()
                   if _within(name, layer) for target in targets
                   if any(_within(target, f) for f in forbidden))
    assert wrong == []


def test_the_kernel_imports_neither_half() -> None:
    kernel = [name for name in GRAPH if not any(_within(name, h) for h in HALVES)]
    assert "newsmon.config" in kernel
    wrong = sorted(f"{name} -> {target}" for name in kernel for target in GRAPH[name]
                   if any(_within(target, h) for h in HALVES))
    assert wrong == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_project_modules() -> None:
    assert _cycles(GRAPH) == []
