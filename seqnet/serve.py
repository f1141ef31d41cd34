"""``seqnet serve``: classify reviews over HTTP, with a small web page for people.

Endpoints:

- ``POST /predict`` with ``{"texts": ["review", ...]}`` answers
  ``[{"label": "positive", "score": 0.97}, ...]``, one entry per text, in order.
- ``GET /health`` answers ``{"status": "ok", "backend": ..., "model": ..., ...}`` plus counters
  of the requests, texts and model calls (batches) served so far.
- ``GET /`` is a self-contained page (no CDN; it works offline) to paste reviews into.

Bad input gets a 4xx answer ``{"error": "what was wrong and how to fix it"}``: 400 for a body
that is not UTF-8 JSON, 422 for JSON of the wrong shape, 413 for a body over
``MAX_BODY_BYTES`` or more than ``MAX_TEXTS`` texts, 404 and 405 for unknown paths and methods.

Concurrent requests are micro-batched: they queue, and one model call serves as many as
``MAX_BATCH_TEXTS`` texts together. That call runs on one worker thread, the same thread
that loaded the model, so the event loop keeps answering while the model computes and the
backend (JAX, TensorFlow or PyTorch) only ever sees a single thread.

Why Starlette and uvicorn: the service has three routes and validates one small JSON shape
by hand, so FastAPI's additions (pydantic models, dependency injection, OpenAPI pages that
load their assets from a CDN) would add dependencies without removing code. Starlette is the
small, well-kept ASGI toolkit FastAPI itself is built on; uvicorn is its usual server, and
it finishes in-flight requests on SIGTERM before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from seqnet.predict import label_and_score

try:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route
except ModuleNotFoundError as missing:  # the optional extra is not installed
    raise ModuleNotFoundError(
        f"seqnet serve needs the {missing.name} package: pip install 'seqnet[serve]'",
        name=missing.name,
    ) from None

MAX_BODY_BYTES = 2 * 1024 * 1024  # 256 long reviews fit; a body over it gets 413
MAX_TEXTS = 256  # texts per request; more gets 413, so clients split them into several requests
MAX_BATCH_TEXTS = 256  # texts per model call, summed over the requests batched together
# Rows per forward pass inside a model call: measured on a CPU, 32 to 64 reviews cost the
# least per review (a (128, 398, 250) activation no longer fits in cache), and small chunks
# waste little on padding to the next power of two.
FORWARD_ROWS = 32
MAX_WAIT_SECONDS = 0.002  # how long a batch may wait for more requests once it has one


class RequestError(Exception):
    """A client mistake: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Job:
    """One request's texts and the future its probabilities are delivered to."""

    texts: list[str]
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Queue concurrent requests and serve each batch of them with one model call.

    Args:
        predict: Maps a list of texts to one positive-probability per text; called on
            ``executor``'s thread only.
        executor: A single-thread executor: every model call runs there, off the event loop.
        max_batch: The most texts one call gets (a request is never split between calls).
        max_wait: Seconds a batch waits for more requests after its first one arrived; only
            while requests come in together, so that a lone client never waits.
    """

    def __init__(
        self,
        predict: Callable[[list[str]], Sequence[float]],
        executor: ThreadPoolExecutor,
        *,
        max_batch: int = MAX_BATCH_TEXTS,
        max_wait: float = MAX_WAIT_SECONDS,
    ) -> None:
        self.predict = predict
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.counts = {"requests": 0, "texts": 0, "batches": 0}
        self._pending: deque[_Job] = deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._busy = False  # whether the last batch served several requests

    def start(self) -> None:
        """Start serving batches; call from within the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._serve_forever())

    async def stop(self) -> None:
        """Stop after the batch in progress; call when no request is waiting any more."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, texts: list[str]) -> list[float]:
        """Queue ``texts`` and wait for their probabilities, in order."""
        job = _Job(texts, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._arrived.set()
        return await job.future

    async def _serve_forever(self) -> None:
        while True:
            batch = await self._collect()
            await self._run(batch)

    async def _collect(self) -> list[_Job]:
        """The next batch: the waiting requests, plus those arriving within ``max_wait``.

        Requests that arrive during a model call already wait for the next one, so under
        load batches fill up without waiting; ``max_wait`` only tops them up.
        """
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.max_wait if self._busy else 0.0)
        batch, size = [], 0
        while True:
            if self._pending:
                if batch and size + len(self._pending[0].texts) > self.max_batch:
                    return batch  # the next request waits for the next call
                batch.append(self._pending.popleft())
                size += len(batch[-1].texts)
                if size >= self.max_batch:
                    return batch
            elif not await self._wait_for_arrival(deadline - loop.time()):
                return batch

    async def _wait_for_arrival(self, seconds: float) -> bool:
        """Whether another request arrived within ``seconds``."""
        if seconds <= 0:
            return False
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _run(self, batch: list[_Job]) -> None:
        """One model call for the whole batch, then each request gets its slice."""
        texts = [text for job in batch for text in job.texts]
        loop = asyncio.get_running_loop()
        try:
            probabilities = await loop.run_in_executor(self.executor, self.predict, texts)
        except Exception as error:  # reported to the waiting requests as a 500
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        self.counts["batches"] += 1
        self.counts["texts"] += len(texts)
        self.counts["requests"] += len(batch)
        self._busy = len(batch) > 1
        values = [float(p) for p in probabilities]
        start = 0
        for job in batch:
            if not job.future.done():  # a client that hung up cancelled its future
                job.future.set_result(values[start : start + len(job.texts)])
            start += len(job.texts)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes.

    Args:
        request: The incoming request.
        limit: The most bytes accepted.

    Raises:
        RequestError: If Content-Length or the bytes actually sent exceed ``limit``.
    """
    too_large = RequestError(
        413, f"The body exceeds {limit} bytes; send fewer or shorter texts per request."
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:  # uvicorn already refuses a malformed one
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():  # a chunked body declares no length: count the bytes
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parse_texts(body: bytes, max_texts: int = MAX_TEXTS) -> list[str]:
    """The review texts of a ``{"texts": [...]}`` body.

    Args:
        body: The raw request body.
        max_texts: The most texts accepted in one request.

    Raises:
        RequestError: 400 if the body is not UTF-8 JSON, 422 if the JSON has the wrong
            shape, 413 if it holds more than ``max_texts`` texts.
    """
    example = 'Send {"texts": ["a review", "another review"]}.'
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(400, f"The body is not valid UTF-8. {example}") from None
    except (ValueError, RecursionError):  # JSONDecodeError, huge integers, deep nesting
        raise RequestError(400, f"The body is not valid JSON. {example}") from None
    if not isinstance(payload, dict):
        raise RequestError(422, f"The JSON must be an object, not {_json_type(payload)}. {example}")
    if "texts" not in payload:
        raise RequestError(422, f'The JSON object has no "texts" field. {example}')
    unknown = sorted(set(payload) - {"texts"})
    if unknown:  # e.g. a "threshold" that would otherwise be silently ignored
        raise RequestError(422, f'Unknown field(s) {unknown}; the object takes only "texts".')
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise RequestError(422, f'"texts" must be a list, not {_json_type(texts)}. {example}')
    if not texts:
        raise RequestError(422, f'"texts" is empty; give at least one review. {example}')
    if len(texts) > max_texts:
        raise RequestError(
            413, f'"texts" holds {len(texts)} reviews; send at most {max_texts} per request.'
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(
                422, f'"texts"[{index}] is {_json_type(text)}; every review must be a string.'
            )
    return texts


def _json_type(value: object) -> str:
    """How JSON calls the type of a decoded value, for error messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    names.update({int: "a number", float: "a number", type(None): "null"})
    return names.get(type(value), type(value).__name__)


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    """The JSON answer to a bad request: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def predict_endpoint(request: Request) -> Response:
    """``POST /predict``: a label and a score per text, in the order given."""
    try:
        texts = parse_texts(await read_body(request))
    except RequestError as error:
        return error_response(error.status, error.message)
    except ClientDisconnect:  # nobody is left to read an answer
        return Response(status_code=400)
    probabilities = await request.app.state.batcher.submit(texts)
    results = [label_and_score(p) for p in probabilities]
    return JSONResponse([{"label": label, "score": score} for label, score in results])


async def health_endpoint(request: Request) -> Response:
    """``GET /health``: backend, model and how much was served, for probes and people."""
    state = request.app.state
    return JSONResponse({"status": "ok", **state.info, **state.batcher.counts})


async def index_endpoint(request: Request) -> Response:
    """``GET /``: the page to paste reviews into."""
    return HTMLResponse(request.app.state.page)


# The page's look and behaviour, shared with the ONNX bundle's in-browser page.
PAGE_ASSETS = {"page.css": "text/css", "page.js": "text/javascript"}


async def asset_endpoint(request: Request) -> Response:
    """``GET /page.css`` and ``GET /page.js``: what the page at ``/`` loads beside it."""
    name = request.url.path.lstrip("/")
    return Response(request.app.state.assets[name], media_type=PAGE_ASSETS[name])


async def _http_error(request: Request, error: HTTPException) -> Response:
    """404 and 405 from the router, as JSON like every other error."""
    if error.status_code == 404:
        message = f"There is no {request.url.path}. " + ENDPOINTS
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}. " + ENDPOINTS
    else:
        message = str(error.detail)
    return error_response(error.status_code, message, headers=error.headers)


async def _internal_error(request: Request, error: Exception) -> Response:
    """A bug, not a client mistake: say so without internals (uvicorn logs the traceback)."""
    return error_response(500, "Internal error while classifying; see the server's log.")


ENDPOINTS = 'Endpoints: GET / (web page), GET /health, POST /predict with {"texts": [...]}.'


def build_app(batcher: MicroBatcher, info: dict) -> Starlette:
    """The ASGI application: routes, JSON errors, and the batcher's start and stop.

    Args:
        batcher: Serves the model calls; started and stopped with the application.
        info: Shown by ``GET /health`` (backend, model, limits).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        batcher.start()
        yield
        await batcher.stop()  # uvicorn calls this after the in-flight requests finished

    app = Starlette(
        routes=[
            Route("/", index_endpoint, methods=["GET"]),
            *(Route(f"/{name}", asset_endpoint, methods=["GET"]) for name in PAGE_ASSETS),
            Route("/health", health_endpoint, methods=["GET"]),
            Route("/predict", predict_endpoint, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.info = info
    static = resources.files("seqnet").joinpath("static")
    app.state.page = static.joinpath("index.html").read_text("utf-8")
    app.state.assets = {name: static.joinpath(name).read_bytes() for name in PAGE_ASSETS}
    return app


def load_classifier(workdir: Path, forward_rows: int = FORWARD_ROWS):
    """Load the run folder and compile every batch shape the server will use.

    Args:
        workdir: The run folder written by ``seqnet train``.
        forward_rows: Rows per forward pass; the classifier pads to powers of two up to it.

    Returns:
        A [`Classifier`][seqnet.predict.Classifier], warmed up so that no request pays for
        JAX's or TensorFlow's tracing.
    """
    from seqnet.predict import Classifier  # imports keras: only in the model thread

    classifier = Classifier.load(workdir)
    _tune_torch()
    classifier.compile_shapes(forward_rows)
    return classifier


def _tune_torch() -> None:
    """Under PyTorch: leave one CPU core to the event loop.

    PyTorch's intra-op threads, one per core by default, spin while they wait for each other;
    once the event loop takes a core they wait for the scheduler instead (ten times slower on
    two busy cores, measured). The classifier predicts eagerly: its forward network is built
    fresh, never with ``torch.compile``, which would recompile for every batch shape.
    """
    import keras

    if keras.backend.backend() != "torch":
        return
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))


def _describe(workdir: Path, classifier) -> dict:
    """What ``GET /health`` says about the backend, the model and the limits."""
    import keras

    return {
        "backend": keras.backend.backend(),
        "model": str(workdir.resolve()),
        "vocabulary_size": classifier.vocabulary_size,
        "sequence_length": classifier.sequence_length,
        "max_texts": MAX_TEXTS,
        "max_body_bytes": MAX_BODY_BYTES,
    }


def serve(
    workdir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_wait: float = MAX_WAIT_SECONDS,
) -> int:
    """Load the run folder, then serve it until SIGINT or SIGTERM.

    Args:
        workdir: The run folder written by ``seqnet train``.
        host: The address to listen on; the default accepts local connections only.
        port: The TCP port.
        max_wait: Seconds a batch waits for more requests once it has one.

    Returns:
        The exit status: 0 after a graceful stop, 1 if the run folder cannot be loaded (a
        one-line message on stderr, before the port is bound).
    """
    workdir = Path(workdir)
    # One thread loads the model and makes every model call, as the backends expect.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqnet-model")
    try:
        classifier = executor.submit(load_classifier, workdir).result()
        info = executor.submit(_describe, workdir, classifier).result()
    except Exception as error:  # any broken run folder: one clear line, no traceback
        executor.shutdown()
        print(f"seqnet serve: error: cannot load {workdir}: {_first_line(error)}", file=sys.stderr)
        return 1
    predict = functools.partial(classifier.predict_probabilities, batch_size=FORWARD_ROWS)
    app = build_app(MicroBatcher(predict, executor, max_wait=max_wait), info)
    # uvicorn re-raises SIGTERM once it has shut down gracefully, which would kill the process
    # with status -15; a no-op handler turns that planned stop into exit status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    print(f"seqnet serve: {workdir} with {info['backend']} on http://{host}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, access_log=False, timeout_graceful_shutdown=30)
    executor.shutdown()
    return 0


def _first_line(error: Exception) -> str:
    """The first line of an error's message, or its type when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
