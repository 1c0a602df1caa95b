"""No import circle in `uniad_edge`: every import counts, module-level, type-only
(`if TYPE_CHECKING:`) and lazy ones inside functions alike, and importing `a.b.c` from outside
package `a.b` also runs `a/b/__init__.py`, so that edge counts too. A circle that Python
happens to tolerate today (a lazy or type-only import) still ties two rooms together.

The same graph also holds the runtime to its layer: nothing it reaches, through any chain of
imports (a factory function's local import included), belongs to a layer above it."""

from __future__ import annotations

import ast
from pathlib import Path

import uniad_edge

ROOT = Path(uniad_edge.__file__).parent
PACKAGE = "uniad_edge"


def module_names() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (`__init__` files as the package)."""
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = (PACKAGE, *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of the package that `module` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = (
                _absolute(module, is_package, node.level, node.module)
                if node.level
                else node.module or ""
            )
            targets = [origin]
            targets += [f"{origin}.{alias.name}" for alias in node.names]
        for target in targets:
            if not target.startswith(PACKAGE):
                continue
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # a.b.c runs a/__init__, a/b/__init__ first
                name = ".".join(parts[:i])
                inside = module == name or module.startswith(name + ".")
                if name in known and not inside:
                    found.add(name)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    known = module_names()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

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
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


ABOVE_RUNTIME = {
    "backends", "bench", "calibrate", "cli", "data", "demo", "evaluate", "export", "model",
    "serve", "train",
}  # fmt: skip
"""Second components of `uniad_edge.X` that the runtime must never reach."""


def reachable(graph: dict[str, set[str]], starts: list[str]) -> set[str]:
    """Every module some module of `starts` imports, directly or through others."""
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def above_runtime(graph: dict[str, set[str]]) -> list[str]:
    runtime = [m for m in graph if m.startswith(f"{PACKAGE}.runtime")]
    return sorted(
        m
        for m in reachable(graph, runtime)
        if m.split(".")[1:2] and m.split(".")[1] in ABOVE_RUNTIME
    )


def test_the_walker_sees_lazy_type_only_and_package_edges(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    known = module_names()
    source = known["uniad_edge.runtime.backends.model_choice"]
    edges = imports_of("uniad_edge.runtime.backends.model_choice", source, known)
    assert "uniad_edge.trt.environment" in edges  # a lazy import inside a function
    assert "uniad_edge.trt" in edges  # the package's __init__ runs first
    lazy = tmp_path / "registry.py"  # a factory's local import, one layer further up
    lazy.write_text("def torch_row():\n    from ...backends import TORCH\n\n    return TORCH\n")
    name = "uniad_edge.runtime.backends.registry"
    graph = {**import_graph(), name: imports_of(name, lazy, known)}
    assert {"uniad_edge.backends", "uniad_edge.model"} <= set(above_runtime(graph))


def test_the_runtime_reaches_no_layer_above_it():
    assert above_runtime(import_graph()) == []


def test_uniad_edge_has_no_import_circle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)
