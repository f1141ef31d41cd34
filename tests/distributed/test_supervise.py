"""The process supervisor of the distributed tests: a hang, a crash or a stray child can never
pass silently or outlive its test."""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest
from supervise import processes_with_token, run_processes

pytestmark = pytest.mark.distributed

QUIET = {**os.environ, "PYTHONFAULTHANDLER": "1"}


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_hang_is_stopped_with_its_stack(tmp_path):
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 3 s") as failure:
        run_processes(python("import time\ntime.sleep(600)"), [QUIET], tmp_path, timeout=3)
    assert time.monotonic() - started < 30
    assert "killed by SIGABRT" in str(failure.value)
    # faulthandler's stack of the stuck process: where it was when it was aborted.
    assert "Fatal Python error: Aborted" in str(failure.value)
    assert 'File "<string>", line 2 in <module>' in str(failure.value)


def test_a_crash_is_named_by_its_signal(tmp_path):
    crash = python("import ctypes\nctypes.string_at(0)")
    with pytest.raises(AssertionError, match="process 0 failed") as failure:
        run_processes(crash, [QUIET], tmp_path, timeout=60)
    assert "killed by SIGSEGV" in str(failure.value)
    assert "Segmentation fault" in str(failure.value)


def test_a_failed_process_stops_its_waiting_peers(tmp_path):
    """One process fails, its peer would wait for it forever: both are reported within grace."""
    code = "import os, sys, time\nif os.environ['RANK'] == '1': sys.exit(3)\ntime.sleep(600)"
    environments = [{**QUIET, "RANK": str(rank)} for rank in (0, 1)]
    with pytest.raises(AssertionError, match="process 1 failed and the others") as failure:
        run_processes(python(code), environments, tmp_path, timeout=120, grace=1)
    assert "process 1: exit status 3" in str(failure.value)


def test_no_process_outlives_the_run(tmp_path):
    """A child in a session of its own, as torchrun starts its workers, is found and killed."""
    code = (
        "import os, subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
        " start_new_session=True)\n"
        "print(os.environ['SEQNET_TEST_RUN'], flush=True)\n"
    )
    run_processes(python(code), [QUIET], tmp_path, timeout=60)
    token = (tmp_path / "process-0.log").read_text().strip()
    assert token and processes_with_token(token) == []


def test_native_stacks_of_a_hang_where_py_spy_is_installed(tmp_path, monkeypatch):
    py_spy = shutil.which("py-spy") or os.environ.get("SEQNET_PY_SPY")
    if not py_spy:
        pytest.skip("py-spy is not installed")
    monkeypatch.setenv("SEQNET_PY_SPY", py_spy)
    with pytest.raises(AssertionError, match="native stacks of pid") as failure:
        run_processes(python("import time\ntime.sleep(600)"), [QUIET], tmp_path, timeout=3)
    assert "<module>" in str(failure.value)
    assert (tmp_path / "native-stacks.txt").is_file()
