"""``seqnet serve`` as people and programs meet it: a real server process spoken to over HTTP."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import SECOND_MODEL, TINY_TEXTS, build_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving import free_port, serve_command, start_server

from seqnet.buckets import bucket_sizes
from seqnet.cli import build_parser, main
from seqnet.predict import Classifier, Prediction, UnknownWordsWarning
from seqnet.serve import MAX_BODY_BYTES, MAX_TEXTS, answer

REVIEWS = [
    "A great film, I loved it. Great acting!",
    "Boring and bad; a terrible plot.",
    "",
    "zyzzyva " * 500,
    "Loved this great movie <br /> but the ending was boring",
]


@pytest.fixture(scope="module")
def classifier(served_run) -> Classifier:
    return Classifier.load(served_run)


def post(server, body: bytes, **headers) -> httpx.Response:
    return httpx.post(server.url + "/predict", content=body, headers=headers, timeout=30)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request_head(length: int, path: str = "/predict", host: str = "127.0.0.1", **headers) -> bytes:
    """The request line and headers of a POST with a body of ``length`` bytes."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    lines += [f"Content-Length: {length}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(connection: socket.socket) -> Answer:
    """One HTTP response read off a raw socket (its body by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed without a complete answer: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    while len(body) < int(headers.get("content-length", 0)) and (chunk := connection.recv(65536)):
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


def exchange(port: int, data: bytes, timeout: float = 30) -> Answer:
    """Send ``data`` on a new connection and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(data)
        return read_answer(connection)


def expected(classifier: Classifier, texts: list[str]) -> list[tuple[str, float]]:
    """The label and score of each text, as the server should answer them."""
    with warnings.catch_warnings():  # texts with no known word: the answers flag them
        warnings.simplefilter("ignore", UnknownWordsWarning)
        return [(p.label, p.score) for p in classifier.predict(texts)]


@pytest.mark.parametrize(
    ("probability", "label", "score"),
    [
        (0.97, "positive", 0.97),
        (0.5, "positive", 0.5),
        (0.2, "negative", 0.8),
        (0.0, "negative", 1.0),
    ],
)
def test_an_answer_has_label_score_known_words_and_every_probability(probability, label, score):
    prediction = Prediction("the text", (np.float32(1 - probability), probability), known_words=0)
    assert answer(prediction) == {
        "label": label,
        "score": pytest.approx(score),
        "probability": pytest.approx(probability),
        "known_words": 0,
        "probabilities": {"negative": pytest.approx(1 - probability), "positive": probability},
    }
    assert type(answer(prediction)["score"]) is float  # JSON-ready, not NumPy


def test_an_answer_for_three_classes_names_them_all():
    prediction = Prediction("t", (0.2, 0.5, 0.3), ("red", "green", "blue"), known_words=4)
    assert answer(prediction) == {
        "label": "green",
        "score": 0.5,
        "known_words": 4,
        "probabilities": {"red": 0.2, "green": 0.5, "blue": 0.3},
    }


def test_predictions_match_the_classifier_in_order(live_server, classifier):
    response = post(live_server, json.dumps({"texts": REVIEWS}).encode())
    assert response.status_code == 200
    answer = response.json()
    assert [item["label"] for item in answer] == [
        label for label, _ in expected(classifier, REVIEWS)
    ]
    scores = [score for _, score in expected(classifier, REVIEWS)]
    np.testing.assert_allclose([item["score"] for item in answer], scores, atol=1e-6)


def test_a_three_class_run_is_served_with_names_and_every_probability(colour_server, colour_run):
    texts = ["red apple cherry", "grass leaf lime", "sky sea blue", "zyzzyva quux", ""]
    response = post(colour_server, json.dumps({"texts": texts}).encode())
    assert response.status_code == 200
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownWordsWarning)
        predictions = Classifier.load(colour_run).predict(texts)
    answers = response.json()
    assert [item["label"] for item in answers] == [p.label for p in predictions]
    assert [item["label"] for item in answers[:3]] == ["red", "green", "blue"]
    assert [item["known_words"] for item in answers] == [3, 3, 3, 0, 0]  # flagged: no known word
    for item, prediction in zip(answers, predictions, strict=True):
        assert set(item) == {"label", "score", "known_words", "probabilities"}
        assert list(item["probabilities"]) == ["red", "green", "blue"]
        np.testing.assert_allclose(
            list(item["probabilities"].values()), prediction.probabilities, atol=1e-6
        )
        assert item["score"] == pytest.approx(prediction.score, abs=1e-6)
    health = httpx.get(colour_server.url + "/health").json()
    assert health["classes"] == ["red", "green", "blue"]
    assert "UnknownWordsWarning" not in colour_server.output()  # the answers flag those texts


def test_health_names_backend_and_model(live_server, served_run):
    import keras

    health = httpx.get(live_server.url + "/health").json()
    assert health["status"] == "ok"
    assert health["backend"] == keras.backend.backend()
    assert health["model"] == served_run.resolve().name
    assert health["classes"] == ["negative", "positive"]
    assert "/" not in json.dumps(health)  # no path of the server's disk
    assert {"batches", "texts", "requests"} <= health.keys()


def test_the_page_is_self_contained(live_server):
    response = httpx.get(live_server.url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<textarea" in response.text and "predict" in response.text
    assert "http://" not in response.text and "https://" not in response.text  # no CDN
    stylesheet = httpx.get(live_server.url + "/page.css")
    assert stylesheet.status_code == 200
    assert stylesheet.headers["content-type"].startswith("text/css")
    assert "textarea" in stylesheet.text and "url(" not in stylesheet.text  # no fonts fetched
    script = httpx.get(live_server.url + "/page.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "export function enableClassify" in script.text
    assert "http://" not in script.text and "https://" not in script.text  # no CDN


BAD_BODIES = {
    "missing texts": (b"{}", 422, '"texts" field'),
    "empty texts": (b'{"texts": []}', 422, "empty"),
    "texts not a list": (b'{"texts": "a review"}', 422, "must be a list"),
    "texts is null": (b'{"texts": null}', 422, "must be a list"),
    "non-string item": (b'{"texts": ["fine", 3]}', 422, '"texts"[1] is a number'),
    "nested list item": (b'{"texts": [["a"]]}', 422, '"texts"[0] is a list'),
    "not UTF-8": (b'{"texts": ["caf\xe9"]}', 400, "UTF-8"),
    "malformed JSON": (b'{"texts": ["a",', 400, "not valid JSON"),
    "empty body": (b"", 400, "not valid JSON"),
    "deeply nested JSON": (b"[" * 100_000, 400, "not valid JSON"),
    "JSON array": (b'["a review"]', 422, "must be an object"),
    "unknown field": (b'{"texts": ["a"], "threshold": 0.9}', 422, "Unknown field(s) ['threshold']"),
    "JSON string": (b'"a review"', 422, "must be an object"),
    "too many texts": (json.dumps({"texts": ["a"] * (MAX_TEXTS + 1)}).encode(), 413, "at most"),
    "too large body": (json.dumps({"texts": ["a" * MAX_BODY_BYTES]}).encode(), 413, "exceeds"),
}


ODD_BUT_VALID = {
    "lone surrogate": b'{"texts": ["\\ud800 great"]}',
    "non-ASCII": '{"texts": ["Ein großartiger Film 🎬", "映画"]}'.encode(),
    "HTML": b'{"texts": ["<b>great</b><br />&amp; loved"]}',
    "plain": b'{"texts": ["great"]}',  # sent as text/plain, as curl -d does form data
}


@pytest.mark.parametrize("case", ODD_BUT_VALID.keys())
def test_odd_but_valid_bodies_are_classified(live_server, classifier, case):
    body = ODD_BUT_VALID[case]
    response = post(live_server, body, **{"content-type": "text/plain"})
    texts = json.loads(body)["texts"]
    assert response.status_code == 200
    scores = [item["score"] for item in response.json()]
    np.testing.assert_allclose(scores, [s for _, s in expected(classifier, texts)], atol=1e-6)


@pytest.mark.parametrize("case", BAD_BODIES.keys())
def test_bad_bodies_get_a_json_error(live_server, case):
    body, status, message = BAD_BODIES[case]
    response = post(live_server, body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_a_body_streamed_past_the_limit_gets_413(live_server):
    def chunks():  # chunked transfer: no Content-Length, so the server must count
        yield b'{"texts": ["'
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            yield b"a" * 65536
        yield b'"]}'

    response = httpx.post(live_server.url + "/predict", content=chunks(), timeout=30)
    assert response.status_code == 413
    assert "exceeds" in response.json()["error"]


def test_a_declared_length_past_the_limit_gets_413_before_the_body(live_server):
    port = int(live_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )
        answer = b""  # answered without sending the 2 MiB; the JSON may come in a second read
        while not answer.endswith(b"}") and (chunk := connection.recv(65536)):
            answer += chunk
    answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413")
    assert '"error"' in answer


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/predict", 405),
        ("PUT", "/predict", 405),
        ("POST", "/health", 405),
        ("GET", "/x", 404),
    ],
)
def test_wrong_method_or_path_gets_a_json_error(live_server, method, path, status):
    response = httpx.request(method, live_server.url + path)
    assert response.status_code == status
    assert "POST /predict" in response.json()["error"]


def test_concurrent_requests_are_micro_batched(live_server, classifier):
    before = httpx.get(live_server.url + "/health").json()
    requests = [[f"great film number {i}", f"boring {i}"] for i in range(64)]

    async def send_all():
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=live_server.url, limits=limits, timeout=60) as client:
            return await asyncio.gather(
                *(client.post("/predict", json={"texts": texts}) for texts in requests)
            )

    responses = asyncio.run(send_all())
    after = httpx.get(live_server.url + "/health").json()
    for texts, response in zip(requests, responses, strict=True):
        assert response.status_code == 200
        scores = [item["score"] for item in response.json()]
        np.testing.assert_allclose(scores, [s for _, s in expected(classifier, texts)], atol=1e-6)
    assert after["requests"] - before["requests"] == 64
    assert after["texts"] - before["texts"] == 128
    assert after["batches"] - before["batches"] < 64


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
ODD_BODIES = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.sampled_from(["texts", "text", ""]), JSON_VALUES).map(
        lambda value: json.dumps(value).encode()
    ),
    st.lists(st.text(), max_size=300).map(lambda texts: json.dumps({"texts": texts}).encode()),
    st.lists(JSON_VALUES, min_size=1, max_size=5).map(
        lambda texts: json.dumps({"texts": texts}).encode()
    ),
    st.text().map(lambda text: text.encode("utf-8", "surrogatepass")),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=ODD_BODIES)
def test_odd_bodies_never_get_a_server_error(live_server, body):
    response = post(live_server, body)
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert len(response.json()) == len(json.loads(body)["texts"])
    else:
        assert response.json()["error"]


def test_still_healthy_after_the_odd_bodies(live_server):
    assert httpx.get(live_server.url + "/health").json()["status"] == "ok"
    assert live_server.process.poll() is None


def test_sigterm_lets_the_request_in_flight_finish(served_run, classifier, tmp_path):
    server = start_server(served_run, tmp_path / "server.log")
    body = json.dumps({"texts": ["a great film", "boring and bad"]}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as connection:
        # "100 Continue" comes once the application reads the body: the request is in flight.
        connection.sendall(request_head(len(body), expect="100-continue"))
        assert connection.recv(1024).startswith(b"HTTP/1.1 100"), server.output()
        server.process.send_signal(signal.SIGTERM)
        assert server.wait_for_output("Waiting for connections to close"), server.output()
        connection.sendall(body)
        answer = read_answer(connection)
    assert answer.status == 200, server.output()
    scores = [item["score"] for item in json.loads(answer.body)]
    texts = ["a great film", "boring and bad"]
    np.testing.assert_allclose(scores, [s for _, s in expected(classifier, texts)], atol=1e-6)
    assert server.process.wait(timeout=60) == 0, server.output()
    assert "Shutting down" in server.output()


@pytest.mark.parametrize("broken", ["missing", "garbage"])
def test_a_broken_run_folder_fails_the_start_clearly(tmp_path, broken):
    workdir = tmp_path / "run"
    if broken == "garbage":
        workdir.mkdir()
        (workdir / "model.keras").write_bytes(b"not a model")
        (workdir / "vocabulary.json").write_text("{}")
    result = subprocess.run(
        serve_command(workdir, free_port()), capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("seqnet serve")]
    assert lines == [line for line in lines if f"cannot load {workdir}" in line] and len(lines) == 1


def test_without_the_serve_extra_the_error_says_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['starlette'] = None; from seqnet.cli import main; "
        f"sys.exit(main(['serve', '--workdir', {str(tmp_path)!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert "pip install 'seqnet[serve]'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_the_port_must_be_in_range(port, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--port", port])
    assert "from 1 to 65535" in capsys.readouterr().err


def test_the_batch_wait_is_bounded(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--max-wait-ms", "6"])
    assert exit_info.value.code == 2
    assert "must be from 0 to 5 ms" in capsys.readouterr().err


# The documented limits, written out: a test built from the module's own constants would pass
# whatever they are, and also if `>` became `>=`.
DOCUMENTED_BODY_BYTES = 2_097_152  # 2 MiB
DOCUMENTED_TEXTS = 256
DOCUMENTED_HEADER_BYTES = 65_536  # 64 KiB: request line and headers, final blank line included


def body_of_size(size: int) -> bytes:
    """A valid ``{"texts": [...]}`` body of exactly ``size`` bytes."""
    prefix, suffix = b'{"texts": ["', b'"]}'
    return prefix + b"a" * (size - len(prefix) - len(suffix)) + suffix


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize(("size", "status"), [(DOCUMENTED_BODY_BYTES, 200), (2_097_153, 413)])
def test_the_body_limit_is_exactly_2_mib(live_server, framing, size, status):
    body = body_of_size(size)
    assert len(body) == size
    if framing == "chunked":  # no Content-Length: the server must count what arrives
        content = (body[start : start + 65536] for start in range(0, size, 65536))
    else:
        content = body
    response = httpx.post(live_server.url + "/predict", content=content, timeout=60)
    assert response.status_code == status, response.text
    if status == 413:
        assert f"exceeds {DOCUMENTED_BODY_BYTES} bytes" in response.json()["error"]


@pytest.mark.parametrize(("count", "status"), [(DOCUMENTED_TEXTS, 200), (257, 413)])
def test_a_request_holds_at_most_256_texts(live_server, count, status):
    response = post(live_server, json.dumps({"texts": ["great"] * count}).encode())
    assert response.status_code == status
    if status == 200:
        assert len(response.json()) == DOCUMENTED_TEXTS


def head_of_size(size: int) -> bytes:
    """A ``GET /health`` request whose request line and headers are exactly ``size`` bytes."""
    start, end = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ", b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


@pytest.mark.parametrize(("size", "status"), [(DOCUMENTED_HEADER_BYTES, 200), (65_537, 431)])
def test_the_header_limit_is_exactly_64_kib(live_server, size, status):
    answer = exchange(live_server.port, head_of_size(size))
    assert answer.status == status
    if status == 431:
        assert f"exceed {DOCUMENTED_HEADER_BYTES} bytes" in json.loads(answer.body)["error"]


def resident_bytes(pid: int) -> int:
    """The resident memory of a process, from Linux's /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_100_mb_of_hostile_headers_do_not_grow_the_server(live_server):
    """Ten clients each send a 10 MB header and keep their connection open."""
    before = resident_bytes(live_server.process.pid)
    connections, sent = [], []

    def flood():
        connection = socket.create_connection(("127.0.0.1", live_server.port), timeout=30)
        connections.append(connection)
        try:
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            for _ in range(10):
                connection.sendall(b"a" * 1_048_576)
        except OSError:  # the server hung up on it: what is wanted
            sent.append(False)
        else:
            sent.append(True)

    threads = [threading.Thread(target=flood) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        grown = resident_bytes(live_server.process.pid) - before  # while the clients hold on
        assert grown < 50 * 1024 * 1024, f"the server grew by {grown / 2**20:.0f} MiB"
        assert sent.count(False) == 10, "the server read a whole 10 MB header"
    finally:
        for connection in connections:
            connection.close()
    assert httpx.get(live_server.url + "/health").status_code == 200


@pytest.fixture(scope="module")
def strict_server(served_run, tmp_path_factory):
    """A server with one-second read timeouts, so that the timeout tests stay short."""
    log = tmp_path_factory.mktemp("strict") / "server.log"
    server = start_server(served_run, log, "--header-timeout", "1", "--body-timeout", "1")
    yield server
    server.stop()


@pytest.mark.parametrize(
    "sent", [b"", b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"], ids=["nothing", "half"]
)
def test_headers_that_take_too_long_get_408(strict_server, sent):
    answer = exchange(strict_server.port, sent)  # raises after 30 s if the server still waits
    assert answer.status == 408
    assert "headers took over 1 s" in json.loads(answer.body)["error"]


def test_a_body_that_takes_too_long_gets_408(strict_server):
    answer = exchange(strict_server.port, request_head(100) + b'{"texts": ["slow')
    assert answer.status == 408
    assert "--body-timeout" in json.loads(answer.body)["error"]


def test_slow_clients_cannot_hold_the_shutdown(served_run, tmp_path):
    server = start_server(served_run, tmp_path / "server.log", "--body-timeout", "2")
    connections = []
    for _ in range(5):  # each sends its headers and the start of its body, then nothing
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        connection.sendall(request_head(1000, expect="100-continue"))
        assert connection.recv(1024).startswith(b"HTTP/1.1 100")  # the body is being read
        connection.sendall(b'{"texts": ["trickle')
        connections.append(connection)
    server.process.send_signal(signal.SIGTERM)
    try:  # uvicorn waits up to 30 s for requests in flight; these are ended after 2 s
        assert server.process.wait(timeout=20) == 0, server.output()
        assert all(read_answer(connection).status == 408 for connection in connections)
    finally:
        for connection in connections:
            connection.close()
        server.stop()


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.", ""]
)
def test_a_host_header_naming_another_server_gets_400(live_server, host):
    response = httpx.get(live_server.url + "/health", headers={"Host": host})
    assert response.status_code == 400
    assert "--allowed-host" in response.json()["error"]


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:80", "127.0.0.1:8000", "[::1]:8000"])
def test_loopback_host_names_are_served(live_server, host):
    assert httpx.get(live_server.url + "/health", headers={"Host": host}).status_code == 200


def test_no_redirect_leads_to_another_host(live_server):
    response = httpx.get(live_server.url + "/page.js/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "location" not in response.headers


def test_allowed_host_adds_names(served_run, tmp_path):
    options = ("--allowed-host", "seqnet.test", "--allowed-host", "10.1.2.3")
    server = start_server(served_run, tmp_path / "server.log", *options)
    try:
        for host, status in [("seqnet.test", 200), ("10.1.2.3:80", 200), ("evil.example", 400)]:
            response = httpx.get(server.url + "/health", headers={"Host": host})
            assert response.status_code == status, host
    finally:
        server.stop()


def test_a_full_queue_answers_503_with_retry_after(served_run, tmp_path):
    server = start_server(served_run, tmp_path / "server.log", "--max-queue-texts", "256")
    texts = [" ".join(["great boring film"] * 300)] * 256  # long: each call takes a while
    body = json.dumps({"texts": texts}).encode()

    async def send_all():
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            return await asyncio.gather(*(client.post("/predict", content=body) for _ in range(16)))

    try:
        responses = asyncio.run(send_all())
        health = httpx.get(server.url + "/health").json()
    finally:
        server.stop()
    refused = [response for response in responses if response.status_code == 503]
    assert {response.status_code for response in responses} <= {200, 503}
    assert refused, "16 requests of 256 texts fitted a queue of 256 texts"
    assert all(response.headers["retry-after"] == "1" for response in refused)
    assert all("busy" in response.json()["error"] for response in refused)
    assert health["refused"] == len(refused)
    assert all(len(r.json()) == 256 for r in responses if r.status_code == 200)


def test_the_work_of_clients_that_hung_up_is_dropped(served_run, tmp_path):
    server = start_server(served_run, tmp_path / "server.log", "--max-queue-texts", "8192")
    body = json.dumps({"texts": [" ".join(["great boring film"] * 300)] * 256}).encode()
    try:
        before = httpx.get(server.url + "/health").json()
        connections = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
        for connection in connections:
            connection.sendall(request_head(len(body)) + body)
            connection.shutdown(socket.SHUT_WR)  # hang up: the server sees the end at once
        for connection in connections:  # the server closes each once it saw the hang-up
            connection.settimeout(60)
            while connection.recv(65536):
                pass
            connection.close()
        assert post(server, b'{"texts": ["great"]}').status_code == 200
        after = httpx.get(server.url + "/health").json()
    finally:
        server.stop()
    computed = after["texts"] - before["texts"] - 1
    assert computed < 20 * 256 / 2, f"{computed} texts computed for clients that had left"
    assert after["dropped"] > 0


def test_a_server_whose_table_form_takes_every_pass_compiles_nothing(live_server):
    output = live_server.output()
    assert "Compiling" not in output
    assert output.index("Serving ") < output.index("Uvicorn running on")


class GatedModel:
    """A stand-in model whose calls wait until the test opens the gate, and that fails on
    texts saying "poison"; it records the texts of each call."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> list[float]:
        self.calls.append(list(texts))
        self.started.set()
        assert self.gate.wait(timeout=60)
        if any("poison" in text for text in texts):
            raise ValueError("this text breaks the model")
        return [0.75] * len(texts)


async def started(model: GatedModel) -> None:
    """Wait, off the event loop, until the model call has begun."""
    assert await asyncio.to_thread(model.started.wait, 60)


def run_batcher(scenario, **options):
    """Run ``scenario(batcher, model)`` in an event loop with a started batcher."""
    from concurrent.futures import ThreadPoolExecutor

    from seqnet.serve import MicroBatcher

    async def main():
        model = GatedModel()
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = MicroBatcher(model, executor, **options)
            batcher.start()
            try:
                return await asyncio.wait_for(scenario(batcher, model), 60)  # never hangs
            finally:
                model.gate.set()
                await batcher.stop()

    return asyncio.run(main())


def test_a_full_queue_refuses_at_once():
    from seqnet.serve import QueueFull

    async def scenario(batcher, model):
        running = asyncio.ensure_future(batcher.submit(["a"] * 256))
        await started(model)  # the model computes; the queue is empty again
        queued = asyncio.ensure_future(batcher.submit(["b"] * 255))
        await asyncio.sleep(0)  # one turn of the loop: the submission enters the queue
        fits = asyncio.ensure_future(batcher.submit(["c"]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit(["d"])  # 255 + 1 texts wait: one more is refused
        model.gate.set()
        return [len(await job) for job in (running, queued, fits)], batcher.counts["refused"]

    assert run_batcher(scenario, max_queue=256) == ([256, 255, 1], 1)


def test_cancelled_requests_are_not_computed():
    async def scenario(batcher, model):
        running = asyncio.ensure_future(batcher.submit(["first"]))
        await started(model)
        gone = [asyncio.ensure_future(batcher.submit([f"gone {i}"])) for i in range(3)]
        kept = asyncio.ensure_future(batcher.submit(["kept"]))
        await asyncio.sleep(0)
        for job in gone:  # their clients hung up while the model was busy
            job.cancel()
        model.gate.set()
        await running, await kept
        return model.calls, batcher.counts["dropped"]

    calls, dropped = run_batcher(scenario)
    assert calls == [["first"], ["kept"]]
    assert dropped == 3


def test_one_failing_request_does_not_fail_those_batched_with_it():
    async def scenario(batcher, model):
        blocker = asyncio.ensure_future(batcher.submit(["first"]))
        await started(model)  # the next six wait together, so they share one model call
        texts = [["good 1"], ["good 2", "good 3"], ["poison"], ["good 4"], ["good 5"], ["g6"]]
        jobs = [asyncio.ensure_future(batcher.submit(batch)) for batch in texts]
        await asyncio.sleep(0)
        model.gate.set()
        await blocker
        return await asyncio.gather(*jobs, return_exceptions=True), model.calls

    results, calls = run_batcher(scenario)
    assert isinstance(results[2], ValueError)
    assert [r for i, r in enumerate(results) if i != 2] == [[0.75], [0.75] * 2] + [[0.75]] * 3
    assert calls[1] == ["good 1", "good 2", "good 3", "poison", "good 4", "good 5", "g6"]


def _serve_without_a_port(monkeypatch, capsys):
    """``seqnet.serve`` with uvicorn stubbed out: what it had printed as warm-up began (one
    entry per call of ``serve``), and the options each call gave ``uvicorn.run``."""
    import seqnet.serve as serving

    printed_at_compile, runs = [], []
    real_warm_up = serving.warm_up

    def warm_up(classifier):
        printed_at_compile.append(capsys.readouterr().out)
        real_warm_up(classifier)

    monkeypatch.setattr(serving, "warm_up", warm_up)
    monkeypatch.setattr(serving.uvicorn, "run", lambda app, **options: runs.append(options))
    monkeypatch.setattr(signal, "signal", lambda *arguments: None)  # keep pytest's handlers
    return serving.serve, printed_at_compile, runs


def test_serve_says_what_it_compiles_before_the_port_opens(tmp_path, monkeypatch, capsys):
    """A batch-normalized network has no table form: every padded row count up to 32 (1, 2,
    4, ..., 32) at every bucketed length goes through Keras' compiled predict function."""
    run = build_run(tmp_path / "run", TINY_TEXTS, model=SECOND_MODEL, epochs=1)
    serve, printed_at_compile, _ = _serve_without_a_port(monkeypatch, capsys)
    assert serve(run, port=8123) == 0
    shapes = 6 * len(bucket_sizes(SECOND_MODEL.sequence_length))
    expected = f"Compiling the model for {shapes} input shapes, up to 32 texts a pass"
    assert expected in printed_at_compile[0]


def test_serve_says_what_it_does_before_the_port_opens(served_run, monkeypatch, capsys):
    serve, printed_at_compile, runs = _serve_without_a_port(monkeypatch, capsys)
    assert serve(served_run, port=8123) == 0
    assert printed_at_compile == [""]  # its table form takes every pass: nothing to compile
    assert "Serving" in capsys.readouterr().out
    assert runs[0]["log_level"] == "info"
    assert serve(served_run, quiet=True) == 0
    assert capsys.readouterr().out == ""
    assert runs[1]["log_level"] == "warning"


def test_what_loading_left_is_frozen_before_the_port_opens(served_run, monkeypatch):
    """A full garbage collection over the loaded backend paused requests for 100-200 ms."""
    import gc

    import seqnet.serve as serving

    frozen_when_serving = []
    monkeypatch.setattr(
        serving.uvicorn,
        "run",
        lambda app, **options: frozen_when_serving.append(gc.get_freeze_count()),
    )
    monkeypatch.setattr(signal, "signal", lambda *arguments: None)  # keep pytest's handlers
    gc.unfreeze()
    try:
        assert serving.serve(served_run, quiet=True) == 0
        # Everything alive once loaded: the model, the backend's modules, pytest's own.
        assert frozen_when_serving[0] > len(gc.get_objects()) // 2
    finally:
        gc.unfreeze()


def test_the_serve_options_reach_serve(monkeypatch):
    import seqnet.serve as serving

    calls = []
    monkeypatch.setattr(serving, "serve", lambda workdir, **options: calls.append(options) or 0)
    options = ["--quiet", "--allowed-host", "a.test", "--allowed-host", "b.test"]
    options += ["--header-timeout", "3", "--body-timeout", "4", "--max-queue-texts", "512"]
    assert main(["serve", *options]) == 0
    limits = calls[0]["limits"]
    assert (limits.header_timeout, limits.body_timeout, limits.max_queue_texts) == (3, 4, 512)
    assert calls[0]["allowed_hosts"] == ["a.test", "b.test"] and calls[0]["quiet"] is True


def test_the_queue_holds_at_least_one_full_request(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--max-queue-texts", "255"])
    assert "at least 256" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("hosts", "host", "status"),
    [
        (["*"], "evil.example", 200),
        (["seqnet.test"], "SEQNET.test:8000", 200),
        (["::1"], "[::1]", 200),
        (["::1"], "[::1]:80", 200),
        (["127.0.0.1"], "127.0.0.1:80:80", 400),
        (["seqnet.test"], "seqnet.test.evil.example", 400),
    ],
)
def test_the_host_check_reads_names_ports_and_the_wildcard(hosts, host, status):
    from starlette.responses import PlainTextResponse

    from seqnet.serve import AllowedHosts

    app = AllowedHosts(PlainTextResponse("ok"), hosts=hosts)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", host.encode())]}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == status
