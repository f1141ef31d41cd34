"""Load test of ``seqnet serve``: concurrent clients on loopback, throughput and latency.

It starts ``seqnet serve`` itself, for the backend named by KERAS_BACKEND, on a free port of
127.0.0.1 (never anything else), runs ``clients`` concurrent clients for ``seconds``, each
POSTing ``reviews`` reviews per request and sending the next request as soon as the answer
is in; then one client sending single reviews, for the latency of a lone request.

The clients share the server's cores, so their cost caps what is measured. With ``wrk`` on
the PATH (Debian: ``apt-get install wrk``; C, about a tenth of httpx's CPU per request) they
are wrk's connections; otherwise Python httpx clients, whose figures are then a lower bound
(measured on 2 cores: wrk 6,100 reviews/s, httpx 2,500, from the same server). The result
names the generator::

    KERAS_BACKEND=jax seqnet train --data synthetic --epochs 1 --workdir /tmp/serve-run
    KERAS_BACKEND=jax python -m benchmarks.serving_load --workdir /tmp/serve-run

seqnet never imports this module.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

_VOCABULARY = """
the a and of to is in it this that was film movie but for with as on not you his great good
bad boring terrible wonderful loved hated acting plot story characters script director ending
scene music beautiful awful funny dull brilliant waste time
"""
WORDS = _VOCABULARY.split()


def make_reviews(count: int, words: int = 230, seed: int = 0) -> list[str]:
    """Review-like texts of about IMDB's mean length (230 words)."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=words)) + "." for _ in range(count)]


# What uvicorn logs once its socket listens: the event start_server waits for.
LISTENING = "Uvicorn running on"


def start_server(workdir: Path, timeout: float = 300) -> tuple[subprocess.Popen, str]:
    """``seqnet serve`` on a free loopback port, once it listens.

    Waits for the server's own word that its socket listens (or for it to exit), rather than
    polling the port with sleeps in between; ``timeout`` only stops a server that hangs.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "seqnet", "serve", "--workdir", str(workdir)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=os.environ,
    )
    listening = threading.Event()
    threading.Thread(target=_drain, args=(process, listening), daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    if listening.wait(timeout) and _healthy(url):
        return process, url
    process.kill()
    raise RuntimeError(f"seqnet serve on {workdir} did not start (exit {process.poll()})")


def _healthy(url: str) -> bool:
    """Whether the server at ``url`` answers ``/health`` (False if it has gone)."""
    try:
        return httpx.get(url + "/health", timeout=30).status_code == 200
    except httpx.TransportError:
        return False


def _drain(process: subprocess.Popen, listening: threading.Event) -> None:
    """Read the server's output to its end, so the pipe never fills and blocks it; set
    ``listening`` once it says it listens, or once it exits without having said so."""
    for line in process.stdout:
        if LISTENING.encode() in line:
            listening.set()
    listening.set()


async def _client(url, bodies, reviews, window, latencies, errors) -> None:
    """One client on its own connection: request after request, recording those in ``window``.

    Each client has its own ``AsyncClient``: one pool shared by all clients costs the load
    generator several times more CPU per request, and it shares the server's two cores.

    Args:
        url: The server's base URL.
        bodies: Request bodies, encoded up front (the client's CPU is the server's too).
        reviews: Reviews per body.
        window: ``(start, end)`` on the ``perf_counter`` clock; requests sent before
            ``start`` warm the connection up and are not recorded.
        latencies: Seconds per successful request in the window (appended to).
        errors: One entry per failed request in the window (appended to).
    """
    rng = random.Random(len(latencies))
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while (start := time.perf_counter()) < window[1]:
            try:
                response = await client.post(
                    "/predict", content=rng.choice(bodies), headers=headers
                )
                ok = response.status_code == 200 and len(response.json()) == reviews
            except httpx.HTTPError:
                ok = False
            if start < window[0]:
                continue
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors.append(1)


async def measure(url: str, clients: int, seconds: float, reviews: int) -> dict:
    """Run ``clients`` concurrent clients for ``seconds`` and summarise their requests.

    Args:
        url: The server's base URL.
        clients: Concurrent clients, each with one request in flight at a time.
        seconds: How long to measure, after a one-second warm-up that is not counted.
        reviews: Reviews per request.
    """
    bodies = _bodies(reviews)
    latencies, errors = [], []
    window = (time.perf_counter() + 1.0, time.perf_counter() + 1.0 + seconds)
    await asyncio.gather(
        *(_client(url, bodies, reviews, window, latencies, errors) for _ in range(clients))
    )
    elapsed = time.perf_counter() - window[0]  # the last answers may come after the window
    return _summary(latencies, len(errors), elapsed, reviews)


# wrk's script: cycle through the bodies of a JSON Lines file (one request body per line),
# then print the figures as one JSON line. Latencies are in microseconds.
WRK_SCRIPT = """
local bodies, next_body = {}, 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[next_body])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "microseconds": %d, "errors": %d, "p50": %d, "p95": %d, "p99": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def measure_with_wrk(url: str, clients: int, seconds: float, reviews: int, folder: Path) -> dict:
    """``measure``'s figures from wrk: ``clients`` connections on one wrk thread, after a
    one-second warm-up run that is not counted. ``folder`` holds its script and bodies."""
    script, bodies = folder / "load.lua", folder / "bodies.jsonl"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    bodies.write_text("\n".join(body.decode() for body in _bodies(reviews)), encoding="utf-8")

    def wrk(duration: str) -> dict:
        options = ["-t1", f"-c{clients}", f"-d{duration}", "-s", str(script)]
        command = ["wrk", *options, f"{url}/predict", "--", str(bodies)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed: {done.stderr.strip() or done.stdout.strip()}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    wrk("1s")  # the warm-up
    figures = wrk(f"{max(1, round(seconds))}s")
    percentiles_ms = [figures[name] / 1000 for name in ("p50", "p95", "p99")]
    elapsed = figures["microseconds"] / 1e6
    return _figures(figures["requests"], percentiles_ms, figures["errors"], elapsed, reviews)


def _bodies(reviews: int) -> list[bytes]:
    """Request bodies of ``reviews`` review-like texts each, encoded up front."""
    pool = make_reviews(512)
    return [json.dumps({"texts": pool[i : i + reviews]}).encode() for i in range(0, 512, reviews)]


def _summary(latencies: list[float], errors: int, elapsed: float, reviews: int) -> dict:
    """``_figures`` of the httpx clients' latencies, in seconds per successful request."""
    ms = np.array(latencies) * 1000
    percentiles_ms = np.percentile(ms, [50, 95, 99]) if len(ms) else (float("nan"),) * 3
    return _figures(len(latencies), percentiles_ms, errors, elapsed, reviews)


def _figures(requests: int, percentiles_ms, errors: int, elapsed: float, reviews: int) -> dict:
    """Requests and reviews per second, latency p50 / p95 / p99 in ms, and the error count."""
    p50, p95, p99 = (round(float(value), 2) for value in percentiles_ms)
    return {
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "reviews_per_s": round(requests * reviews / elapsed, 1),
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "errors": errors,
    }


def _run(coroutine):
    """Run on uvloop where installed: it leaves more of the shared CPU to the server."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _measure(generator: str, url: str, clients: int, seconds: float, reviews: int, folder):
    """One measurement with the named load generator (``folder``: wrk's files)."""
    if generator == "wrk":
        return measure_with_wrk(url, clients, seconds, reviews, folder)
    return _run(measure(url, clients, seconds, reviews))


def run_load_test(
    workdir: str | Path, clients: int = 32, seconds: float = 30, reviews: int = 4
) -> dict:
    """Start ``seqnet serve`` on ``workdir``, load it, and report the figures.

    Args:
        workdir: A run folder written by ``seqnet train``.
        clients: Concurrent clients for the throughput part.
        seconds: Seconds of each measurement (throughput, then single-review latency).
        reviews: Reviews per request in the throughput part.

    Returns:
        ``{"backend", "load_generator" (wrk or httpx), "clients", "reviews_per_request",
        "load": {...}, "single": {...},
        "server": {"batches", "texts", "requests"}, "machine": {...}}``; the machine's
        one-minute load average before and after tells how much of the CPU was left to the test.
    """
    process, url = start_server(Path(workdir))
    load_before = os.getloadavg()[0]  # other processes on the machine take cores too
    generator = "wrk" if shutil.which("wrk") else "httpx"
    try:
        with tempfile.TemporaryDirectory() as folder:
            load = _measure(generator, url, clients, seconds, reviews, Path(folder))
            single = _measure(generator, url, 1, min(seconds, 10), 1, Path(folder))
        health = httpx.get(url + "/health").json()
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {
        "backend": health["backend"],
        "load_generator": generator,
        "clients": clients,
        "reviews_per_request": reviews,
        "load": load,
        "single": single,
        "server": {key: health[key] for key in ("batches", "texts", "requests")},
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Load test of seqnet serve on loopback.")
    parser.add_argument("--workdir", type=Path, required=True, help="run folder to serve")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--seconds", type=float, default=30, help="seconds to measure (30)")
    parser.add_argument("--reviews", type=int, default=4, help="reviews per request (4)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 1024 or not 0 < args.seconds <= 600:
        parser.error("--clients must be 1 to 1024 and --seconds 0 to 600")
    print(
        json.dumps(run_load_test(args.workdir, args.clients, args.seconds, args.reviews), indent=2)
    )


if __name__ == "__main__":
    main()
