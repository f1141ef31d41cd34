"""The persistent compilation cache: filled by one JAX process, reused by the next.

Each check runs in a fresh interpreter, the only way to see what a *second* process gains, and
one whose backend is chosen here, whatever backend this test session runs.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

_JIT_TWICE_AS_A_NEW_PROCESS = """
import sys
import jax
import jax.numpy as jnp
from seqnet.compilation import enable_compilation_cache

hits = []
jax.monitoring.register_event_listener(
    lambda event, **_: hits.append(event) if event.endswith("/cache_hits") else None
)
print("DIR", enable_compilation_cache(sys.argv[1]))
print("DIR", enable_compilation_cache(sys.argv[1]))  # a second call changes nothing
jax.block_until_ready(jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.ones((16, 16))))
print("HITS", len(hits))
"""

_ENABLE = """
import sys
from seqnet.compilation import enable_compilation_cache
print("DIR", enable_compilation_cache(sys.argv[1]))
"""


def _run(code: str, backend: str, cache_dir) -> dict[str, str]:
    environment = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", code, str(cache_dir)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_a_second_jax_process_loads_what_the_first_compiled(tmp_path):
    cache_dir = tmp_path / "jax-compilation"
    first = _run(_JIT_TWICE_AS_A_NEW_PROCESS, "jax", cache_dir)
    assert first["DIR"] == str(cache_dir) and first["HITS"] == "0"
    entries = sorted(path.name for path in cache_dir.iterdir())
    assert entries, "the first process wrote nothing into the cache"
    second = _run(_JIT_TWICE_AS_A_NEW_PROCESS, "jax", cache_dir)
    assert int(second["HITS"]) >= 1
    assert sorted(path.name for path in cache_dir.iterdir()) == entries  # nothing recompiled


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_other_backends_are_left_alone(tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    cache_dir = tmp_path / "jax-compilation"
    assert _run(_ENABLE, backend, cache_dir)["DIR"] == "None"
    assert not cache_dir.exists()


def test_default_directory_is_inside_seqnets_cache(monkeypatch, tmp_path):
    from seqnet.compilation import default_compilation_cache_dir

    monkeypatch.setenv("SEQNET_CACHE_DIR", str(tmp_path))
    assert default_compilation_cache_dir() == tmp_path / "jax-compilation"
