"""Benchmark options: ``--full`` for longer runs; ``--data`` for the real IMDB archive (its load
time, and with ``--full`` the time to accuracy, once per ``--seeds``)."""

from __future__ import annotations

import keras
import pytest

from benchmarks.devices import visible_devices
from benchmarks.workloads import SEEDS, BenchConfig


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", help="measure longer (more rounds, samples)")
    parser.addoption(
        "--data", default=None, help="aclImdb_v1.tar.gz: data load; with --full, time to accuracy"
    )
    parser.addoption(
        "--seeds",
        default=",".join(map(str, SEEDS)),
        type=parse_seeds,
        help="comma-separated seeds for time to accuracy (default: %(default)s)",
    )


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` as ``[0, 1, 2]``; a clear error for anything else."""
    try:
        seeds = [int(seed) for seed in text.split(",") if seed.strip()]
    except ValueError:
        raise pytest.UsageError(f"--seeds takes comma-separated integers, got {text!r}") from None
    if not seeds:
        raise pytest.UsageError("--seeds needs at least one seed")
    return seeds


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", visible_devices(keras.backend.backend()))
    if "seed" in metafunc.fixturenames:
        metafunc.parametrize("seed", metafunc.config.getoption("--seeds"), ids=lambda s: f"seed{s}")


@pytest.fixture(scope="session")
def bench_config(request) -> BenchConfig:
    return BenchConfig.full() if request.config.getoption("--full") else BenchConfig()
