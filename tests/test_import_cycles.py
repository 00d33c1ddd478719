"""No import cycles inside minimind/ and minimind_cli/, counting lazy (function-level) imports too.

A lazy import that exists only to dodge a cycle still is one: the two modules cannot be understood
or loaded apart. Lazy imports for speed (torch inside a CLI command) are fine; they just must not
close a loop. Imports under ``if TYPE_CHECKING:`` are for annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("minimind", "minimind_cli")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, name: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """Every import statement anywhere in ``tree`` as (module, names imported from it; empty for
    ``import x``), leaving out ``if TYPE_CHECKING:`` blocks. Relative imports are made absolute."""
    out: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            out.append((module, [alias.name for alias in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _with_packages(module: str) -> list[str]:
    """``a.b.c`` and the packages whose ``__init__`` importing it runs: ``a.b``, ``a``."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of these packages that importing it (or calling into it) loads.

    ``from x import y`` loads ``x.y`` when that is a module, else ``x`` (y is a name in it);
    either way also the packages above (their ``__init__`` runs), except those that contain the
    importing module itself (they are loaded already)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        own = set(_with_packages(name))
        targets: set[str] = set()
        for module, names in _imports(ast.parse(path.read_text(encoding="utf-8")), name, is_package):
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            loaded = submodules if submodules and len(submodules) == len(names) else [module, *submodules]
            for target in loaded:
                targets.update(t for t in _with_packages(target) if t in modules and t not in own)
        graph[name] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each with one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
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
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_one_cycle(graph, set(c)) for c in components]


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest loop through the component's first module, for the failure message."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return sorted(component)


def test_the_graph_sees_lazy_and_from_imports():
    graph = import_graph()
    assert "minimind.run_dir" in graph["minimind.checkpoint"]  # a module-level `from x import y`
    assert "minimind.run_summary" in graph["minimind_cli.commands.runs"]  # inside a function


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
