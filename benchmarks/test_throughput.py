"""Every workload of seqnet.bench, timed by pytest-benchmark on every visible device.

seqnet's own figures (samples/s, GFLOP/s, latency percentiles, versions, device) go into each
entry's ``extra_info``; ``python -m benchmarks.report`` merges the per-backend JSON files.
"""

from __future__ import annotations

import keras
import pytest

from benchmarks.step_profile import step_profile
from benchmarks.workloads import (
    SIDE_BY_SIDE,
    WORKLOADS,
    environment,
    figures,
    memory,
    on_device,
    rounds_for,
    time_side_by_side,
)


@pytest.mark.parametrize("name", [name for name in WORKLOADS if name not in SIDE_BY_SIDE])
def test_workload(benchmark, bench_config, device, name):
    workload = WORKLOADS[name](bench_config, device)  # built and warmed up, not timed
    benchmark.group = f"{keras.backend.backend()} {device}"
    benchmark.pedantic(workload.run, rounds=rounds_for(workload, bench_config), iterations=1)
    round_seconds = list(benchmark.stats.stats.data)
    benchmark.extra_info.update(
        environment(bench_config, device),
        **memory(device),
        figures={name: figures(workload, round_seconds, bench_config)},
    )


def test_training_side_by_side(benchmark, bench_config, device):
    """seqnet, the lecture's plain Keras, native code and the bare convolution, in turn."""
    workloads = [WORKLOADS[name](bench_config, device) for name in SIDE_BY_SIDE]
    seconds: dict[str, list[float]] = {}

    def one_round_of_each():
        for name, times in time_side_by_side(workloads, rounds=1).items():
            seconds.setdefault(name, []).extend(times)

    benchmark.group = f"{keras.backend.backend()} {device}"
    benchmark.pedantic(one_round_of_each, rounds=bench_config.rounds, iterations=1)
    benchmark.extra_info.update(
        environment(bench_config, device),
        **memory(device),
        figures={w.name: figures(w, seconds[w.name], bench_config) for w in workloads},
    )


def test_step_profile(benchmark, bench_config, device):
    """Where seqnet's training step goes: each piece's cost, found by taking it away."""
    profiles = []

    def profile():
        with on_device(device):
            profiles.append(
                step_profile(
                    bench_config.model,
                    batch_size=bench_config.batch_size,
                    samples=bench_config.train_samples,
                    rounds=bench_config.rounds,
                )
            )

    benchmark.group = f"{keras.backend.backend()} {device} step profile"
    benchmark.pedantic(profile, rounds=1, iterations=1)
    benchmark.extra_info.update(
        environment(bench_config, device), **memory(device), figures={"step_profile": profiles[0]}
    )
