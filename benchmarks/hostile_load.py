"""Hostile load on ``seqnet serve``: slow clients and huge headers beside normal clients.

It starts ``seqnet serve`` itself on a free port of 127.0.0.1 (never anything else) and
measures, for the backend named by KERAS_BACKEND:

1. ``normal`` clients alone for ``seconds`` (the baseline latency);
2. the same clients for ``seconds`` while ``slow`` clients hold connections open by
   trickling their headers or their bodies a few bytes a second, reconnecting whenever the
   server drops them;
3. the server's resident memory before and while ``hostile_connections`` clients each try
   to send a ``hostile_mb`` MB header;

then whether the server still answers and how many well-formed requests got a 5xx::

    KERAS_BACKEND=torch seqnet train --data synthetic --epochs 1 --workdir /tmp/serve-run
    KERAS_BACKEND=torch python -m benchmarks.hostile_load --workdir /tmp/serve-run

Every part is bounded in time and count and it stops the server itself. seqnet never
imports this module.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import httpx

from benchmarks.serving_load import _run, measure, start_server

SLOW_HEAD = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def resident_mib(pid: int) -> float:
    """A process's resident memory in MiB, from Linux's /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc: this measurement needs Linux")


async def _slow_client(port: int, trickle_body: bool, end: float, dropped: list) -> None:
    """Hold a connection by sending a byte a second until ``end``; reconnect when dropped.

    Args:
        port: The server's loopback port.
        trickle_body: Send complete headers and trickle the body, else trickle the headers.
        end: ``perf_counter`` time to stop at.
        dropped: One entry appended per connection the server closed.
    """
    while time.perf_counter() < end:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(SLOW_HEAD + (b"Content-Length: 1000\r\n\r\n" if trickle_body else b""))
        try:
            while time.perf_counter() < end:
                writer.write(b"a" if trickle_body else b"X-Slow: a\r\n")
                await writer.drain()
                try:  # the server answering (408) or closing ends this connection
                    await asyncio.wait_for(reader.read(65536), 1.0)
                except TimeoutError:
                    continue
                dropped.append(1)
                break
        except OSError:
            dropped.append(1)
        finally:
            writer.close()


async def measure_under_slow_clients(
    url: str, normal: int, slow: int, seconds: float, reviews: int
) -> dict:
    """``measure`` with ``slow`` slow clients (half trickling headers, half bodies) beside."""
    port = int(url.rsplit(":", 1)[1])
    end = time.perf_counter() + 1.0 + seconds  # measure's warm-up second included
    dropped: list = []
    slow_clients = (_slow_client(port, index % 2 == 1, end, dropped) for index in range(slow))
    summary, *_ = await asyncio.gather(measure(url, normal, seconds, reviews), *slow_clients)
    return {**summary, "slow_connections_dropped_by_server": len(dropped)}


def hostile_headers(port: int, pid: int, connections: int, megabytes: int) -> dict:
    """Resident memory before and while ``connections`` clients push ``megabytes`` MB headers.

    The clients keep their sockets open until memory is read, so that a server that
    buffered the headers would still hold them.
    """
    import socket

    before = resident_mib(pid)
    sockets, refused = [], 0
    for _ in range(connections):
        connection = socket.create_connection(("127.0.0.1", port), timeout=30)
        sockets.append(connection)
        try:
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            for _ in range(megabytes):
                connection.sendall(b"a" * 1_048_576)
        except OSError:  # the server hung up on it
            refused += 1
    during = resident_mib(pid)
    for connection in sockets:
        connection.close()
    return {
        "attempted_mb": connections * megabytes,
        "connections_refused": refused,
        "rss_before_mib": round(before, 1),
        "rss_during_mib": round(during, 1),
        "rss_growth_mib": round(during - before, 1),
    }


def run_hostile_load(
    workdir: str | Path,
    normal: int = 32,
    slow: int = 64,
    seconds: float = 30,
    reviews: int = 4,
    hostile_connections: int = 10,
    hostile_mb: int = 10,
) -> dict:
    """Start ``seqnet serve`` on ``workdir``, run the three parts, and report the figures."""
    process, url = start_server(Path(workdir))
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    try:
        baseline = _run(measure(url, normal, seconds, reviews))
        under_slow = _run(measure_under_slow_clients(url, normal, slow, seconds, reviews))
        port = int(url.rsplit(":", 1)[1])
        memory = hostile_headers(port, process.pid, hostile_connections, hostile_mb)
        health = httpx.get(url + "/health", timeout=30).json()
        alive = process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=60)
    ratio = under_slow["p99_ms"] / baseline["p99_ms"] if baseline["p99_ms"] else float("nan")
    return {
        "backend": health["backend"],
        "normal_clients": normal,
        "slow_clients": slow,
        "baseline": baseline,
        "with_slow_clients": under_slow,
        "p99_ratio": round(ratio, 2),
        "hostile_headers": memory,
        "server_alive_after": alive,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Hostile load on seqnet serve, on loopback.")
    parser.add_argument("--workdir", type=Path, required=True, help="run folder to serve")
    parser.add_argument("--normal", type=int, default=32, help="normal clients (32)")
    parser.add_argument("--slow", type=int, default=64, help="slow clients (64)")
    parser.add_argument("--seconds", type=float, default=30, help="seconds per part (30)")
    parser.add_argument("--hostile-mb", type=int, default=10, help="MB per hostile header (10)")
    args = parser.parse_args()
    if not (1 <= args.normal <= 256 and 0 <= args.slow <= 256 and 0 < args.seconds <= 120):
        parser.error("--normal must be 1 to 256, --slow 0 to 256 and --seconds 0 to 120")
    if not 1 <= args.hostile_mb <= 20:
        parser.error("--hostile-mb must be 1 to 20")
    figures = run_hostile_load(
        args.workdir, args.normal, args.slow, args.seconds, hostile_mb=args.hostile_mb
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
