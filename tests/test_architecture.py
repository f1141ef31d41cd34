"""The package's shape: imports point down, the library never imports the benchmark harness.

Read from the source with ``ast`` (function-level imports included), so a cycle hidden in a
function body, or a benchmark import on a rarely taken path, is caught without running it.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "seqnet"
BACKENDS = ("tensorflow", "jax", "torch")
# Stands in for TensorFlow, first on the path: an import of it is logged with its stack and then
# fails, so an import of TensorFlow shows even where the real one is installed (JAX's tests
# environment has it, for its SavedModel export) and even where the importer catches the error.
FAKE_TENSORFLOW = """
import os, traceback
with open(os.environ["SEQNET_TEST_TENSORFLOW_LOG"], "a") as log:
    log.write("".join(traceback.format_stack()) + "\\n")
raise ImportError("tensorflow is blocked by test_importing_seqnet_never_imports_tensorflow")
"""


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


def _backend_without_tensorflow() -> str | None:
    """This environment's Keras backend, or another one installed, unless only TensorFlow is."""
    own = os.environ.get("KERAS_BACKEND", "tensorflow")
    for backend in (own, "jax", "torch"):
        if backend != "tensorflow" and importlib.util.find_spec(backend):
            return backend
    return None


def _backend_free_modules() -> list[str]:
    """Every seqnet module but the backend-specific ones (``parallel.jax_engine``, ...)."""
    names = (_module_name(path) for path in PACKAGE.rglob("*.py"))
    return sorted(
        name
        for name in names
        if not name.endswith("__main__") and not any(b in name.split(".")[-1] for b in BACKENDS)
    )


def _run_with_fake_tensorflow(code: str, backend: str, tmp_path: Path):
    """Run ``code`` in a fresh Python under ``backend`` with ``FAKE_TENSORFLOW`` first on the path;
    return the finished process and the log of the stacks that imported TensorFlow."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text(FAKE_TENSORFLOW)
    log = tmp_path / "tensorflow-imports.log"
    path = [str(fake.parent), str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")]
    environment = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": os.pathsep.join(filter(None, path)),
        "SEQNET_TEST_TENSORFLOW_LOG": str(log),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300
    )
    return result, log


def test_importing_seqnet_never_imports_tensorflow(tmp_path):
    backend = _backend_without_tensorflow()
    if backend is None:  # TensorFlow's environment: its backend imports TensorFlow by design
        pytest.skip("no Keras backend but TensorFlow is installed")
    modules = _backend_free_modules()
    assert {"seqnet", "seqnet.cli", "seqnet.train", "seqnet.export"} <= set(modules)
    probe, log = _run_with_fake_tensorflow("import tensorflow", backend, tmp_path)
    assert (
        "blocked by test_importing" in probe.stderr and log.is_file()
    )  # the fake is the one found
    log.unlink()

    code = f"import sys, {', '.join(modules)}; print('tensorflow' in sys.modules)"
    result, log = _run_with_fake_tensorflow(code, backend, tmp_path)

    assert not log.exists(), (
        f"importing seqnet under {backend} imported TensorFlow:\n{log.read_text()}"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False"
