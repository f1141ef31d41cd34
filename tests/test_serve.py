"""``seqnet serve`` as people and programs meet it: a real server process spoken to over HTTP."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving import free_port, serve_command, start_server

from seqnet.cli import build_parser, main
from seqnet.predict import Classifier, label_and_score
from seqnet.serve import MAX_BODY_BYTES, MAX_TEXTS

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


def expected(classifier: Classifier, texts: list[str]) -> list[tuple[str, float]]:
    return [label_and_score(p) for p in classifier.predict_probabilities(texts)]


@pytest.mark.parametrize(
    ("probability", "label", "score"),
    [
        (0.97, "positive", 0.97),
        (0.5, "positive", 0.5),
        (0.2, "negative", 0.8),
        (0.0, "negative", 1.0),
    ],
)
def test_label_and_score_follow_the_convention(probability, label, score):
    assert label_and_score(probability) == pytest.approx((label, score))
    assert type(label_and_score(np.float32(probability))[1]) is float


def test_threshold_moves_the_boundary():
    assert label_and_score(0.6, threshold=0.7) == pytest.approx(("negative", 0.4))


def test_predictions_match_the_classifier_in_order(live_server, classifier):
    response = post(live_server, json.dumps({"texts": REVIEWS}).encode())
    assert response.status_code == 200
    answer = response.json()
    assert [item["label"] for item in answer] == [
        label for label, _ in expected(classifier, REVIEWS)
    ]
    scores = [score for _, score in expected(classifier, REVIEWS)]
    np.testing.assert_allclose([item["score"] for item in answer], scores, atol=1e-6)


def test_health_names_backend_and_model(live_server, served_run):
    import keras

    health = httpx.get(live_server.url + "/health").json()
    assert health["status"] == "ok"
    assert health["backend"] == keras.backend.backend()
    assert health["model"] == str(served_run.resolve())
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
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
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
    signalled, resume = threading.Event(), threading.Event()

    def slow_body():  # the request is in flight while SIGTERM arrives
        yield b'{"texts": ["a great film", '
        signalled.set()
        resume.wait(timeout=30)
        yield b'"boring and bad"]}'

    def send(results):
        results.append(httpx.post(server.url + "/predict", content=slow_body(), timeout=60))

    results = []
    sender = threading.Thread(target=send, args=(results,))
    sender.start()
    assert signalled.wait(timeout=30)
    time.sleep(0.3)  # let the server read the first chunk
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # uvicorn is now shutting down, waiting for this request
    resume.set()
    sender.join(timeout=60)
    assert results and results[0].status_code == 200, server.output()
    scores = [item["score"] for item in results[0].json()]
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
