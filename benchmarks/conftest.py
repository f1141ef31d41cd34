"""Benchmark options: ``--full`` for longer runs, ``--data`` for time-to-accuracy on real IMDB."""

from __future__ import annotations

import keras
import pytest

from benchmarks.devices import visible_devices
from benchmarks.workloads import BenchConfig


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", help="measure longer (more rounds, samples)")
    parser.addoption(
        "--data", default=None, help="aclImdb_v1.tar.gz for time-to-accuracy (with --full)"
    )


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", visible_devices(keras.backend.backend()))


@pytest.fixture(scope="session")
def bench_config(request) -> BenchConfig:
    return BenchConfig.full() if request.config.getoption("--full") else BenchConfig()
