"""The package's shape: imports point down, the library never imports the benchmark harness.

Read from the source with ``ast`` (function-level imports included), so a cycle hidden in a
function body, or a benchmark import on a rarely taken path, is caught without running it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "seqnet"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports at run time, at the top or inside functions (not the
    ``if TYPE_CHECKING:`` imports that exist for type checkers only)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            node.body = []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from seqnet.parallel import replicas` may name a submodule
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: _imports(path) & modules.keys() - {name} for name, path in modules.items()}


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start, if one exists."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for target in graph[node]:
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def test_no_module_imports_a_module_that_imports_it_back():
    graph = _import_graph()
    assert "seqnet.parallel.replicas" in graph["seqnet.parallel.jax_engine"]  # the graph is read
    cycles = [_cycle_through(graph, name) for name in graph]
    assert [cycle for cycle in cycles if cycle] == []


def test_the_library_never_imports_the_benchmark_harness():
    for path in PACKAGE.rglob("*.py"):
        harness = {name for name in _imports(path) if name.split(".")[0] == "benchmarks"}
        assert not harness, f"{path.name} imports {harness}"


def test_importing_the_public_modules_loads_nothing_from_benchmarks():
    code = (
        "import json, sys; import seqnet, seqnet.train, seqnet.predict, seqnet.cli; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'benchmarks')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize("variable", ["KERAS_BACKEND"])
def test_the_library_never_sets_the_backend(variable):
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                assert variable not in ast.unparse(node), f"{path.name} sets {variable}"
