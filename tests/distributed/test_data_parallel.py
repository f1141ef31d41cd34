"""Data-parallel training equals one-device training on the same global batches, per backend.

Each backend trains the default model (dropout 0, no shuffling) for two epochs of three steps on
simulated devices in a fresh process, then on one device; weights, Adam's moments and per-epoch
metrics must agree, which holds only if the replicas' gradients are averaged over the whole
global batch. 82 or 81 samples with a global batch of 32 also check that an epoch is trimmed to
a multiple of the replica count (80: batches of 32, 32, 16) and that a short last batch is split
evenly.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from supervise import default_timeout, run_processes

from seqnet.config import TrainConfig
from seqnet.parallel import ReplicaLayout, free_local_port, open_replicas, torch_launch_options
from seqnet.parallel.tensorflow_engine import tensorflow_cluster
from seqnet.parallel.torch_engine import torch_process

pytestmark = pytest.mark.distributed

SKIP_REASON = "data-parallel tests run apart: nox -s distributed, or pytest -m distributed"

WORKER = Path(__file__).with_name("worker.py")
ROOT = Path(__file__).parents[2]
BACKEND = keras.backend.backend()
TOLERANCE = 1e-4  # float32 sums in another order; a missing average would be off by far more
BATCH_SIZE = 32
VALIDATION_SAMPLES = 80  # divisible by every replica count used here


@pytest.fixture(autouse=True)
def _only_when_selected(request):
    """A plain pytest run skips these (each starts training processes); -m decides otherwise.

    With ``-m "not distributed"`` they are deselected anyway, with ``-m distributed`` they run.
    """
    if not request.config.getoption("markexpr"):
        pytest.skip(SKIP_REASON)


def only_on(backend: str):
    return pytest.mark.skipif(backend != BACKEND, reason=f"needs KERAS_BACKEND={backend}")


def worker_environment(**extra: str) -> dict[str, str]:
    """The test's environment for a child: this checkout first on the path, quiet TensorFlow."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    quiet = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONFAULTHANDLER": "1"}  # a crash shows its stack
    return {**os.environ, "PYTHONPATH": path, **quiet, **extra}


def run(command: list[str], environment: dict[str, str], logs: Path) -> None:
    run_together(command, [environment], logs)


def run_together(command: list[str], environments: list[dict[str, str]], logs: Path) -> None:
    """Start one process per environment, as a multi-host job would; all must succeed in time.

    Their logs go to ``logs``; see ``supervise`` for the deadline and how a hang is stopped.
    """
    run_processes(command, environments, logs, timeout=default_timeout())


def worker_command(devices: int, samples: int, output: Path) -> list[str]:
    return [
        str(WORKER),
        f"--devices={devices}",
        f"--samples={samples}",
        f"--validation-samples={VALIDATION_SAMPLES}",
        f"--batch-size={BATCH_SIZE}",
        f"--output={output}",
    ]


def largest_difference(saved, kind: str) -> float:
    names = [name for name in saved.files if name.startswith(f"parallel_{kind}_")]
    assert names, f"the worker saved no {kind}s"
    return max(
        float(np.max(np.abs(saved[name] - saved[name.replace("parallel", "single")])))
        for name in names
    )


def largest_relative_difference(saved, kind: str) -> float:
    """Per array, |parallel - single| / |single| (Euclidean norms): scale-free."""
    names = [name for name in saved.files if name.startswith(f"parallel_{kind}_")]
    single = [saved[name.replace("parallel", "single")] for name in names]
    return max(
        float(np.linalg.norm(saved[name] - expected) / max(np.linalg.norm(expected), 1e-30))
        for name, expected in zip(names, single, strict=True)
    )


def assert_matches_one_device(output: Path, replicas: int) -> None:
    """Weights, Adam's moments and metrics of the two runs agree; print the differences."""
    saved = np.load(output)
    assert int(saved["replicas"]) == replicas
    assert int(saved["usable_samples"]) == 80
    weights = largest_difference(saved, "weight")
    # Adam's steps hardly depend on the gradients' scale, so a sum where a mean belongs would
    # leave the weights alike; its moments are proportional to the gradients and would not.
    moments = largest_relative_difference(saved, "optimizer")
    moved = max(
        float(np.max(np.abs(saved[name] - saved[name.replace("initial", "single")])))
        for name in saved.files
        if name.startswith("initial_weight_")
    )
    print(
        f"\n{BACKEND}, {replicas} replicas: max |weight difference| {weights:.3g} "
        f"(training moved weights by up to {moved:.3g}); "
        f"max relative difference of Adam's state {moments:.3g}"
    )
    assert weights <= TOLERANCE and moved > 10 * TOLERANCE
    assert moments <= 1e-3
    for metric in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            saved[f"parallel_history_{metric}"],
            saved[f"single_history_{metric}"],
            atol=TOLERANCE,
            err_msg=metric,
        )


@only_on("jax")
def test_jax_four_simulated_devices_match_one_device(tmp_path):
    output = tmp_path / "weights.npz"
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"
    environment = worker_environment(XLA_FLAGS=flags.strip())
    run([sys.executable, *worker_command(4, 82, output)], environment, tmp_path)
    assert_matches_one_device(output, replicas=4)


@only_on("tensorflow")
def test_tensorflow_two_logical_cpus_match_one_device(tmp_path):
    output = tmp_path / "weights.npz"
    run([sys.executable, *worker_command(2, 81, output)], worker_environment(), tmp_path)
    assert_matches_one_device(output, replicas=2)


@only_on("torch")
def test_torch_two_gloo_processes_match_one_device(tmp_path):
    output = tmp_path / "weights.npz"
    launcher = [sys.executable, "-m", "torch.distributed.run", *torch_launch_options(2)]
    # gloo talks over the loopback interface only; one thread each, as the two share the cores.
    environment = worker_environment(GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    run([*launcher, *worker_command(2, 81, output)], environment, tmp_path)
    assert_matches_one_device(output, replicas=2)


# --- several hosts, simulated by processes on 127.0.0.1 ------------------------------------


@only_on("jax")
def test_jax_two_processes_of_two_devices_match_one_device(tmp_path):
    output = tmp_path / "weights.npz"
    shared = {
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{free_local_port()}",
        "JAX_NUM_PROCESSES": "2",
    }
    environments = [worker_environment(**shared, JAX_PROCESS_ID=str(rank)) for rank in (0, 1)]
    run_together([sys.executable, *worker_command(2, 82, output)], environments, tmp_path)
    assert_matches_one_device(output, replicas=4)


@only_on("tensorflow")
def test_tensorflow_two_workers_match_one_device(tmp_path):
    output = tmp_path / "weights.npz"
    workers = [f"127.0.0.1:{free_local_port()}" for _ in range(2)]
    environments = [
        worker_environment(
            TF_CONFIG=json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            )
        )
        for index in (0, 1)
    ]
    run_together([sys.executable, *worker_command(1, 81, output)], environments, tmp_path)
    assert_matches_one_device(output, replicas=2)


# --- the whole command, as a user runs it ---------------------------------------------------


def train_command(workdir: Path) -> list[str]:
    return [
        *("-m", "seqnet", "train", "--data", "synthetic", "--synthetic-samples", "64"),
        *("--epochs", "1", "--batch-size", "16", "--distribute", "data-parallel"),
        *("--workdir", str(workdir)),
    ]


def expected_replicas() -> tuple[list[str], dict[str, str], int]:
    """How to launch ``seqnet train`` on two replicas here; TensorFlow's CLI sees one CPU."""
    if BACKEND == "jax":
        return [sys.executable], {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, 2
    if BACKEND == "torch":
        launcher = [sys.executable, "-m", "torch.distributed.run", *torch_launch_options(2)]
        return launcher, {"GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}, 2
    return [sys.executable], {}, 1  # a one-replica MirroredStrategy: the documented fallback


def test_train_command_writes_one_run_folder(tmp_path):
    launcher, extra, replicas = expected_replicas()
    workdir = tmp_path / "run"
    run([*launcher, *train_command(workdir)], worker_environment(**extra), tmp_path)
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["config"]["distribute"] == "data-parallel"
    assert metrics["distribution"]["replicas"] == replicas
    assert metrics["train_samples"] == 64 and len(metrics["history"]) == 1
    written = {path.name for path in workdir.iterdir()}
    assert {"history.png", "metrics.json", "model.keras", "vocabulary.json"} <= written


# --- in this process: one device, and the checks on bad input --------------------------------


def test_one_device_data_parallel_equals_a_plain_fit():
    """Without simulated devices or torchrun, "data-parallel" is a one-replica run."""
    from seqnet.config import ModelConfig
    from seqnet.data import make_synthetic
    from seqnet.model import build_model

    config = ModelConfig(
        vocabulary_size=100,
        sequence_length=20,
        embedding_dim=4,
        filters=4,
        hidden_units=4,
        dropout_rate=0.0,
    )
    data = make_synthetic(num_words=100, maxlen=20, samples=30)
    options = dict(batch_size=8, epochs=2, verbose=0)
    keras.utils.set_random_seed(5)
    plain = build_model(config)
    initial = plain.get_weights()
    plain.fit(data.x_train, data.y_train, shuffle=False, **options)
    with open_replicas("data-parallel") as replicas:
        with replicas.scope():
            model = build_model(config)
        model.set_weights(initial)
        replicas.fit(model, data.x_train, data.y_train, **options)
    assert replicas.layout.replicas == 1 and replicas.layout.is_chief
    for got, expected in zip(model.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_global_batch_must_split_evenly():
    layout = ReplicaLayout(strategy="data-parallel", replicas=4)
    assert layout.per_replica_batch_size(32) == 8
    with pytest.raises(ValueError, match=r"global batch.*multiple of 4, e\.g\. 28 or 32"):
        layout.per_replica_batch_size(30)
    with pytest.raises(ValueError, match="multiple of 4"):
        layout.per_replica_batch_size(2)


def test_an_epoch_keeps_a_multiple_of_the_replicas():
    layout = ReplicaLayout(strategy="data-parallel", replicas=4, processes=2, process_index=1)
    assert layout.usable_samples(82) == 80 and not layout.is_chief
    with pytest.raises(ValueError, match="at least 4"):
        layout.usable_samples(3)
    with pytest.raises(ValueError, match="same number of devices"):
        ReplicaLayout(strategy="data-parallel", replicas=3, processes=2)


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match="none, data-parallel"):
        ReplicaLayout(strategy="model-parallel")
    with pytest.raises(ValueError, match="distribute must be one of"):
        TrainConfig(distribute="mirrored")
    with pytest.raises(ValueError, match="none, data-parallel"), open_replicas("pipeline"):
        pass


def test_tf_config_gives_workers_and_this_task():
    assert tensorflow_cluster("").processes == 1
    workers = {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}
    cluster = tensorflow_cluster(
        json.dumps({"cluster": workers, "task": {"type": "worker", "index": 1}})
    )
    assert (cluster.processes, cluster.process_index) == (2, 1)
    with_chief = {"chief": ["10.0.0.9:2222"], **workers}
    task = {"type": "worker", "index": 0}
    cluster = tensorflow_cluster(json.dumps({"cluster": with_chief, "task": task}))
    assert (cluster.processes, cluster.process_index) == (3, 1)
    with pytest.raises(ValueError, match="TF_CONFIG must be JSON"):
        tensorflow_cluster("{not json")
    with pytest.raises(ValueError, match="takes no part"):
        tensorflow_cluster(json.dumps({"cluster": workers, "task": {"type": "ps", "index": 0}}))


def test_torchrun_variables_name_this_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not torch_process().launched
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    process = torch_process()
    assert (process.rank, process.local_rank, process.world_size) == (3, 1, 4)
    monkeypatch.setenv("RANK", "three")
    with pytest.raises(ValueError, match="RANK must be an integer"):
        torch_process()
