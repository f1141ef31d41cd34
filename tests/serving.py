"""Start ``seqnet serve`` as a real subprocess on a free loopback port, for the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running ``seqnet serve`` process and where it listens."""

    process: subprocess.Popen
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=60)


def serve_command(workdir: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "seqnet", "serve", "--workdir", str(workdir), "--port", str(port)]


def start_server(workdir: Path, log: Path, timeout: float = 180) -> Server:
    """Start the server and wait until ``GET /health`` answers.

    Args:
        workdir: The run folder to serve.
        log: File for the server's stdout and stderr (a pipe could fill up and block it).
        timeout: Seconds to wait for the model to load and the port to open.
    """
    port = free_port()
    with log.open("wb") as sink:  # the child keeps its own handle
        process = subprocess.Popen(
            serve_command(workdir, port), stdout=sink, stderr=subprocess.STDOUT, env=os.environ
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"seqnet serve exited with {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"seqnet serve did not answer within {timeout} s:\n{server.output()}")
