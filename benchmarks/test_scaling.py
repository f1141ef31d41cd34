"""Data-parallel scaling: throughput at 1, 2 and 4 devices and the scaling efficiency.

Runs with ``--full``, or whenever the backend sees more than one device. On a CPU-only machine
the simulated devices share the same cores: a functional check of the engines, not a speed-up.
"""

from __future__ import annotations

import dataclasses

import keras
import pytest

from benchmarks.devices import visible_devices
from benchmarks.scaling import ScalingSettings, measure_scaling


def test_data_parallel_scaling(benchmark, request):
    several_devices = len(visible_devices(keras.backend.backend())) > 1
    if not (request.config.getoption("--full") or several_devices):
        pytest.skip("one device visible: run with --full to simulate several")
    benchmark.group = f"{keras.backend.backend()} data-parallel scaling"
    points = benchmark.pedantic(measure_scaling, args=(ScalingSettings(),), rounds=1, iterations=1)
    benchmark.extra_info.update(
        backend=keras.backend.backend(),
        simulated=not several_devices,
        scaling=[dataclasses.asdict(point) for point in points],
    )
