"""``seqnet serve``: classify texts over HTTP, with a small web page for people.

Endpoints:

- ``POST /predict`` with ``{"texts": ["text", ...]}`` answers one object per text, in order:
  ``{"label": "Sports", "score": 0.97, "known_words": 12, "probabilities": {"World": 0.01,
  "Sports": 0.97, ...}}``: the label is the class name, the score its probability,
  ``known_words`` the words of the text the model knows (0: none, so the answer says nothing
  about the text), ``probabilities`` every class's, in the run's class order. Two classes
  add ``probability``, the second class's (as seqnet 0.2 answered).
- ``GET /health`` answers ``{"status": "ok", "backend": ..., "model": ..., "classes": [...],
  ...}`` plus counters of the requests, texts and model calls (batches) served so far.
- ``GET /`` is a self-contained page (no CDN; it works offline) to paste texts into.

Bad input gets a 4xx answer ``{"error": "what was wrong and how to fix it"}``: 400 for a body
that is not UTF-8 JSON or a ``Host`` header that is not allowed, 422 for JSON of the wrong
shape, 413 for a body over ``MAX_BODY_BYTES`` or more than ``MAX_TEXTS`` texts, 404 and 405 for
unknown paths and methods. The limits on what one client may send and how slowly
([`ServeLimits`][seqnet.config.ServeLimits]) are enforced by `GuardedHttpProtocol`, a thin
layer over uvicorn's httptools protocol, before a request reaches the application: 431 for
headers over ``max_header_bytes``, 408 for headers or a body that arrive too slowly. A full
queue answers 503 with ``Retry-After``.

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
import gc
import json
import os
import signal
import sys
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from pathlib import Path

from seqnet.config import SERVE_LOOPBACK_HOSTS, ServeLimits

try:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ModuleNotFoundError as missing:  # the optional extra is not installed
    raise ModuleNotFoundError(
        f"seqnet serve needs the {missing.name} package: pip install 'seqnet[serve]'",
        name=missing.name,
    ) from None

DEFAULT_LIMITS = ServeLimits()
MAX_BODY_BYTES = DEFAULT_LIMITS.max_body_bytes  # a body over it gets 413
MAX_TEXTS = DEFAULT_LIMITS.max_texts  # texts per request; more gets 413
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


class QueueFull(Exception):
    """The batcher holds as many texts as it may queue: answered with 503 and ``Retry-After``."""


@dataclass
class _Job:
    """One request's texts and the future their answers are delivered to."""

    texts: list[str]
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Queue concurrent requests and serve each batch of them with one model call.

    Args:
        predict: Maps a list of texts to one answer per text, in order (the server's:
            [`Prediction`][seqnet.predict.Prediction]s); called on ``executor``'s thread only.
        executor: A single-thread executor: every model call runs there, off the event loop.
        max_batch: The most texts one call gets (a request is never split between calls).
        max_wait: Seconds a batch waits for more requests after its first one arrived; only
            while requests come in together, so that a lone client never waits.
        max_queue: The most texts waiting for a model call; ``submit`` refuses more.
    """

    def __init__(
        self,
        predict: Callable[[list[str]], Sequence],
        executor: ThreadPoolExecutor,
        *,
        max_batch: int = MAX_BATCH_TEXTS,
        max_wait: float = MAX_WAIT_SECONDS,
        max_queue: int = DEFAULT_LIMITS.max_queue_texts,
    ) -> None:
        self.predict = predict
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.counts = {"requests": 0, "texts": 0, "batches": 0, "refused": 0, "dropped": 0}
        self._pending: deque[_Job] = deque()
        self._queued = 0  # texts in _pending
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

    async def submit(self, texts: list[str]) -> list:
        """Queue ``texts`` and wait for their answers, in order.

        Cancelling the wait (the client hung up) takes the texts out of the queue if their
        model call has not started, so nobody computes answers that nobody will read.

        Raises:
            QueueFull: If queueing ``texts`` would exceed ``max_queue``.
        """
        if self._queued + len(texts) > self.max_queue:
            self.counts["refused"] += 1
            raise QueueFull(f"{self._queued} texts are already waiting for the model")
        job = _Job(texts, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._queued += len(texts)
        self._arrived.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            self._withdraw(job)
            raise

    def _withdraw(self, job: _Job) -> None:
        """Take a cancelled job out of the queue, unless its model call already took it."""
        with contextlib.suppress(ValueError):  # ValueError: already in a batch
            self._pending.remove(job)
            self._queued -= len(job.texts)
            self.counts["dropped"] += len(job.texts)

    def _take(self) -> _Job:
        job = self._pending.popleft()
        self._queued -= len(job.texts)
        return job

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
                batch.append(self._take())
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
        """One model call for the whole batch, then each request gets its slice.

        If the call fails and the batch holds several requests, each is tried on its own, so
        that one request that breaks the model fails alone, not with those batched beside it.
        """
        batch = [job for job in batch if not job.future.done()]  # cancelled while collected
        if not batch:
            return
        try:
            values = await self._call([text for job in batch for text in job.texts])
        except Exception as error:
            if len(batch) == 1:  # reported to the waiting request as a 500
                _deliver(batch[0], error=error)
                return
            for job in batch:
                await self._run([job])
            return
        self.counts["requests"] += len(batch)
        self._busy = len(batch) > 1
        start = 0
        for job in batch:
            _deliver(job, values[start : start + len(job.texts)])
            start += len(job.texts)

    async def _call(self, texts: list[str]) -> list:
        """One model call on the model thread; counted once it succeeded."""
        loop = asyncio.get_running_loop()
        values = list(await loop.run_in_executor(self.executor, self.predict, texts))
        if len(values) != len(texts):
            raise RuntimeError(f"the model gave {len(values)} answers for {len(texts)} texts")
        self.counts["batches"] += 1
        self.counts["texts"] += len(texts)
        return values


def _deliver(job: _Job, values: list | None = None, error: Exception | None = None) -> None:
    """Hand a job its answer, unless its client hung up and cancelled the future."""
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(values)


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
    """``POST /predict``: a label, score, known words and probabilities per text, in order."""
    limits = request.app.state.limits
    try:
        texts = parse_texts(await read_body(request, limits.max_body_bytes), limits.max_texts)
        predictions = await _unless_disconnected(request, request.app.state.batcher.submit(texts))
    except RequestError as error:
        return error_response(error.status, error.message)
    except QueueFull as full:
        message = f"The server is busy ({full}); retry in {limits.retry_after} s."
        return error_response(503, message, headers={"Retry-After": str(limits.retry_after)})
    except ClientDisconnect:  # nobody is left to read an answer
        return Response(status_code=400)
    return JSONResponse([answer(prediction) for prediction in predictions])


def answer(prediction) -> dict:
    """What ``POST /predict`` says about one text: its prediction's JSON without the text
    (the client has it), every class's probability included."""
    row = prediction.to_json(all_probabilities=True)
    del row["text"]
    return row


async def _unless_disconnected(request: Request, work):
    """Await ``work``, or cancel it as soon as the client hangs up.

    Raises:
        ClientDisconnect: If the client disconnected first.
    """
    work = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not work.done():  # the client hung up, or this request itself is cancelled
            work.cancel()
        await asyncio.gather(work, watch, return_exceptions=True)
    if work.cancelled():
        raise ClientDisconnect()
    return work.result()  # an answer that is ready wins, even if the client just left


async def _disconnected(request: Request) -> None:
    """Return once the client has hung up: the server's receive() then says so.

    The body has been read, so receive() has nothing else to deliver; it waits until the
    connection is lost and then answers ``http.disconnect``.
    """
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def health_endpoint(request: Request) -> Response:
    """``GET /health``: backend, model, classes and how much was served, for probes and
    people."""
    state = request.app.state
    return JSONResponse({"status": "ok", **state.info, **state.batcher.counts})


async def index_endpoint(request: Request) -> Response:
    """``GET /``: the page to paste texts into."""
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


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on header size and on read times.

    uvicorn offers a header limit for h11 only (``h11_max_incomplete_event_size``); httptools
    buffers a header of any size, and no read timeout bounds a request that trickles in:
    ``timeout_keep_alive`` only closes idle connections between requests. So each request
    gets ``header_timeout`` seconds until its headers are complete, then ``body_timeout`` for
    its body, and may send at most ``max_header_bytes`` before its headers end. A client
    that breaks a limit gets a JSON error and the connection is closed, which also ends the
    wait of its application task; so a graceful shutdown never waits for one for long.
    Subclassed per server by [`guarded_protocol`][seqnet.serve.guarded_protocol].
    """

    limits: ServeLimits = DEFAULT_LIMITS

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._timer = None
        self._header_bytes, self._tail = 0, b""
        self._reading_headers = True
        # uvicorn times nothing out before the first request: a silent client held it forever.
        self._start_timer(self.limits.header_timeout, self._headers_too_slow)

    def connection_lost(self, exc) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._count_header_bytes(data)
            if self._header_bytes > self.limits.max_header_bytes:  # refused before parsing
                self._refuse(431, f"The headers exceed {self.limits.max_header_bytes} bytes.")
                return
        super().data_received(data)

    def _count_header_bytes(self, data: bytes) -> None:
        """Add the header bytes in ``data``: up to the blank line that ends them, if there.

        The blank line may straddle two chunks, so the last 3 bytes of the previous one are
        searched with it; the bytes after it are body, which the body limit counts.
        """
        end = (self._tail + data).find(b"\r\n\r\n")
        if end == -1:
            self._header_bytes += len(data)
            self._tail = data[-3:]
        else:
            self._header_bytes += end + 4 - len(self._tail)
            self._tail = b""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:  # the next request on a kept-alive connection
            self._start_timer(self.limits.header_timeout, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._stop_timer()
        self._start_timer(self.limits.body_timeout, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._stop_timer()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._reading_headers, self._header_bytes, self._tail = True, 0, b""
        super().on_response_complete()

    def _start_timer(self, seconds: float, callback) -> None:
        self._timer = self.loop.call_later(seconds, callback)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_too_slow(self) -> None:
        self._timer = None
        self._refuse(408, f"The headers took over {self.limits.header_timeout:g} s to arrive.")

    def _body_too_slow(self) -> None:
        self._timer = None
        message = f"The body took over {self.limits.body_timeout:g} s to arrive."
        self._refuse(408, message + " Send it at once, or raise the server's --body-timeout.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` unless a response has begun, and close the connection.

        Closing tells the application's task, if one waits for the body, that the client
        left; its own answer then goes nowhere.
        """
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            body = json.dumps({"error": message}).encode()
            head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            head += "content-type: application/json\r\nconnection: close\r\n"
            self.transport.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
        self.transport.close()


def guarded_protocol(limits: ServeLimits) -> type[GuardedHttpProtocol]:
    """A [`GuardedHttpProtocol`][seqnet.serve.GuardedHttpProtocol] that enforces ``limits``,
    for uvicorn's ``http=`` (uvicorn creates one instance per connection)."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})


class AllowedHosts:
    """ASGI middleware: 400 for a request whose ``Host`` header names another server.

    A web page on another site can make a browser send requests here by pointing its own
    name at 127.0.0.1 (DNS rebinding); the browser then sends that name as ``Host``. Checking
    it also keeps redirects, which uvicorn builds from ``Host``, on this server.

    Args:
        app: The application to protect.
        hosts: The names and addresses accepted, without ports; ``"*"`` accepts any.
    """

    def __init__(self, app, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = {host.lower().strip("[]") for host in hosts}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or "*" in self.hosts:
            return await self.app(scope, receive, send)
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        name = _host_name(host)
        if name in self.hosts:
            return await self.app(scope, receive, send)
        message = (
            f"Host {host!r} is not served here; start seqnet serve with --allowed-host "
            f"{name or 'NAME'} to accept it."
        )
        await error_response(400, message)(scope, receive, send)


def _host_name(host: str) -> str:
    """The name or address of a ``Host`` header, without its port: ``[::1]:80`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 address, whose colons are not a port's
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def build_app(
    batcher: MicroBatcher,
    info: dict,
    limits: ServeLimits = DEFAULT_LIMITS,
    allowed_hosts: Sequence[str] = SERVE_LOOPBACK_HOSTS,
) -> Starlette:
    """The ASGI application: routes, JSON errors, the Host check, the batcher's start and stop.

    Args:
        batcher: Serves the model calls; started and stopped with the application.
        info: Shown by ``GET /health`` (backend, model, limits).
        limits: The body and text limits ``POST /predict`` applies.
        allowed_hosts: The ``Host`` names accepted; others get 400.
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
        middleware=[Middleware(AllowedHosts, hosts=allowed_hosts)],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.info = info
    app.state.limits = limits
    static = resources.files("seqnet").joinpath("static")
    app.state.page = static.joinpath("index.html").read_text("utf-8")
    app.state.assets = {name: static.joinpath(name).read_bytes() for name in PAGE_ASSETS}
    return app


def load_classifier(workdir: Path):
    """Load the run folder's model, vocabulary and classes, on the thread that will run the
    model.

    Args:
        workdir: The run folder written by ``seqnet train``.

    Returns:
        A [`Classifier`][seqnet.predict.Classifier]; ``warm_up`` compiles its shapes.
    """
    from seqnet.predict import Classifier  # imports keras: only in the model thread

    classifier = Classifier.load(workdir)
    _tune_torch()
    return classifier


def _classify(classifier, texts: list[str]) -> list:
    """One model call's predictions, on the model thread.

    A text with no known word is flagged in its answer (``known_words`` 0); a warning on the
    server's log for every such request would flood it, so none is given.
    """
    from seqnet.predict import UnknownWordsWarning

    with warnings.catch_warnings():  # only the model thread warns here
        warnings.simplefilter("ignore", UnknownWordsWarning)
        return classifier.predict(texts, batch_size=FORWARD_ROWS)


def warm_up(classifier, forward_rows: int = FORWARD_ROWS) -> None:
    """Compile every batch shape the server will use, so that no request pays for JAX's or
    TensorFlow's tracing.

    Args:
        classifier: The loaded classifier.
        forward_rows: Rows per forward pass; the classifier pads to powers of two up to it.
    """
    classifier.compile_shapes(forward_rows)


def freeze_loaded_objects() -> None:
    """Keep the garbage collector off everything loading left: the backend, the model.

    A full collection walks every tracked object, and with a backend loaded those are
    millions: each one paused every request in flight for 100-200 ms, 1 % of requests under
    load (JAX, 32 clients: p99 157 ms, 37 ms with the collector off). Frozen objects are
    never scanned again; what requests allocate is collected as before.
    """
    gc.collect()
    gc.freeze()


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


def _describe(workdir: Path, classifier, limits: ServeLimits) -> dict:
    """What ``GET /health`` says about the backend, the model, its classes and the limits."""
    import keras

    return {
        "backend": keras.backend.backend(),
        "model": workdir.resolve().name,  # a name, not a path: the page is public
        "classes": list(classifier.task.class_names),
        "vocabulary_size": classifier.vocabulary_size,
        "sequence_length": classifier.sequence_length,
        "max_texts": limits.max_texts,
        "max_body_bytes": limits.max_body_bytes,
        "max_queue_texts": limits.max_queue_texts,
    }


def serve(
    workdir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_wait: float = MAX_WAIT_SECONDS,
    limits: ServeLimits = DEFAULT_LIMITS,
    allowed_hosts: Sequence[str] = (),
    quiet: bool = False,
) -> int:
    """Load the run folder, then serve it until SIGINT or SIGTERM.

    Args:
        workdir: The run folder written by ``seqnet train``.
        host: The address to listen on; the default accepts local connections only.
        port: The TCP port.
        max_wait: Seconds a batch waits for more requests once it has one.
        limits: What one client may send, how slowly, and how many texts may queue.
        allowed_hosts: ``Host`` names accepted besides the loopback ones and ``host``.
        quiet: Print only errors, not the progress lines and uvicorn's start-up log.

    Returns:
        The exit status: 0 after a graceful stop, 1 if the run folder cannot be loaded (a
        one-line message on stderr, before the port is bound).
    """
    workdir = Path(workdir)
    say = (lambda line: None) if quiet else functools.partial(print, flush=True)
    # One thread loads the model and makes every model call, as the backends expect.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqnet-model")
    try:
        classifier = executor.submit(load_classifier, workdir).result()
        shapes = len(classifier.compiled_shapes(FORWARD_ROWS))
        if shapes:  # none where the table form takes every pass
            say(
                f"Compiling the model for {shapes} input shapes, up to {FORWARD_ROWS} texts a pass…"
            )
        executor.submit(warm_up, classifier).result()
        info = executor.submit(_describe, workdir, classifier, limits).result()
        freeze_loaded_objects()
    except Exception as error:  # any broken run folder: one clear line, no traceback
        executor.shutdown()
        print(f"seqnet serve: error: cannot load {workdir}: {_first_line(error)}", file=sys.stderr)
        return 1
    predict = functools.partial(_classify, classifier)
    batcher = MicroBatcher(predict, executor, max_wait=max_wait, max_queue=limits.max_queue_texts)
    app = build_app(batcher, info, limits, _allowed_hosts(host, allowed_hosts))
    # uvicorn re-raises SIGTERM once it has shut down gracefully, which would kill the process
    # with status -15; a no-op handler turns that planned stop into exit status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    say(f"Serving {workdir} with {info['backend']} on http://{host}:{port}/")
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits),
        access_log=False,
        log_level="warning" if quiet else "info",
        timeout_graceful_shutdown=30,  # a last bound: the read timeouts end slow clients sooner
    )
    executor.shutdown()
    return 0


def _allowed_hosts(host: str, extra: Sequence[str]) -> list[str]:
    """The ``Host`` names to accept: loopback, the listening address unless it is a
    wildcard (its clients may use any of the machine's names), and ``extra``."""
    listening = [] if host in ("", "0.0.0.0", "::") else [host]
    return [*SERVE_LOOPBACK_HOSTS, *listening, *extra]


def _first_line(error: Exception) -> str:
    """The first line of an error's message, or its type when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
