"""The package's layout rules (docs/DESIGN.md), read off the source with `ast`: modules stay small, imports sit at the
top of their files, no stage imports from a later one, and no two modules import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hybridbatch"

# The pipeline's order. A module may import from its own stage and any earlier one. `errors`, `provenance`, `outputs` and
# `device` are shared by every stage; `models` loads any model for training, evaluation and analysis.
STAGES = ["base", "data", "sampling", "models", "training", "evaluation", "analysis", "report", "experiments", "cli"]
BASE = {"errors", "provenance", "outputs", "device"}
FACADES = {"hybridbatch", "hybridbatch.__main__"}  # the package's public names and `python -m hybridbatch`

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
MAX_INNER_IMPORT_SHARE = 0.15


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(SRC.rglob("*.py"))}


def _target(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package modules an import statement names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "hybridbatch"]
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)]
        name = ".".join(base + ([node.module] if node.module else []))
    else:
        name = node.module or ""
    return [name] if name.split(".")[0] == "hybridbatch" else []


def _imports(module: str, path: Path, tree: ast.Module) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for each of the package's own imports."""
    found: list[tuple[str, bool]] = []

    def walk(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((t, inside) for t in _target(module, path, child))
            walk(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    walk(tree, False)
    return found


def _stage(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    head = parts[1]
    if head in BASE:
        return 0
    return STAGES.index(head) if head in STAGES else None


MODULES = _modules()


def test_every_module_has_a_stage():
    unplaced = [m for m in MODULES if m not in FACADES and _stage(m) is None]
    assert not unplaced, f"modules outside the pipeline's stages (add them to a stage folder): {unplaced}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module):
    path, _ = MODULES[module]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(SRC.parent)} has {lines} lines (at most {MAX_MODULE_LINES})"


def test_function_size():
    long = []
    for module, (path, tree) in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_import_from_a_later_stage():
    backwards = []
    for module, (path, tree) in MODULES.items():
        if module in FACADES:
            continue
        here = _stage(module)
        for target, _ in _imports(module, path, tree):
            there = _stage(target)
            if target == "hybridbatch":
                backwards.append(f"{module} -> hybridbatch (the facade; import the defining module)")
            elif there is not None and here is not None and there > here:
                backwards.append(f"{module} ({STAGES[here]}) -> {target} ({STAGES[there]})")
    assert not backwards, "imports that run back up the pipeline:\n" + "\n".join(backwards)


def test_imports_sit_at_the_top():
    own = [inside for module, (path, tree) in MODULES.items() for _, inside in _imports(module, path, tree)]
    share = sum(own) / len(own)
    assert share <= MAX_INNER_IMPORT_SHARE, (
        f"{sum(own)} of the package's {len(own)} own imports ({share:.0%}) sit inside functions "
        f"(at most {MAX_INNER_IMPORT_SHARE:.0%})"
    )


def test_no_module_circles():
    """No cycle among modules. Importing a package runs its `__init__`, so its re-exports are edges too: a module
    that imports its own package from inside it closes a circle."""
    graph: dict[str, set[str]] = {}
    for module, (path, tree) in MODULES.items():
        if module in FACADES:
            continue
        edges = set()
        for target, _ in _imports(module, path, tree):
            while target not in MODULES and "." in target:  # `from pkg.mod import name` where name is a function
                target = target.rsplit(".", 1)[0]
            if target != module and target not in FACADES:
                edges.add(target)
        graph[module] = edges
    cycles: list[str] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "module import circles:\n" + "\n".join(cycles)
