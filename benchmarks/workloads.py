"""What seqnet's benchmarks measure, for the current backend: one workload per figure.

Each workload is prepared (model built, compiled, warmed up: that first-call time is reported
apart as ``first_step_seconds``) and then timed in rounds by the caller: pytest-benchmark in
``benchmarks/``, or ``time_rounds`` for ``seqnet bench``. Only ``keras.ops`` and Keras
layers appear here; native baselines come from ``benchmarks.native``.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import keras
import numpy as np

from benchmarks import native
from benchmarks.devices import device_name, device_peak_memory_bytes, visible_devices
from seqnet.buckets import BucketedBatches, bucketed_batches, fit_input
from seqnet.config import LECTURE_RECIPE, ModelConfig, TrainConfig
from seqnet.data import make_synthetic, read_dataset
from seqnet.layers import SPARSE_CONVOLUTION_GRADIENT
from seqnet.model import architecture_of, build_model, portable_model
from seqnet.parallel import ReplicaLayout, keras_fit
from seqnet.predict import Classifier

REVIEW = "A wonderful, moving film with a clever script and superb acting."


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of one benchmark run; the defaults fit all three backends in minutes on 2 cores."""

    batch_size: int = 32  # the lecture's recipe
    # seqnet's default recipe trains at its own batch; read from TrainConfig, never restated.
    default_batch_size: int = TrainConfig.batch_size
    train_samples: int = 1024  # reviews per timed training round
    rounds: int = 3  # timed rounds per figure, after one warm-up
    inference_batch_size: int = 1024
    inference_samples: int = 4096
    latency_calls: int = 40  # single-review predictions for p50 / p95
    matmul_size: int = 2048  # float32 (n, n) @ (n, n): 2 n^3 FLOPs
    learning_rate: float = LECTURE_RECIPE["learning_rate"]  # Adam's, constant, as in the lecture
    model: ModelConfig = field(default_factory=ModelConfig)

    @classmethod
    def full(cls) -> BenchConfig:
        return cls(train_samples=4096, rounds=5, inference_samples=16384, latency_calls=200)


@dataclass(frozen=True)
class FlopCount:
    """Analytic floating-point operations per review (1 multiply-add = 2 FLOPs).

        forward = 2 * (L_out * filters * kernel * embedding  # Conv1D, L_out = length - kernel + 1
                       + filters * hidden + hidden)          # the two Dense layers
        training = 3 * forward  # a dense backward ~ twice forward: input and weight gradients
        convolution_training = 3 * 2 * L_out * filters * kernel * embedding
        sparse_training = training - 2 * 2 * (L_out - 1) * filters * kernel * embedding

    ``sparse_training`` is what seqnet's fused layer does: its backward reads one window per
    filter (``seqnet.layers.max_pooled_convolution``), not all ``L_out``. Counting the dense
    backward for it would report work never done, and rates above the machine's peak.
    The embedding lookup, ReLU, max-pooling, dropout and the optimizer are ignored (<1 %).
    """

    forward: int
    training: int
    convolution_training: int  # the convolution's share of ``training``
    sparse_training: int  # ``training`` with the convolution's backward over the arg-max windows


def flop_count(config: ModelConfig) -> FlopCount:
    output_length = config.sequence_length - config.kernel_size + 1
    window = config.filters * config.kernel_size * config.embedding_dim
    convolution = output_length * window
    multiply_adds = convolution + config.filters * config.hidden_units + config.hidden_units
    return FlopCount(
        forward=2 * multiply_adds,
        training=6 * multiply_adds,
        convolution_training=6 * convolution,
        sparse_training=6 * multiply_adds - 4 * (output_length - 1) * window,
    )


@dataclass
class Workload:
    """A prepared, warmed-up piece of work; ``run()`` is what gets timed."""

    name: str
    run: Callable[[], object]
    samples_per_run: int
    first_step_seconds: float | None = None
    batch_size: int | None = None  # reviews per training step, reported with the figures
    mean_tokens: float | None = None  # tokens per review as trained, where batches are trimmed
    call_seconds: list[float] = field(default_factory=list)  # per call, for latency workloads


def fit(model: keras.Model, x, y, **options) -> keras.callbacks.History:
    """seqnet's one-device training path: ``keras.Model.fit`` on already shuffled arrays."""
    return keras_fit(ReplicaLayout(), model, x, y, **options)


def on_device(device: str):
    """``keras.device`` for a device string; plain "cpu" because torch's scope rejects "cpu:0"."""
    return keras.device("cpu" if device.startswith("cpu") else device)


def _timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _benchmark_data(config: BenchConfig, samples: int):
    model = config.model
    data = make_synthetic(
        num_words=model.vocabulary_size, maxlen=model.sequence_length, samples=samples
    )
    return data.x_train, data.y_train


def training_workload(
    config: BenchConfig, device: str, *, batch_size: int | None = None, name: str = "training"
) -> Workload:
    """seqnet's default training path (``seqnet.train.fit``), by default at the lecture's batch."""
    batch_size = batch_size or config.batch_size
    x, y = _benchmark_data(config, config.train_samples)
    with on_device(device):
        model = build_model(config.model)

    def one_round():
        with on_device(device):
            fit(model, x, y, batch_size=batch_size, epochs=1, verbose=0)

    first = _timed(lambda: _first_steps(model, x, y, batch_size, device))
    return Workload(name, one_round, len(x), first_step_seconds=first, batch_size=batch_size)


def default_batch_training_workload(config: BenchConfig, device: str) -> Workload:
    """seqnet's training path at its default recipe's batch (``TrainConfig().batch_size``)."""
    return training_workload(
        config, device, batch_size=config.default_batch_size, name="training_default_batch"
    )


def bucketed_training_workload(config: BenchConfig, device: str) -> Workload:
    """seqnet's training path as ``seqnet train`` runs it: length-bucketed, trimmed batches.

    The synthetic reviews are 100 to 400 tokens long (IMDB's average is 209), so the batches
    have the lengths bucketed training really runs, not the fixed 400 of ``training``. The
    same batches every round: an epoch's shuffle changes the order, not the set of shapes.
    """
    x, y = _benchmark_data(config, config.train_samples)
    kernel_size = architecture_of(config.model).trim_window(config.model)
    batches = bucketed_batches(
        x, config.batch_size, kernel_size=kernel_size, rng=np.random.default_rng(0)
    )
    trimmed = BucketedBatches(x, y, batches)
    # Counted from the batches fit is given, so the figure is what was trained.
    tokens = sum(trimmed[index][0].size for index in range(len(trimmed))) / len(x)
    with on_device(device):
        model = build_model(config.model, variable_length=True)
        data = fit_input(trimmed)

    def one_round():
        with on_device(device):
            fit(model, data, None, epochs=1, verbose=0)

    one_round()  # compiles every batch shape, not timed
    return Workload(
        "bucketed_training", one_round, len(x), batch_size=config.batch_size, mean_tokens=tokens
    )


def _first_steps(model, x, y, batch_size, device) -> None:
    with on_device(device):
        fit(
            model,
            x[: 2 * batch_size],
            y[: 2 * batch_size],
            batch_size=batch_size,
            epochs=1,
            verbose=0,
        )


def lecture_model(m: ModelConfig) -> keras.Model:
    """The lecture's code in plain Keras: a compiled Sequential model, nothing of seqnet's."""
    model = keras.Sequential(
        [
            keras.Input((m.sequence_length,), dtype="int32"),
            keras.layers.Embedding(m.vocabulary_size, m.embedding_dim),
            keras.layers.Dropout(m.dropout_rate),
            keras.layers.Conv1D(m.filters, m.kernel_size, activation="relu"),
            keras.layers.GlobalMaxPooling1D(),
            keras.layers.Dense(m.hidden_units, activation="relu"),
            keras.layers.Dropout(m.dropout_rate),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def lecture_training_workload(config: BenchConfig, device: str) -> Workload:
    """The lecture's code in plain Keras: a Sequential model and ``model.fit``, batch 32."""
    x, y = _benchmark_data(config, config.train_samples)
    with on_device(device):
        model = lecture_model(config.model)

    def one_round():
        with on_device(device):
            model.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)

    first = _timed(lambda: model.fit(x[:64], y[:64], batch_size=config.batch_size, verbose=0))
    return Workload(
        "lecture_training",
        one_round,
        len(x),
        first_step_seconds=first,
        batch_size=config.batch_size,
    )


def native_training_workload(config: BenchConfig, device: str) -> Workload:
    """The same network hand-written in the backend's own framework."""
    x, y = _benchmark_data(config, config.train_samples)
    backend = keras.backend.backend()
    warm_up = native.native_training_round(
        backend,
        config.model,
        x[: 2 * config.batch_size],
        y[: 2 * config.batch_size],
        config.batch_size,
        device,
        learning_rate=config.learning_rate,
    )
    first = _timed(warm_up)
    one_round = native.native_training_round(
        backend, config.model, x, y, config.batch_size, device, learning_rate=config.learning_rate
    )
    one_round()  # compile/trace for this round's shapes, not timed
    return Workload("native_training", one_round, len(x), first_step_seconds=first)


def convolution_workload(config: BenchConfig, device: str) -> Workload:
    """The convolution's forward and backward alone, natively: the floor under a step."""
    steps = config.train_samples // config.batch_size
    one_round = native.native_convolution_round(
        keras.backend.backend(), config.model, config.batch_size, steps, device
    )
    first = _timed(one_round)
    return Workload("convolution", one_round, steps * config.batch_size, first_step_seconds=first)


def inference_workload(config: BenchConfig, device: str) -> Workload:
    """seqnet's serving path on already tokenized reviews, at a large batch."""
    classifier = make_classifier(config, device)
    x, _ = _benchmark_data(config, config.inference_samples)

    def one_round():
        with on_device(device):
            classifier.predict_token_ids(x, batch_size=config.inference_batch_size)

    first = _timed(one_round)
    return Workload("inference", one_round, len(x), first_step_seconds=first)


def latency_workload(
    config: BenchConfig, device: str, predict_one: Callable[[], object], name: str
) -> Workload:
    """Single-review calls, each timed, for p50 / p95."""
    workload = Workload(name, lambda: None, config.latency_calls)

    def calls():
        with on_device(device):
            for _ in range(config.latency_calls):
                workload.call_seconds.append(_timed(predict_one))

    workload.run = calls
    workload.first_step_seconds = _timed(predict_one)
    return workload


def seqnet_latency_workload(config: BenchConfig, device: str) -> Workload:
    """seqnet's ``Classifier.predict`` on one raw review: tokenizing included."""
    classifier = make_classifier(config, device)
    return latency_workload(config, device, lambda: classifier.predict([REVIEW]), "latency")


def keras_predict_latency_workload(config: BenchConfig, device: str) -> Workload:
    """Keras' own ``model.predict`` on one encoded review, the slow path users reach for."""
    classifier = make_classifier(config, device)
    token_ids = classifier.vocabulary.encode_batch([REVIEW], classifier.sequence_length)
    predict = lambda: classifier.model.predict(token_ids, verbose=0)  # noqa: E731
    return latency_workload(config, device, predict, "keras_predict_latency")


def make_classifier(config: BenchConfig, device: str) -> Classifier:
    data = make_synthetic(
        num_words=config.model.vocabulary_size, maxlen=config.model.sequence_length, samples=8
    )
    with on_device(device):
        portable = portable_model(build_model(config.model), config.model, from_training=True)
        return Classifier(portable, data.vocabulary, config.model)


def matmul_peak_workload(config: BenchConfig, device: str) -> Workload:
    """A large float32 matmul on this backend: the device's practical peak FLOP rate."""
    n = config.matmul_size
    with on_device(device):
        a = keras.random.normal((n, n), seed=1)
        b = keras.random.normal((n, n), seed=2)

    def one_matmul():
        with on_device(device):
            keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.matmul(a, b)))

    first = _timed(one_matmul)
    return Workload("matmul", one_matmul, 1, first_step_seconds=first)


WORKLOADS = {
    "matmul": matmul_peak_workload,
    "training": training_workload,
    "training_default_batch": default_batch_training_workload,
    "bucketed_training": bucketed_training_workload,
    "lecture_training": lecture_training_workload,
    "native_training": native_training_workload,
    "convolution": convolution_workload,
    "inference": inference_workload,
    "latency": seqnet_latency_workload,
    "keras_predict_latency": keras_predict_latency_workload,
}


# Compared as ratios, so timed in turn, round by round: on a shared or throttling machine a
# slow spell then hits every one of them alike instead of one workload's whole run.
SIDE_BY_SIDE = (
    "training",
    "training_default_batch",
    "bucketed_training",
    "lecture_training",
    "native_training",
    "convolution",
)


def time_side_by_side(workloads: list[Workload], rounds: int) -> dict[str, list[float]]:
    """Seconds of each round of each workload, running round r of all before round r + 1."""
    seconds: dict[str, list[float]] = {workload.name: [] for workload in workloads}
    for _ in range(rounds):
        for workload in workloads:
            seconds[workload.name].append(_timed(workload.run))
    return seconds


MATMUL_ROUNDS = 10


def rounds_for(workload: Workload, config: BenchConfig) -> int:
    """Latency workloads time many calls inside one round; the others repeat rounds, the
    matmul peak more of them (it takes a fraction of a second) since its best round counts."""
    if workload.name.endswith("latency"):
        return 1
    return max(config.rounds, MATMUL_ROUNDS) if workload.name == "matmul" else config.rounds


def run_benchmarks(
    config: BenchConfig, devices: list[str] | None = None, *, progress=print
) -> list[dict]:
    """Every workload on every device, as one report record per device (``seqnet bench``)."""
    devices = devices or visible_devices(keras.backend.backend())
    records = []
    for device in devices:
        results = {}
        for name, build in WORKLOADS.items():
            if name in SIDE_BY_SIDE:
                continue
            progress(f"{keras.backend.backend()} {device}: {name}")
            workload = build(config, device)
            results[name] = figures(
                workload, time_rounds(workload, rounds_for(workload, config)), config
            )
        progress(f"{keras.backend.backend()} {device}: {', '.join(SIDE_BY_SIDE)}, side by side")
        side_by_side = [WORKLOADS[name](config, device) for name in SIDE_BY_SIDE]
        seconds = time_side_by_side(side_by_side, config.rounds)
        for workload in side_by_side:
            results[workload.name] = figures(workload, seconds[workload.name], config)
        records.append({**environment(config, device), **memory(device), "figures": results})
    return records


# --- figures ---------------------------------------------------------------------------------


def figures(workload: Workload, round_seconds: list[float], config: BenchConfig) -> dict:
    """The report's numbers for one timed workload (the median round is used)."""
    seconds = statistics.median(round_seconds)
    result = {
        "workload": workload.name,
        "rounds": len(round_seconds),
        "seconds": seconds,
        "first_step_seconds": workload.first_step_seconds,
    }
    if workload.name == "matmul":
        # The peak is the best round, not the median: a slow spell on a shared machine can
        # only lower a round's rate, so the fastest round is the closest to what the chip does.
        result["gflops"] = 2 * config.matmul_size**3 / min(round_seconds) / 1e9
        result["peak_method"] = f"best of {len(round_seconds)} rounds"
    elif workload.call_seconds:
        milliseconds = np.array(workload.call_seconds) * 1000
        result["p50_ms"] = float(np.percentile(milliseconds, 50))
        result["p95_ms"] = float(np.percentile(milliseconds, 95))
    else:
        result["samples_per_second"] = workload.samples_per_run / seconds
        if workload.batch_size is not None:
            result["batch_size"] = workload.batch_size
        counts = flop_count(config.model)
        if workload.mean_tokens is not None:
            result["mean_tokens"] = workload.mean_tokens
        elif "training" in workload.name:  # seqnet's at either batch, the lecture's, native
            flops = counts.sparse_training if _sparse(workload, config) else counts.training
            result["gflops"] = flops * result["samples_per_second"] / 1e9
        elif workload.name == "convolution":
            result["gflops"] = counts.convolution_training * result["samples_per_second"] / 1e9
    return result


def _sparse(workload: Workload, config: BenchConfig) -> bool:
    """Whether ``workload`` trains through seqnet's fused layer, with its arg-max backward."""
    seqnet = workload.name in ("training", "training_default_batch")
    return (
        seqnet
        and config.model.fuse_pooling
        and SPARSE_CONVOLUTION_GRADIENT[keras.backend.backend()]
    )


def time_rounds(workload: Workload, rounds: int) -> list[float]:
    """Time ``rounds`` calls of an already warmed-up workload (for ``seqnet bench``)."""
    workload.call_seconds.clear()
    return [_timed(workload.run) for _ in range(rounds)]


def environment(config: BenchConfig, device: str) -> dict:
    """Versions, device and settings that a reader needs to trust or repeat the figures."""
    backend = keras.backend.backend()
    packages = {"keras": "keras", "tensorflow": "tensorflow-cpu", "jax": "jax", "torch": "torch"}
    versions = {"python": platform.python_version()}
    for name, distribution in packages.items():
        if name in ("keras", backend):
            versions[name] = _version(distribution) or _version(name)
    return {
        "backend": backend,
        "device": device,
        "device_name": device_name(backend, device),
        "versions": versions,
        "batch_size": config.batch_size,
        "sequence_length": config.model.sequence_length,
        "jit_compile": _jit_compile_setting(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": asdict(config),
        "platform": platform.platform(),
    }


def memory(device: str) -> dict:
    """Peak host RSS of this process, and device memory where the backend reports it."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    device_peak = device_peak_memory_bytes(keras.backend.backend(), device)
    return {
        "peak_rss_mb": peak_rss / 2**20,
        "device_peak_mb": None if device_peak is None else device_peak / 2**20,
    }


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _jit_compile_setting() -> str:
    model = build_model(
        ModelConfig(
            vocabulary_size=10, sequence_length=4, embedding_dim=2, filters=2, hidden_units=2
        )
    )
    return str(model.jit_compile)


TARGET_ACCURACY = 0.885  # the MLPerf-style quality bar for time-to-accuracy
SEEDS = (0, 1, 2)  # time to accuracy is a mean over these: one seed's epoch count is luck


def time_to_accuracy(
    data: str,
    *,
    target: float = TARGET_ACCURACY,
    lecture: bool = False,
    epochs: int | None = None,
    seed: int = 0,
    device: str | None = None,
) -> dict:
    """Training time until the test accuracy, checked after each epoch, first reaches ``target``.

    Measures seqnet's default recipe (``seqnet.train.train_one_epoch``, its schedule spanning
    the recipe's epochs), or with ``lecture`` the lecture's code in plain Keras: a Sequential
    model and ``model.fit`` at batch 32 with constant Adam. Both count each epoch's training
    time, compilation included, and neither counts the test pass that checks the accuracy;
    data loading is measured apart (``data_load_seconds``).

    Args:
        data: The data source, e.g. a path to aclImdb_v1.tar.gz.
        target: The test accuracy to reach.
        lecture: Measure the lecture's plain Keras code instead of seqnet.
        epochs: The most epochs to train; by default the recipe's (seqnet) or 4 (the lecture).
        seed: Seeds weights, dropout and the shuffle.
        device: A Keras device string such as ``"gpu:0"``; by default Keras' choice.

    Returns:
        One run: ``seconds`` (None if ``target`` was never reached), ``epochs``, ``seed``,
        ``final_accuracy``, and the seconds and test accuracy of each epoch.
    """
    from seqnet.train import load_training_data

    config = TrainConfig.from_recipe("lecture" if lecture else "fast", data=data, seed=seed)
    epochs = epochs or (4 if lecture else config.epochs)
    dataset = load_training_data(config, verbose=False).checked(
        config.model.vocabulary_size, config.model.sequence_length
    )
    keras.utils.set_random_seed(seed)
    with on_device(device) if device else contextlib.nullcontext():
        one_epoch = (_lecture_epochs if lecture else _seqnet_epochs)(config, dataset)
        result = _epochs_until(one_epoch, epochs, target, "lecture" if lecture else "seqnet")
    return {**result, "seed": seed}


def _seqnet_epochs(config: TrainConfig, dataset) -> Callable[[int], tuple[float, float]]:
    """One epoch of seqnet's recipe: (training seconds, accuracy on the whole test split)."""
    from seqnet.evaluate import evaluate
    from seqnet.task import Task
    from seqnet.train import build_training_model, train_one_epoch

    model = build_training_model(config, len(dataset.x_train))

    def one_epoch(epoch: int) -> tuple[float, float]:
        record = train_one_epoch(model, dataset, config, epoch, verbose=0)
        # The recipe scores a sample after each epoch; the target is on all 25,000 reviews.
        scored = evaluate(model, dataset.x_test, dataset.y_test, config.model, Task(), logits=True)
        return record["train_seconds"], scored["accuracy"]

    return one_epoch


def _lecture_epochs(config: TrainConfig, dataset) -> Callable[[int], tuple[float, float]]:
    """One epoch of the lecture's plain Keras ``fit``: (training seconds, test accuracy)."""
    from seqnet.train import EpochTimer

    model, timer = lecture_model(config.model), EpochTimer()

    def one_epoch(epoch: int) -> tuple[float, float]:
        history = model.fit(
            dataset.x_train,
            dataset.y_train,
            batch_size=config.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            validation_data=(dataset.x_test, dataset.y_test),
            callbacks=[timer],  # splits the epoch's training time from its test pass
            verbose=0,
        )
        return timer.train_seconds[-1], history.history["val_accuracy"][-1]

    return one_epoch


def _epochs_until(one_epoch, epochs: int, target: float, who: str) -> dict:
    """Train epoch after epoch until the test accuracy reaches ``target`` or ``epochs`` run out."""
    seconds, accuracies = [], []
    while len(accuracies) < epochs and not (accuracies and accuracies[-1] >= target):
        epoch_seconds, accuracy = one_epoch(len(accuracies))
        seconds.append(epoch_seconds)
        accuracies.append(float(accuracy))
    reached = accuracies[-1] >= target
    return {
        "workload": "lecture_time_to_accuracy" if who == "lecture" else "time_to_accuracy",
        "target": target,
        "seconds": sum(seconds) if reached else None,
        "epochs": len(accuracies),
        "final_accuracy": accuracies[-1],
        "seconds_per_epoch": seconds,
        "test_accuracy_per_epoch": accuracies,
    }


def data_load_seconds(data: str, cache_dir: str | Path) -> dict:
    """Seconds ``read_dataset(data)`` takes cold (``cache_dir`` empty) and then warm (cached).

    Cold reads, tokenizes and caches the archive; warm reads the cached arrays back, which is
    what every later training run pays.
    """
    if any(Path(cache_dir).iterdir()):
        raise ValueError(f"{cache_dir} must be empty for a cold load.")
    load = functools.partial(read_dataset, data, cache_dir=cache_dir, verbose=False)
    cold = _timed(load)
    return {
        "workload": "data_load",
        "source": Path(data).name,
        "cold_seconds": cold,
        "warm_seconds": _timed(load),
    }
