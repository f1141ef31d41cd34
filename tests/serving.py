"""Start ``seqnet serve`` as a real subprocess on a free loopback port, for the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

# uvicorn logs this once its port is open, so a request sent after it is answered.
READY_LINE = "Uvicorn running on"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running ``seqnet serve`` process, where it listens, and what it printed so far."""

    process: subprocess.Popen
    url: str
    log: Path
    _lines: list[str] = field(default_factory=list)
    _ended: bool = False  # the child closed its output: nothing more will come
    _printed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def output(self) -> str:
        with self._printed:
            return "".join(self._lines)

    def wait_for_output(self, text: str, timeout: float = 60) -> bool:
        """Whether the server printed ``text`` within ``timeout`` seconds (or before exiting)."""
        with self._printed:
            self._printed.wait_for(lambda: self._ended or text in "".join(self._lines), timeout)
            return text in "".join(self._lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=60)

    def _copy_output(self) -> None:
        """Copy the child's output to ``log`` line by line, announcing each line."""
        with self.log.open("w") as sink:
            for line in self.process.stdout:  # a drained pipe never blocks the child
                sink.write(line)
                sink.flush()
                with self._printed:
                    self._lines.append(line)
                    self._printed.notify_all()
        with self._printed:
            self._ended = True
            self._printed.notify_all()


def serve_command(workdir: Path, port: int, *options: str) -> list[str]:
    command = [sys.executable, "-m", "seqnet", "serve", "--workdir", str(workdir)]
    return [*command, "--port", str(port), *options]


def start_server(workdir: Path, log: Path, *options: str, timeout: float = 180) -> Server:
    """Start the server and wait until it says that its port is open.

    Args:
        workdir: The run folder to serve.
        log: File the server's stdout and stderr are copied to.
        *options: More ``seqnet serve`` options, e.g. ``"--body-timeout", "1"``.
        timeout: Seconds to wait for the model to load and the port to open.
    """
    port = free_port()
    process = subprocess.Popen(
        serve_command(workdir, port, *options),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=os.environ,
    )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    threading.Thread(target=server._copy_output, daemon=True).start()
    if server.wait_for_output(READY_LINE, timeout):
        return server
    if process.poll() is None:
        server.stop()
    raise RuntimeError(f"seqnet serve did not start within {timeout} s:\n{server.output()}")
