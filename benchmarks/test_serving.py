"""Serving under load: ``seqnet serve`` as a real process, 32 clients on loopback.

A default-size model trained briefly on synthetic data is served (its weights do not change
the cost of a forward pass); ``--full`` measures 30 s, the default run 3 s.
"""

from __future__ import annotations

import keras

from benchmarks.serving_load import run_load_test
from benchmarks.workloads import BenchConfig, environment, memory

CLIENTS = 32
REVIEWS_PER_REQUEST = 4


def test_serving_under_load(benchmark, request, tmp_path):
    from seqnet.config import TrainConfig
    from seqnet.train import train_and_evaluate

    train_and_evaluate(TrainConfig(epochs=1, synthetic_samples=64), tmp_path, verbose=0)
    seconds = 30 if request.config.getoption("--full") else 3
    result = benchmark.pedantic(
        run_load_test,
        args=(tmp_path, CLIENTS, seconds, REVIEWS_PER_REQUEST),
        rounds=1,
        iterations=1,
    )
    load, single = result["load"], result["single"]
    assert load["errors"] == 0 and single["errors"] == 0, result
    benchmark.group = f"{keras.backend.backend()} serving"
    benchmark.extra_info.update(
        environment(BenchConfig(), "cpu:0"),
        **memory("cpu:0"),
        figures={
            "serving": {
                "workload": "serving",
                "requests_per_second": load["requests_per_s"],
                "reviews_per_second": load["reviews_per_s"],
                "p50_ms": load["p50_ms"],
                "p95_ms": load["p95_ms"],
                "p99_ms": load["p99_ms"],
                "single_review_p50_ms": single["p50_ms"],
                "load_generator": result["load_generator"],
                "concurrency": CLIENTS,
                "reviews_per_request": REVIEWS_PER_REQUEST,
                "seconds": seconds,
            }
        },
    )
