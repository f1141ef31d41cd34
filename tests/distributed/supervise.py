"""Run the distributed tests' processes so that no failure can pass silently or hang CI.

Every process a test starts gets a deadline. Its output goes to a log file (a pipe that nobody
drains can block a chatty worker while its peers wait for it in a collective). When one process
fails, its peers get a short grace period and are then stopped; when the deadline passes, all
are. Stopping sends SIGABRT first, so each Python process prints every thread's stack
(``PYTHONFAULTHANDLER``) and a deadlock shows where it is, then SIGKILL to each process group.
Where py-spy is installed (on PATH, or named by ``SEQNET_PY_SPY``), the native stacks of the
stuck processes are taken before that: a deadlock between C++ threads hides below Python's.

Processes are found by a token in their environment, not by parentage: torchrun starts its
workers in sessions of their own, and a worker whose launcher died is no longer anyone's child,
yet both inherit the environment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

RUN_TOKEN_VARIABLE = "SEQNET_TEST_RUN"
# Seconds a run may take, overridable for slow machines; bounded either way.
TIMEOUT_VARIABLE = "SEQNET_DISTRIBUTED_TIMEOUT"
DEFAULT_TIMEOUT = 420.0
# After one process fails, how long its peers may take to notice and exit by themselves.
GRACE_SECONDS = 30.0
LOG_TAIL = 6000  # characters of each process's log in a failure message
PY_SPY_VARIABLE = "SEQNET_PY_SPY"


@dataclass
class Started:
    """One process a test started, with the file that receives its stdout and stderr."""

    process: subprocess.Popen
    log: Path

    def status(self) -> str:
        """How it ended, in words: signals by name (a segfault must read as one)."""
        code = self.process.returncode
        if code is None:
            return "still running"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-LOG_TAIL:]


def default_timeout() -> float:
    """The per-run deadline: ``SEQNET_DISTRIBUTED_TIMEOUT`` seconds, else DEFAULT_TIMEOUT."""
    return float(os.environ.get(TIMEOUT_VARIABLE) or DEFAULT_TIMEOUT)


def run_processes(
    command: list[str],
    environments: list[dict[str, str]],
    logs: Path,
    timeout: float,
    grace: float = GRACE_SECONDS,
) -> None:
    """Start ``command`` once per environment, as a multi-host job would; all must exit 0.

    Raises AssertionError naming the failure (exit status or signal, or the timeout) with
    every process's log; whatever happens, no process of the run outlives this call.
    """
    token = uuid.uuid4().hex
    logs.mkdir(parents=True, exist_ok=True)
    started = [
        start(command, {**environment, RUN_TOKEN_VARIABLE: token}, logs / f"process-{index}.log")
        for index, environment in enumerate(environments)
    ]
    stacks = ""
    try:
        problem = wait_for(started, timeout, grace)
        if problem:
            stacks = native_stacks(processes_with_token(token), logs / "native-stacks.txt")
    finally:
        stop_run(token, started)
    if problem:
        raise AssertionError(failure_report(problem, command, started, stacks))


def failure_report(problem: str, command: list[str], started: list[Started], stacks: str) -> str:
    """What went wrong, the native stacks if any, and each process's status and log tail."""
    reports = [stacks[-LOG_TAIL:]] if stacks else []
    reports += [
        f"--- process {index}: {run.status()} ({' '.join(command)})\n{run.tail()}"
        for index, run in enumerate(started)
    ]
    return f"{problem}\n" + "\n".join(reports)


def start(command: list[str], environment: dict[str, str], log: Path) -> Started:
    """Start one process in a session of its own, so that its group can be killed whole.

    It runs in the log's folder, where a core dump of an aborted process lands too.
    """
    with log.open("wb") as sink:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            command,
            cwd=log.parent,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Started(process, log)


def wait_for(started: list[Started], timeout: float, grace: float) -> str | None:
    """Wait until all exit; None if all succeeded, else what went wrong first.

    Once one has failed, the others get ``grace`` seconds to exit before they count as stuck.
    """
    deadline = time.monotonic() + timeout
    failed_at = None
    while time.monotonic() < deadline:
        codes = [run.process.poll() for run in started]
        if None not in codes:
            failures = [index for index, code in enumerate(codes) if code != 0]
            return f"process {failures[0]} failed" if failures else None
        if failed_at is None and any(code not in (None, 0) for code in codes):
            failed_at = time.monotonic()  # its peers may wait for it forever in a collective
        if failed_at is not None and time.monotonic() - failed_at > grace:
            failure = next(i for i, code in enumerate(codes) if code not in (None, 0))
            return f"process {failure} failed and the others still ran {grace:.0f} s later"
        time.sleep(0.2)
    return f"timed out after {timeout:.0f} s (stacks of the stuck processes are in their logs)"


def stop_run(token: str, started: list[Started]) -> None:
    """Abort, then kill, every process carrying ``token`` and its process group; reap ours."""
    for signal_number, patience in ((signal.SIGABRT, 10.0), (signal.SIGKILL, 10.0)):
        members = processes_with_token(token)
        if not members:
            break
        send(members, signal_number)
        end = time.monotonic() + patience
        while processes_with_token(token) and time.monotonic() < end:
            time.sleep(0.2)
    for run in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.process.wait(timeout=10)


def native_stacks(pids: list[int], path: Path) -> str:
    """py-spy's dump of every thread of ``pids``, Python and native frames, also saved to
    ``path``; empty where py-spy is not installed."""
    py_spy = os.environ.get(PY_SPY_VARIABLE) or shutil.which("py-spy")
    if not py_spy or not pids:
        return ""
    dumps = []
    for pid in pids:
        try:
            dump = subprocess.run(
                [py_spy, "dump", "--native", "--pid", str(pid)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            dumps.append(f"--- native stacks of pid {pid}\n{dump.stdout}{dump.stderr}")
        except (OSError, subprocess.TimeoutExpired) as error:
            dumps.append(f"--- no native stacks of pid {pid}: {error}")
    path.write_text("\n".join(dumps))
    return "\n".join(dumps)


def send(pids: list[int], signal_number: int) -> None:
    """Signal each process exactly once: through its process group, or alone where it shares
    the test's own group. A second SIGABRT while faulthandler is still printing the first one's
    stacks would kill the process mid-dump."""
    groups = set()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group == os.getpgrp():
                os.kill(pid, signal_number)
            elif group not in groups:
                groups.add(group)
                os.killpg(group, signal_number)


def processes_with_token(token: str) -> list[int]:
    """Ids of the live processes whose environment holds ``RUN_TOKEN_VARIABLE=token``.

    Zombies have an empty environment and so do not count: they are already dead.
    """
    marker = f"{RUN_TOKEN_VARIABLE}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found
