"""The files of a training run (its workdir), written atomically and loaded safely.

``model.keras`` holds the portable network (stock Keras layers, sigmoid output, no optimizer),
which plain Keras opens under any backend without seqnet. The checkpoint a run resumes from is
[`seqnet.checkpoint`][seqnet.checkpoint]'s.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import keras

from seqnet.config import ModelConfig, TrainConfig
from seqnet.files import write_atomically
from seqnet.model import compile_for_training, portable_model
from seqnet.plot import plot_confusion_matrix, plot_history
from seqnet.task import CLASSES_FILE, Task
from seqnet.text import Vocabulary
from seqnet.user_warnings import warn

MODEL_FILE = "model.keras"
VOCABULARY_FILE = "vocabulary.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_PLOT_FILE = "history.png"
CONFUSION_PLOT_FILE = "confusion.png"


def save_run(
    workdir: Path,
    model: keras.Model,
    config: TrainConfig,
    vocabulary: Vocabulary | None,
    task: Task,
    metrics: dict,
) -> None:
    """Write every output atomically, so an interrupted save never corrupts an earlier run.

    Args:
        workdir: The run folder.
        model: The trained training network of ``config.model``.
        config: The run's config, its sizes as trained (saved as ``config.json``, which
            everything that loads the run reads its network's settings from).
        vocabulary: The vocabulary, or None for token ids read from an .npz file.
        task: The classes (``classes.json``).
        metrics: What [`train_and_evaluate`][seqnet.train.train_and_evaluate] returns; its
            ``test`` report is also drawn as ``confusion.png``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    portable = portable_model(model, config.model, from_training=True)
    save_model(portable, workdir / MODEL_FILE)
    if vocabulary is not None:
        vocabulary.save(workdir / VOCABULARY_FILE)
    task.save(workdir / CLASSES_FILE)
    write_json(workdir / CONFIG_FILE, config.to_dict())
    write_json(workdir / METRICS_FILE, metrics)
    plot_history(metrics["history"], workdir / HISTORY_PLOT_FILE)
    plot_confusion_matrix(metrics["test"], workdir / CONFUSION_PLOT_FILE)


def write_json(path: Path, payload: dict) -> None:
    """``payload`` as indented UTF-8 JSON, written atomically."""
    write_atomically(path, json.dumps(payload, indent=2, ensure_ascii=False).encode())


def load_run_config(workdir: str | Path) -> TrainConfig:
    """The config a run folder's network was trained with.

    Read from ``config.json``; a run of seqnet 0.2 kept it in ``metrics.json`` only.

    Raises:
        FileNotFoundError: If the folder has neither.
        ValueError: If the file is not a config seqnet can read.
    """
    workdir = Path(workdir)
    for name, key in ((CONFIG_FILE, None), (METRICS_FILE, "config")):
        path = workdir / name
        if path.is_file():
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
                return TrainConfig.from_dict(payload[key] if key else payload)
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{path} is not a seqnet run config ({error}).") from None
    raise FileNotFoundError(
        f"No {CONFIG_FILE} in {workdir}: it is not a finished seqnet run; train one with "
        f"`seqnet train --workdir {workdir}`."
    )


def save_model(model: keras.Model, path: Path) -> None:
    """Save in the ``.keras`` format to a temporary name beside ``path``, then rename."""
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=".saving-"))
    try:
        model.save(staging / path.name)
        (staging / path.name).replace(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` model with Keras' safe mode: a file carrying code is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model at {path}; train one with `seqnet train` first.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a .keras model file (not a zip archive).")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except TypeError as error:
        if "optimizers" not in str(error):
            raise ValueError(f"Could not load the model at {path}: {error}") from None
        return _load_with_fresh_optimizer(path)
    except ValueError as error:
        if "safe_mode" in str(error) or "lambda" in str(error).lower():
            raise ValueError(
                f"Refusing to load {path}: it carries Python code (e.g. a Lambda layer), which "
                f"could run anything. Only load such files from sources you trust, with "
                f"keras.saving.load_model(path, safe_mode=False)."
            ) from None
        raise ValueError(f"Could not load the model at {path}: {error}") from None


def _load_with_fresh_optimizer(path: Path) -> keras.Model:
    """Load a model whose optimizer class this backend cannot import (torch saves its own Adam).

    The weights load as usual; the optimizer is rebuilt with the saved learning rate or
    schedule, and its moment estimates start afresh, which only matters for continuing training.
    """
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))
    optimizer = (saved.get("compile_config") or {}).get("optimizer") or {}
    rate = optimizer.get("config", {}).get("learning_rate", 1e-3)
    if isinstance(rate, dict):
        rate = keras.optimizers.schedules.deserialize(rate)
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    num_classes = max(2, model.output_shape[-1])  # one unit: two classes
    compile_for_training(model, ModelConfig(num_classes=num_classes), learning_rate=rate)
    warn(
        f"The optimizer saved in {path} ({optimizer.get('class_name', 'unknown')} from "
        f"{optimizer.get('module', 'an unknown module')}) cannot be rebuilt under the "
        f"{keras.backend.backend()} backend; its weights are loaded, its optimizer state starts "
        f"afresh."
    )
    return model
