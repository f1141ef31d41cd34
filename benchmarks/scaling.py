"""Data-parallel scaling: training throughput at 1, 2, 4 … devices, each count in its own
process (simulated devices must exist before the backend starts).

``python -m benchmarks.scaling --devices N`` is the worker that times one count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from seqnet.config import ModelConfig
from seqnet.parallel import (
    ReplicaLayout,
    open_replicas,
    simulate_cpu_devices,
    torch_launch_options,
)

# A stuck worker (a collective waiting for a peer that died) fails the benchmark, never hangs it.
WORKER_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class ScalingSettings:
    """One scaling measurement: the same global batches on 1, 2, 4 … simulated CPU devices."""

    device_counts: tuple[int, ...] = (1, 2, 4)
    batch_size: int = 32  # global: divisible by every device count
    steps: int = 4  # optimizer steps per epoch
    rounds: int = 2  # timed epochs after one warm-up epoch; the fastest counts
    model: ModelConfig = field(default_factory=lambda: ModelConfig(dropout_rate=0.0))

    def __post_init__(self) -> None:
        for count in self.device_counts:
            ReplicaLayout(strategy="data-parallel", replicas=count).per_replica_batch_size(
                self.batch_size
            )


@dataclass(frozen=True)
class ScalingPoint:
    """Training throughput on ``devices`` replicas, against one replica of the same engine."""

    devices: int
    samples_per_second: float
    speedup: float  # throughput / throughput on one device
    efficiency: float  # speedup / devices: 1.0 is perfect strong scaling


def measure_scaling(settings: ScalingSettings | None = None) -> list[ScalingPoint]:
    """Time data-parallel training of the current backend at each device count, each in its own
    process (simulated devices must exist before the backend starts). On a CPU-only machine
    the devices share the cores, so expect efficiency near 1 / devices: a functional check.
    """
    import keras

    settings = settings or ScalingSettings()
    backend = keras.backend.backend()  # also when keras.json, not KERAS_BACKEND, chose it
    counts = settings.device_counts
    throughputs = [_time_in_subprocess(backend, count, settings) for count in counts]
    # Relative to the first count (normally 1): strong scaling, the global batch stays fixed.
    speedups = [throughput / throughputs[0] for throughput in throughputs]
    return [
        ScalingPoint(count, throughput, speedup, speedup * counts[0] / count)
        for count, throughput, speedup in zip(counts, throughputs, speedups, strict=True)
    ]


def _time_in_subprocess(backend: str, devices: int, settings: ScalingSettings) -> float:
    worker = ["-m", "benchmarks.scaling", "--devices", str(devices)]
    worker += ["--batch-size", str(settings.batch_size), "--steps", str(settings.steps)]
    worker += ["--rounds", str(settings.rounds)]
    worker += ["--model", json.dumps(asdict(settings.model))]
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if backend == "torch":
        # One process per device; they share the cores, so give each its fair share of threads.
        environment["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // devices))
        worker = ["-m", "torch.distributed.run", *torch_launch_options(devices), *worker]
    try:
        completed = subprocess.run(
            [sys.executable, *worker],
            env=environment,
            cwd=Path(__file__).parents[1],  # the checkout, where `benchmarks` is importable
            capture_output=True,
            text=True,
            check=False,
            timeout=WORKER_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"scaling worker on {devices} devices ran past {WORKER_TIMEOUT_SECONDS} s; stopped"
        ) from None
    if completed.returncode != 0:
        raise RuntimeError(
            f"scaling worker on {devices} devices failed:\n{completed.stderr[-3000:]}"
        )
    return float(json.loads(completed.stdout.strip().splitlines()[-1])["samples_per_second"])


def _timed_training(devices: int, settings: ScalingSettings) -> float:
    """Samples per second of the fastest timed epoch, after a warm-up: the worker's job."""
    import keras

    from seqnet.data import make_synthetic
    from seqnet.model import build_model
    from seqnet.train import EpochTimer

    if keras.backend.backend() != "torch":
        simulate_cpu_devices(devices)
    samples = settings.batch_size * settings.steps
    data = make_synthetic(
        num_words=settings.model.vocabulary_size,
        maxlen=settings.model.sequence_length,
        samples=samples,
    )
    keras.utils.set_random_seed(0)
    timer = EpochTimer()
    with open_replicas("data-parallel") as replicas:
        with replicas.scope():
            model = build_model(settings.model)
        replicas.fit(
            model,
            data.x_train,
            data.y_train,
            batch_size=settings.batch_size,
            epochs=1 + settings.rounds,
            callbacks=[timer],
            verbose=0,
        )
    # The second epoch can still compile (JAX re-lays out the optimizer state): take the best.
    fastest = min(timer.epoch_seconds[1:])
    return samples / fastest if replicas.layout.is_chief else float("nan")


def main(argv: list[str] | None = None) -> int:
    """The scaling benchmark's worker: ``python -m benchmarks.scaling --devices N …``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling")
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=ScalingSettings.batch_size)
    parser.add_argument("--steps", type=int, default=ScalingSettings.steps)
    parser.add_argument("--rounds", type=int, default=ScalingSettings.rounds)
    parser.add_argument("--model", default="{}", help="ModelConfig fields as JSON")
    args = parser.parse_args(argv)
    settings = ScalingSettings(
        device_counts=(args.devices,),
        batch_size=args.batch_size,
        steps=args.steps,
        rounds=args.rounds,
        model=ModelConfig(**json.loads(args.model)),
    )
    throughput = _timed_training(args.devices, settings)
    if throughput == throughput:  # NaN on the non-chief torch processes: only the chief reports
        print(json.dumps({"devices": args.devices, "samples_per_second": throughput}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
