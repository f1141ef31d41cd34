"""Every workload of seqnet.bench, timed by pytest-benchmark on every visible device.

seqnet's own figures (samples/s, GFLOP/s, latency percentiles, versions, device) go into each
entry's ``extra_info``; ``python -m seqnet.report`` merges the per-backend JSON files.
"""

from __future__ import annotations

import keras
import pytest

from seqnet.bench import WORKLOADS, environment, figures, memory, rounds_for


@pytest.mark.parametrize("name", list(WORKLOADS))
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
