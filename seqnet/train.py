"""Training and evaluation: ``train_and_evaluate(config, workdir)`` backs the CLI and the tests."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

import seqnet
from seqnet.buckets import BucketedBatches, bucketed_batches, buckets_exactly, fit_input
from seqnet.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from seqnet.compilation import compilation_notice
from seqnet.config import INFERENCE_BATCH_SIZE, TrainConfig
from seqnet.data import Dataset, load_training_data
from seqnet.evaluate import evaluate
from seqnet.model import architecture_of, build_model
from seqnet.parallel import ReplicaLayout, Replicas, keras_fit, open_replicas
from seqnet.progress import EpochProgress, notice
from seqnet.saving import save_run
from seqnet.task import Task
from seqnet.tensorflow_guard import tensorflow_left_unimported
from seqnet.user_warnings import warn
from seqnet.workdir import claim_workdir, locked_workdir


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, split into training and the validation pass after it."""

    def __init__(self) -> None:
        super().__init__()
        self.train_seconds: list[float] = []
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        self._validation_started = None

    def on_test_begin(self, logs=None):
        self._validation_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        ended = time.perf_counter()
        self.train_seconds.append((self._validation_started or ended) - self._started)
        self.epoch_seconds.append(ended - self._started)


def config_for_data(config: TrainConfig, dataset: Dataset) -> TrainConfig:
    """``config`` as the data makes it: its classes, and the sizes fitted to the texts.

    The result names no size left to fit, so it is what checkpoints and ``config.json`` keep.
    """
    vocabulary_size = (
        dataset.vocabulary.num_words
        if dataset.vocabulary is not None and "vocabulary_size" in config.fit_to_data
        else config.model.vocabulary_size
    )
    model = dataclasses.replace(
        config.model,
        vocabulary_size=vocabulary_size,
        sequence_length=dataset.x_train.shape[1],
        num_classes=len(dataset.class_names),
    )
    return dataclasses.replace(config, model=model, fit_to_data=())


# Mixed with the seed to draw the validation sample, apart from the shuffles' (seed, epoch).
VALIDATION_STREAM = 2**31 - 1


# How long a run must be to learn, from a sweep on the synthetic data with the fast recipe
# (torch, seed 0; reviews x epochs at batch B -> steps, reviews shown: test accuracy):
#   below:  512x2 -> 32, 1,024: 0.52   512x4 -> 64, 2,048: 0.52   1,000x2 -> 64, 2,000: 0.51
#           2,000x1 -> 63, 2,000: 0.52   512x2 at B 8 -> 128, 1,024: 0.52
#           2,000x2 at B 128 -> 32, 4,000: 0.52   4,000x1 at B 64 -> 63, 4,000: 0.56
#   above:  512x5 -> 80, 2,560: 0.84   1,024x3 -> 96, 3,072: 0.85   3,000x1 -> 94, 3,000: 0.98
#           2,000x2 (the default) -> 126, 4,000: 1.0   (but 1,500x2 -> 94, 3,000: 0.61)
# Both count: many steps on few reviews stayed at chance, and so did many reviews in few steps.
MIN_LEARNING_STEPS = 80
MIN_REVIEWS_SHOWN = 2500


class SmallRunWarning(UserWarning):
    """A run too short to learn: too few gradient steps or too few reviews shown."""


def warn_if_too_small(config: TrainConfig, train_samples: int) -> None:
    """Warn with ``SmallRunWarning`` if the run is too short to expect it to learn.

    Args:
        config: The run's epochs and batch size.
        train_samples: Reviews in the training split.
    """
    steps = config.epochs * -(-train_samples // config.batch_size)
    shown = config.epochs * train_samples
    if steps >= MIN_LEARNING_STEPS and shown >= MIN_REVIEWS_SHOWN:
        return
    warn(
        f"This run is too small to learn: {train_samples:,} training reviews for "
        f"{config.epochs} epochs at batch {config.batch_size} make {steps} gradient steps over "
        f"{shown:,} reviews, and seqnet's CNN stayed at chance (0.5) in every run tried of "
        f"fewer than {MIN_LEARNING_STEPS} steps or {MIN_REVIEWS_SHOWN:,} reviews. Train on "
        "more reviews or for more epochs (a smaller batch size gives more steps).",
        SmallRunWarning,
    )


class TrainingDivergedError(ValueError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def train_one_epoch(
    model: keras.Model,
    data: Dataset,
    config: TrainConfig,
    epoch: int,
    *,
    verbose: int | str = "auto",
    replicas: Replicas | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, float]:
    """Train epoch ``epoch`` (0-based) and validate on the test split, as the lecture does.

    The epoch's shuffle depends only on (seed, epoch), so a resumed run sees the same order as
    an uninterrupted one, and every data-parallel process the same order. With ``replicas``
    (from [`open_replicas`][seqnet.parallel.open_replicas]), ``config.batch_size`` is the
    global batch, split over all replicas. ``callbacks`` join the epoch's own, e.g. those
    [`load_checkpoint`][seqnet.checkpoint.load_checkpoint] returns for the first epoch after a
    resume. ``verbose`` as for [`train_and_evaluate`][seqnet.train.train_and_evaluate].
    A single-device, variable-length model trains on length-bucketed batches
    ([`epoch_data`][seqnet.train.epoch_data]). Raises ``TrainingDivergedError`` if the loss
    stops being finite.
    """
    replicas = replicas or Replicas(ReplicaLayout(), keras_fit)
    x, y, validation_data = epoch_data(model, data, config, epoch, replicas.layout)
    timer = EpochTimer()
    shows = bool(verbose) and replicas.layout.is_chief
    if shows and model.train_function is None:  # the first fit: JAX compiles its steps now
        _announce_compilation(x, validation_data, config.batch_size)
    # Keras' own logger would title this one-epoch fit "Epoch k/k": ours knows the run's N.
    shown = [EpochProgress(config.epochs)] if shows else []
    diverged = TrainingDivergedError(
        f"Training diverged in epoch {epoch + 1}: the loss stopped being finite. Lower the "
        f"learning rate (now {config.learning_rate}) and train again;"
    )
    try:
        history = replicas.fit(
            model,
            x,
            y,
            batch_size=config.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            validation_data=validation_data,
            callbacks=[timer, keras.callbacks.TerminateOnNaN(), *shown, *callbacks],
            verbose=0,
        )
    except RuntimeError:  # e.g. torch's loss refuses NaN probabilities outright
        if _is_finite(model, data.x_test[: config.batch_size]):
            raise
        raise diverged from None
    logs = {name: float(values[-1]) for name, values in history.history.items()}
    # XLA's max() can swallow a NaN, so a finite loss alone does not prove finite weights.
    finite_logs = all(np.isfinite(value) for value in logs.values())
    if not (finite_logs and _is_finite(model, data.x_test[: config.batch_size])):
        raise diverged
    return {
        "epoch": epoch + 1,
        **logs,
        "train_seconds": timer.train_seconds[-1],
        "seconds": timer.epoch_seconds[-1],
    }


def _announce_fitted_sizes(sizes: dict) -> None:
    """Say which model sizes the user's texts chose, and by which rule."""
    fitted = [
        f"{name} {size['value']:,} ({size['rule']})"
        for name, size in sizes.items()
        if size.get("fitted")
    ]
    if fitted:
        notice("Fitted to the data: " + "; ".join(fitted) + ".")


def _announce_compilation(x, validation_data, batch_size: int) -> None:
    """Say, where it is so, that the first steps wait for compilation, and for how many shapes."""
    train_shapes = batch_shapes(x, batch_size)
    line = compilation_notice(train_shapes, batch_shapes(validation_data, batch_size))
    if line is not None:
        notice(line)


def batch_shapes(data, batch_size: int) -> int:
    """Distinct batch shapes ``fit`` takes from ``data``: bucketed batches, or arrays
    ``x`` or ``(x, y)`` cut into ``batch_size`` rows, with maybe a smaller last batch."""
    if isinstance(data, BucketedBatches):
        return len({(len(rows), length) for rows, length in data.batches})
    samples = len(data[0] if isinstance(data, tuple) else data)
    return 1 + (samples > batch_size and samples % batch_size != 0)


def validation_split(data: Dataset, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The texts scored after each epoch.

    A user's data brings its own, held out of the training rows. IMDB's is the test split
    (as the lecture does) or a fixed sample of it, which depends only on the seed, so every
    epoch and a resumed run score the same reviews.
    """
    if data.x_validation is not None:
        return data.x_validation, data.y_validation
    if _validates_on_whole_split(data, config):
        return data.x_test, data.y_test
    rng = np.random.default_rng([config.seed, VALIDATION_STREAM])
    picked = np.sort(rng.choice(len(data.x_test), size=config.validation_samples, replace=False))
    return data.x_test[picked], data.y_test[picked]


def _validates_on_whole_split(data: Dataset, config: TrainConfig) -> bool:
    # Data-parallel engines score the validation data in their own, distributed way; the
    # whole split there spares a second, undistributed pass at the end.
    count = config.validation_samples
    return count is None or count >= len(data.x_test) or config.distribute != "none"


def trains_bucketed(model: keras.Model, layout: ReplicaLayout) -> bool:
    """Whether ``model`` trains on length-bucketed batches: on one device, if it accepts any
    length. Data-parallel engines split fixed-length global batches, so they never do."""
    return layout.strategy == "none" and model.input_shape[1] is None


def epoch_data(
    model: keras.Model, data: Dataset, config: TrainConfig, epoch: int, layout: ReplicaLayout
) -> tuple[Any, np.ndarray | None, Any]:
    """``(x, y, validation_data)`` for ``fit`` in epoch ``epoch``: shuffled, maybe bucketed.

    The order depends only on (seed, epoch). Bucketed (see
    [`trains_bucketed`][seqnet.train.trains_bucketed]), ``x`` holds the trimmed batches and
    ``y`` is None, and the validation reviews ([`validation_split`][seqnet.train.validation_split])
    are scored in batches sorted by length.
    """
    rng = np.random.default_rng([config.seed, epoch])
    x_validation, y_validation = validation_split(data, config)
    if not trains_bucketed(model, layout):
        order = rng.permutation(len(data.x_train))
        return data.x_train[order], data.y_train[order], (x_validation, y_validation)
    kernel_size = architecture_of(config.model).trim_window(config.model)
    train = bucketed_batches(data.x_train, config.batch_size, kernel_size=kernel_size, rng=rng)
    return (
        fit_input(BucketedBatches(data.x_train, data.y_train, train)),
        None,
        sorted_by_length(x_validation, y_validation, kernel_size=kernel_size),
    )


def sorted_by_length(
    x: np.ndarray, y: np.ndarray, *, kernel_size: int, batch_size: int = INFERENCE_BATCH_SIZE
):
    """``(x, y)`` in trimmed batches sorted by length, for ``fit``'s validation or ``evaluate``."""
    batches = bucketed_batches(x, batch_size, kernel_size=kernel_size)
    return fit_input(BucketedBatches(x, y, batches))


def _is_finite(model: keras.Model, probe: np.ndarray) -> bool:
    """Whether the weights, and the outputs on a few reviews, are all finite numbers."""
    outputs = keras.ops.convert_to_numpy(model(probe, training=False))
    weights_finite = all(np.isfinite(weight).all() for weight in model.get_weights())
    return weights_finite and bool(np.isfinite(outputs).all())


def train_and_evaluate(
    config: TrainConfig,
    workdir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    verbose: int | str = "auto",
) -> dict[str, Any]:
    """Train per ``config`` and write model, vocabulary, metrics and plot into ``workdir``.

    After each epoch the model and optimizer are checkpointed in ``workdir`` as one unit (see
    [`seqnet.checkpoint`][seqnet.checkpoint]); with ``resume=True`` training continues from
    the last checkpoint of the same config, under the same backend. ``config.epochs`` may then
    differ from the checkpoint's, but not be fewer than the epochs done: a learning-rate
    schedule is rebuilt for the new length from the step reached, and metrics.json's
    ``schedule_changes`` records at which epoch. While a run trains it holds ``workdir``'s
    lock; an earlier run there is replaced only with ``force=True``. With
    ``config.distribute="data-parallel"`` every visible device trains a replica (see
    [`seqnet.parallel`][seqnet.parallel]) and only process 0 writes into ``workdir``.

    Args:
        config: The run.
        workdir: The run folder to write.
        resume: Continue from the last checkpoint in ``workdir``.
        verbose: 0 for silence; else progress on standard output: a line per epoch titled
            "Epoch k/N" (Keras' live bar on a terminal), and a line before long compilations.
            Warns with ``SmallRunWarning`` if the run is too short to learn.

    Returns:
        The metrics also written to ``workdir/metrics.json``: per-epoch history, seconds per
        epoch and the final test loss and accuracy.

    Raises:
        seqnet.workdir.WorkdirBusyError: If another run trains in ``workdir``.
        seqnet.workdir.ExistingRunError: If ``workdir`` holds an earlier run, neither resumed
            nor replaced.
        seqnet.checkpoint.CheckpointError: If the checkpoint to resume cannot be resumed.
    """
    workdir = Path(workdir)
    # Seeding and saving make Keras import TensorFlow, whatever the backend, unless told not to.
    with (
        tensorflow_left_unimported(),
        open_replicas(config.distribute, verbose=bool(verbose)) as replicas,
    ):
        chief = replicas.layout.is_chief  # one writer: the other processes hold the same weights
        with locked_workdir(workdir) if chief else contextlib.nullcontext():
            if chief:
                claim_workdir(workdir, resume=resume, force=force)
            dataset = load_training_data(config, verbose=bool(verbose))
            config = config_for_data(config, dataset)
            if verbose and chief:
                _announce_fitted_sizes(dataset.report.get("sizes", {}))
            data = dataset.checked(config.model.vocabulary_size, config.model.sequence_length)
            with replicas.scope():  # JAX and TensorFlow place the variables on every replica
                run = _start_or_resume(workdir, config, data, resume)
            warn_if_too_small(config, len(data.x_train))  # once the run is known to start
            _train_epochs(run, data, config, workdir, replicas, verbose)
            task = Task(dataset.class_names)
            test = _final_test(run.model, data, config, task)
            metrics = _metrics(config, dataset, run, test, replicas.layout)
            if chief:
                save_run(workdir, run.model, config, dataset.vocabulary, task, metrics)
    return metrics


def _start_or_resume(workdir: Path, config: TrainConfig, data: Dataset, resume: bool) -> Checkpoint:
    """The checkpoint to continue with ``resume``, its schedule fitted to ``config.epochs``;
    else a new model with no epochs."""
    # Seeded before loading too: on several JAX hosts every process must create the same
    # initial values, even those a checkpoint then overwrites. Called within
    # tensorflow_left_unimported, Keras seeds everything it would but TensorFlow.
    keras.utils.set_random_seed(config.seed)
    if not resume:
        return Checkpoint(build_training_model(config, len(data.x_train)))
    run = load_checkpoint(workdir, config)
    if run.config.epochs != config.epochs and config.learning_rate_schedule != "constant":
        # The saved schedule spans the old length: past its end the step size is 0 and more
        # epochs would train nothing. The new one is what a run of the new length has at the
        # step reached, so the step size jumps there, which metrics.json records.
        run.model.optimizer.learning_rate = learning_rate_schedule(config, len(data.x_train))
        change = {"epoch": len(run.epochs), "from_epochs": run.config.epochs}
        run.schedule_changes.append({**change, "to_epochs": config.epochs})
    return run


def build_training_model(config: TrainConfig, train_samples: int) -> keras.Model:
    """A new model compiled for ``config``'s recipe, learning-rate schedule included.

    On one device the model accepts any length, to train on length-bucketed batches (see
    [`seqnet.buckets`][seqnet.buckets]); data-parallel runs keep the fixed length, and so do
    batch-normalized networks, which bucketing would train differently
    ([`buckets_exactly`][seqnet.buckets.buckets_exactly]).

    Args:
        config: The run; its ``model`` is built, its schedule spans ``config.epochs``.
        train_samples: Reviews per epoch, which sets the steps a cosine schedule spans.
    """
    return build_model(
        config.model,
        learning_rate=learning_rate_schedule(config, train_samples),
        variable_length=config.distribute == "none" and buckets_exactly(config.model),
    )


def learning_rate_schedule(
    config: TrainConfig, train_samples: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Adam's step size per ``config``: a constant, or a schedule over the run's steps.

    Args:
        config: The run's recipe: peak rate, schedule, warm-up and epochs.
        train_samples: Reviews per epoch, which with the batch size sets the steps.
    """
    if config.learning_rate_schedule == "constant":
        return config.learning_rate
    steps_per_epoch = -(-train_samples // config.batch_size)
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.learning_rate_schedule == "cosine" or warmup == 0:
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, total)
    # From 0 up to the peak over the warm-up, then a cosine down to 0 at the last step.
    return keras.optimizers.schedules.CosineDecay(
        0.0, total - warmup, warmup_target=config.learning_rate, warmup_steps=warmup
    )


def _train_epochs(
    run: Checkpoint,
    data: Dataset,
    config: TrainConfig,
    workdir: Path,
    replicas: Replicas,
    verbose: int | str,
) -> None:
    """Train the epochs still missing from ``run.epochs``, checkpointing after each (chief
    only). ``run.callbacks`` run in the first of them only: they restore a checkpoint's state.
    """
    first = len(run.epochs)
    for epoch in range(first, config.epochs):
        options = {"verbose": verbose, "replicas": replicas}
        if epoch == first:
            options["callbacks"] = run.callbacks
        try:
            run.epochs.append(train_one_epoch(run.model, data, config, epoch, **options))
        except TrainingDivergedError as error:
            kept = (
                f"the checkpoint after epoch {len(run.epochs)} is kept in {workdir}"
                if run.epochs
                else "no epoch had finished, so there is no checkpoint"
            )
            raise TrainingDivergedError(f"{error} {kept}.") from None
        if replicas.layout.is_chief:
            save_checkpoint(workdir, run.model, config, run.epochs, run.schedule_changes)


def _final_test(
    model: keras.Model, data: Dataset, config: TrainConfig, task: Task
) -> dict[str, Any]:
    """The report on the whole test split ([`evaluate`][seqnet.evaluate.evaluate]) and the
    seconds it took."""
    started = time.perf_counter()
    report = evaluate(model, data.x_test, data.y_test, config.model, task, logits=True)
    return {**report, "seconds": time.perf_counter() - started}


def _metrics(
    config: TrainConfig,
    dataset: Dataset,
    run: Checkpoint,
    test: dict[str, float],
    layout: ReplicaLayout,
) -> dict[str, Any]:
    epochs = run.epochs
    return {
        "backend": keras.backend.backend(),
        "versions": installed_versions(),
        "config": config.to_dict(),
        "data_source": dataset.source,
        "classes": list(dataset.class_names),
        "data": dataset.report,  # rows read, kept and refused; held-out shares; fitted sizes
        "train_samples": len(dataset.x_train),
        "validation_samples": None if dataset.x_validation is None else len(dataset.x_validation),
        "test_samples": len(dataset.x_test),
        "history": epochs,
        # Resumes that rebuilt the learning-rate schedule for another number of epochs.
        "schedule_changes": run.schedule_changes,
        "seconds_per_epoch": float(np.mean([epoch["seconds"] for epoch in epochs])),
        "train_samples_per_second": len(dataset.x_train)
        / float(np.mean([epoch["train_seconds"] for epoch in epochs])),
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "test_macro_f1": test["macro_f1"],
        "test_seconds": test["seconds"],
        "test": test,  # per-class precision, recall, F1, support, and the confusion matrix
        "distribution": layout.to_dict(),
    }


def installed_versions() -> dict[str, str]:
    """seqnet's, Keras' and the active backend's versions, for metrics.json."""
    backend = keras.backend.backend()
    return {
        "seqnet": seqnet.__version__,
        "keras": keras.__version__,
        backend: importlib.import_module(backend).__version__,
    }
