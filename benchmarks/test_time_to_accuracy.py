"""Real IMDB (``--data aclImdb_v1.tar.gz``): how long the data takes to load and, with
``--full``, the time to 0.885 test accuracy for each of ``--seeds`` and the practitioner's
TF-IDF baseline beside it."""

from __future__ import annotations

import keras
import pytest

from benchmarks.baselines import tfidf_logistic_regression
from benchmarks.report import summarize_runs
from benchmarks.workloads import (
    BenchConfig,
    data_load_seconds,
    environment,
    memory,
    time_to_accuracy,
)


def test_time_to_accuracy(benchmark, request, device, seed):
    """seqnet's default recipe, then the lecture's plain Keras, for one seed on one device.

    Both sides of a seed run back to back, so a slow spell on a shared machine hits both.
    """
    data = request.config.getoption("--data")
    if not (request.config.getoption("--full") and data):
        pytest.skip("needs --full and --data path/to/aclImdb_v1.tar.gz")
    results = []

    def both_sides():
        for lecture in (False, True):
            results.append(time_to_accuracy(data, lecture=lecture, seed=seed, device=device))

    benchmark.group = f"{keras.backend.backend()} {device} time to accuracy"
    benchmark.pedantic(both_sides, rounds=1, iterations=1)
    benchmark.extra_info.update(
        environment(BenchConfig(), device),
        **memory(device),
        # One run per side; the report's merge gathers the seeds into a mean.
        figures={result["workload"]: summarize_runs([result]) for result in results},
    )


def test_data_load(benchmark, request, tmp_path):
    """``read_dataset`` on the archive with an empty cache, then again from that cache."""
    data = request.config.getoption("--data")
    if not data:
        pytest.skip("needs --data path/to/aclImdb_v1.tar.gz")
    benchmark.group = f"{keras.backend.backend()} data load"
    result = benchmark.pedantic(data_load_seconds, args=(data, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info.update(
        environment(BenchConfig(), "cpu:0"), **memory("cpu:0"), figures={"data_load": result}
    )


def test_practitioner_baseline(benchmark, request):
    """scikit-learn's TF-IDF + logistic regression on the same archive and cores."""
    data = request.config.getoption("--data")
    if not (request.config.getoption("--full") and data):
        pytest.skip("needs --full and --data path/to/aclImdb_v1.tar.gz")
    benchmark.group = f"{keras.backend.backend()} practitioner's baseline"
    result = benchmark.pedantic(tfidf_logistic_regression, args=(data,), rounds=1, iterations=1)
    benchmark.extra_info.update(
        environment(BenchConfig(), "cpu:0"), **memory("cpu:0"), figures={"tfidf_baseline": result}
    )
