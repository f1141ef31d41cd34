"""Training and evaluation: ``train_and_evaluate(config, workdir)`` backs the CLI and the tests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from seqnet.config import TrainConfig
from seqnet.data import ImdbDataset, check_labels, check_token_ids, read_dataset
from seqnet.model import build_model, input_limits
from seqnet.saving import METRICS_FILE, MODEL_FILE, VOCABULARY_FILE, load_model, save_run
from seqnet.text import Vocabulary


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


def load_training_data(config: TrainConfig, *, verbose: bool = True) -> ImdbDataset:
    """Read the data set named by ``config.data``, sized for ``config.model``."""
    return read_dataset(
        config.data,
        num_words=config.model.vocabulary_size,
        maxlen=config.model.sequence_length,
        synthetic_samples=config.synthetic_samples,
        verbose=verbose,
    )


def train(
    model: keras.Model,
    dataset: ImdbDataset,
    config: TrainConfig,
    *,
    callbacks: list[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> keras.callbacks.History:
    """Fit ``model`` with the lecture's recipe: the test split is the validation data."""
    vocabulary_size, length = config.model.vocabulary_size, config.model.sequence_length
    x_train = check_token_ids(dataset.x_train, vocabulary_size, length, name="x_train")
    x_test = check_token_ids(dataset.x_test, vocabulary_size, length, name="x_test")
    y_train = check_labels(dataset.y_train, len(x_train), name="y_train")
    y_test = check_labels(dataset.y_test, len(x_test), name="y_test")
    return fit(
        model,
        x_train,
        y_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=(x_test, y_test),
        callbacks=callbacks,
        verbose=verbose,
    )


def fit(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    epochs: int,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    callbacks: list[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> keras.callbacks.History:
    """seqnet's training loop on checked arrays: the one path training and benchmarks share."""
    return model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=validation_data,
        callbacks=list(callbacks),
        verbose=verbose,
    )


def evaluate(model: keras.Model, x, y, *, batch_size: int = 256) -> dict[str, float]:
    """Loss and accuracy of ``model`` on checked token ids ``x`` and labels ``y``."""
    vocabulary_size, length = input_limits(model)
    x = check_token_ids(x, vocabulary_size, length)
    y = check_labels(y, len(x))
    results = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    return {name: float(value) for name, value in results.items()}


def train_and_evaluate(
    config: TrainConfig, workdir: str | Path, *, verbose: int | str = "auto"
) -> dict[str, Any]:
    """Train per ``config`` and write model, vocabulary, metrics and plot into ``workdir``.

    Returns:
        The metrics also written to ``workdir/metrics.json``: per-epoch history, seconds per
        epoch and the final test loss and accuracy.
    """
    workdir = Path(workdir)
    keras.utils.set_random_seed(config.seed)
    dataset = load_training_data(config, verbose=bool(verbose))
    model = build_model(config.model)
    timer = EpochTimer()
    history = train(model, dataset, config, callbacks=[timer], verbose=verbose)
    metrics = _metrics(config, dataset, history.history, timer)
    save_run(workdir, model, dataset.vocabulary, metrics)
    return metrics


def _metrics(
    config: TrainConfig, dataset: ImdbDataset, history: dict[str, list], timer: EpochTimer
) -> dict[str, Any]:
    epochs = [
        {
            "epoch": index + 1,
            **{name: float(values[index]) for name, values in history.items()},
            "train_seconds": timer.train_seconds[index],
            "seconds": timer.epoch_seconds[index],
        }
        for index in range(len(timer.epoch_seconds))
    ]
    return {
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "config": config.to_dict(),
        "data_source": dataset.source,
        "train_samples": len(dataset.x_train),
        "test_samples": len(dataset.x_test),
        "history": epochs,
        "seconds_per_epoch": float(np.mean(timer.epoch_seconds)),
        "train_samples_per_second": len(dataset.x_train) / float(np.mean(timer.train_seconds)),
        "test_loss": epochs[-1]["val_loss"],
        "test_accuracy": epochs[-1]["val_accuracy"],
    }


def evaluate_run(
    workdir: str | Path, *, data: str | None = None, batch_size: int = 256
) -> dict[str, Any]:
    """Evaluate a saved run on the test split of ``data`` (by default, its training data)."""
    workdir = Path(workdir)
    model = load_model(workdir / MODEL_FILE)
    recorded = _recorded_config(workdir)
    vocabulary_size, length = input_limits(model)
    dataset = read_dataset(
        data or recorded.data,
        num_words=vocabulary_size,
        maxlen=length,
        synthetic_samples=recorded.synthetic_samples,
    )
    saved_vocabulary = workdir / VOCABULARY_FILE
    if (
        dataset.vocabulary is not None
        and saved_vocabulary.is_file()
        and Vocabulary.load(saved_vocabulary) != dataset.vocabulary
    ):
        raise ValueError(
            f"{dataset.source} was tokenized with another vocabulary than the model in "
            f"{workdir}; evaluate on the data source the model was trained on."
        )
    results = evaluate(model, dataset.x_test, dataset.y_test, batch_size=batch_size)
    return {"workdir": str(workdir), "data_source": dataset.source, **results}


def _recorded_config(workdir: Path) -> TrainConfig:
    """The config a run was trained with, or the defaults for a model saved elsewhere."""
    metrics_file = workdir / METRICS_FILE
    if not metrics_file.is_file():
        return TrainConfig()
    return TrainConfig.from_dict(json.loads(metrics_file.read_text())["config"])
