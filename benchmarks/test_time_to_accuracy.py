"""Time to 0.885 test accuracy on real IMDB (``--full --data aclImdb_v1.tar.gz``)."""

from __future__ import annotations

import keras
import pytest

from benchmarks.workloads import BenchConfig, environment, memory, time_to_accuracy


@pytest.mark.parametrize("lecture", [False, True], ids=["seqnet", "lecture"])
def test_time_to_accuracy(benchmark, request, lecture):
    data = request.config.getoption("--data")
    if not (request.config.getoption("--full") and data):
        pytest.skip("needs --full and --data path/to/aclImdb_v1.tar.gz")
    result = benchmark.pedantic(
        time_to_accuracy, args=(data,), kwargs={"lecture": lecture}, rounds=1, iterations=1
    )
    benchmark.group = f"{keras.backend.backend()} time to accuracy"
    benchmark.extra_info.update(
        environment(BenchConfig(), "cpu:0"),
        **memory("cpu:0"),
        figures={result["workload"]: result},
    )
