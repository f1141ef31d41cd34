"""Scoring a network on labelled token ids: loss, accuracy, macro-F1, per-class figures and the
confusion matrix ([`seqnet.metrics`][seqnet.metrics]), for ``seqnet train``'s final test and
``seqnet evaluate``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from seqnet.config import INFERENCE_BATCH_SIZE, ModelConfig
from seqnet.data import DataOptions, check_labels, imdb, load_training_data, read_labelled_file
from seqnet.data.table import TABLE_SUFFIXES
from seqnet.metrics import classification_report
from seqnet.model import portable_model
from seqnet.predict import Classifier
from seqnet.saving import METRICS_FILE, MODEL_FILE, VOCABULARY_FILE, load_model, load_run_config
from seqnet.task import CLASSES_FILE, Task
from seqnet.text import Vocabulary

# Probabilities are clipped here before the logarithm, as Keras' cross-entropy does.
_EPSILON = 1e-7


def evaluate(
    model: keras.Model,
    x,
    y,
    config: ModelConfig,
    task: Task,
    *,
    logits: bool,
    batch_size: int = INFERENCE_BATCH_SIZE,
) -> dict[str, Any]:
    """The cross-entropy and the classification report of ``model`` on ``x`` and ``y``.

    Texts are scored in trimmed batches sorted by length, which give the untrimmed outputs
    ([`seqnet.buckets`][seqnet.buckets]).

    Args:
        model: A network of ``config``: the training one (``logits=True``) or the portable one.
        x: Token ids, ``(texts, sequence_length)``.
        y: Class indices, ``(texts,)``.
        config: The network's config.
        task: Its classes.
        logits: Whether ``model`` is the training formulation.
        batch_size: Texts per forward pass.

    Returns:
        ``loss`` and [`classification_report`][seqnet.metrics.classification_report]'s
        figures (``accuracy``, ``macro_f1``, ``per_class``, ``confusion_matrix``, ...).
    """
    portable = portable_model(model, config, from_training=True) if logits else model
    scorer = Classifier(portable, None, config, task)
    probabilities = scorer.predict_token_ids(x, batch_size=batch_size)
    y = check_labels(y, len(probabilities), num_classes=task.num_classes)
    report = classification_report(y, task.decide(probabilities), task.class_names)
    return {"loss": cross_entropy(probabilities, y), **report}


def cross_entropy(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of the true class."""
    if not len(y):
        return float("nan")
    chosen = probabilities[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(chosen, _EPSILON, 1.0))))


def evaluate_run(
    workdir: str | Path,
    *,
    data: str | None = None,
    options: DataOptions | None = None,
    batch_size: int = INFERENCE_BATCH_SIZE,
    verbose: bool = True,
) -> dict[str, Any]:
    """Score a saved run on its own test split, or on every row of a labelled file.

    Args:
        workdir: The run folder.
        data: A labelled file or folder in any form ``seqnet train`` reads, scored whole
            with the run's vocabulary and classes; by default the run's own test split.
        options: How to read ``data`` (columns, class names); by default the run's.
        batch_size: Texts per forward pass.
        verbose: Show progress while text is read and tokenized.

    Returns:
        ``workdir``, ``data_source``, ``samples`` and [`evaluate`][seqnet.evaluate.evaluate]'s
        figures.
    """
    workdir = Path(workdir)
    config = load_run_config(workdir)
    task = Task.load(workdir / CLASSES_FILE)
    model = load_model(workdir / MODEL_FILE)
    if data is None or not _labelled_texts(data):
        source, x, y = _test_split(workdir, config, data, verbose)
    else:
        x, y = read_labelled_file(
            data,
            vocabulary=Vocabulary.load(workdir / VOCABULARY_FILE),
            labels=_written_labels(workdir, task),
            maxlen=config.model.sequence_length,
            options=options or config.data_options,
        )
        source = str(data)
    results = evaluate(model, x, y, config.model, task, logits=False, batch_size=batch_size)
    return {"workdir": str(workdir), "data_source": source, "samples": len(y), **results}


def _written_labels(workdir: Path, task: Task) -> dict[str, str]:
    """Each class's label as the run's training data wrote it (metrics.json records it); by
    default the class name itself."""
    written = {name: name for name in task.class_names}
    metrics = workdir / METRICS_FILE
    if metrics.is_file():
        recorded = json.loads(metrics.read_text(encoding="utf-8")).get("data", {}).get("labels")
        written.update(recorded or {})
    return written


def _labelled_texts(data: str) -> bool:
    """Whether ``data`` is a user's labelled table or class folder, scored whole; IMDB's
    sources are scored on their test split."""
    path = Path(data).expanduser()
    if path.is_dir():
        return not imdb.is_imdb_folder(path)
    return path.suffix.lower() in TABLE_SUFFIXES


def _test_split(
    workdir: Path, config, data: str | None, verbose: bool
) -> tuple[str, np.ndarray, np.ndarray]:
    """The test split of ``data`` (an IMDB source), by default of the run's own data, read
    again and checked to be tokenized alike."""
    # A saved config fits nothing more: its sizes are the ones the run was trained at.
    dataset = load_training_data(
        dataclasses.replace(config, data=data or config.data), verbose=verbose
    )
    saved_vocabulary = workdir / VOCABULARY_FILE
    if (
        dataset.vocabulary is not None
        and saved_vocabulary.is_file()
        and Vocabulary.load(saved_vocabulary) != dataset.vocabulary
    ):
        raise ValueError(
            f"{dataset.source} now reads into another vocabulary than the model in {workdir} "
            f"was trained with (the data changed?); evaluate a file with --data instead."
        )
    return dataset.source, dataset.x_test, dataset.y_test
