"""The files of a training run (its workdir), written atomically and loaded safely.

``model.keras`` holds the portable network (stock Keras layers, sigmoid output, no optimizer),
which plain Keras opens under any backend without seqnet; ``checkpoint.keras`` holds the
training network with its optimizer, and ``checkpoint.random.npz`` where its random streams
stood (dropout masks), so that a resumed run trains exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import keras

from seqnet.config import TrainConfig
from seqnet.files import write_atomically
from seqnet.model import compile_for_training, portable_model
from seqnet.plot import plot_history
from seqnet.random_state import RestoreRandomState, from_bytes, random_state, to_bytes
from seqnet.text import Vocabulary

MODEL_FILE = "model.keras"
VOCABULARY_FILE = "vocabulary.json"
METRICS_FILE = "metrics.json"
HISTORY_PLOT_FILE = "history.png"


def save_run(
    workdir: Path, model: keras.Model, vocabulary: Vocabulary | None, metrics: dict
) -> None:
    """Write every output atomically, so an interrupted save never corrupts an earlier run."""
    workdir.mkdir(parents=True, exist_ok=True)
    # A bucketed training network accepts any length; the saved one keeps its config's.
    length = metrics["config"]["model"]["sequence_length"]
    save_model(portable_model(model, sequence_length=length), workdir / MODEL_FILE)
    if vocabulary is not None:
        vocabulary.save(workdir / VOCABULARY_FILE)
    write_atomically(workdir / METRICS_FILE, json.dumps(metrics, indent=2).encode())
    plot_history(metrics["history"], workdir / HISTORY_PLOT_FILE)


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
    compile_for_training(model, learning_rate=rate)
    warnings.warn(
        f"The optimizer saved in {path} ({optimizer.get('class_name', 'unknown')} from "
        f"{optimizer.get('module', 'an unknown module')}) cannot be rebuilt under the "
        f"{keras.backend.backend()} backend; its weights are loaded, its optimizer state starts "
        f"afresh.",
        stacklevel=3,
    )
    return model


CHECKPOINT_FILE = "checkpoint.keras"
CHECKPOINT_STATE_FILE = "checkpoint.json"
CHECKPOINT_RANDOM_FILE = "checkpoint.random.npz"


def save_checkpoint(
    workdir: Path, model: keras.Model, config: TrainConfig, epochs: list[dict]
) -> None:
    """Model and optimizer state, random state, then the epoch record that makes them valid.

    Every write is atomic and the JSON goes last, so a crash at any instant leaves either the
    previous checkpoint or the new one, never a mix that claims more epochs than it holds.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    save_model(model, workdir / CHECKPOINT_FILE)
    # Captured before anything else draws: this is where the next epoch's dropout starts.
    write_atomically(workdir / CHECKPOINT_RANDOM_FILE, to_bytes(random_state(model)))
    state = {"format": "seqnet.checkpoint", "config": config.to_dict(), "epochs": epochs}
    write_atomically(workdir / CHECKPOINT_STATE_FILE, json.dumps(state, indent=2).encode())


def checkpointed_config(workdir: Path) -> TrainConfig:
    """The TrainConfig of the checkpoint in ``workdir``, to resume it with its own settings."""
    return TrainConfig.from_dict(_checkpoint_state(workdir)["config"])


def load_checkpoint(
    workdir: Path, config: TrainConfig
) -> tuple[keras.Model, list[dict], list[keras.callbacks.Callback]]:
    """The checkpointed model (optimizer included), its epoch records, and the callbacks the
    next ``fit`` needs to continue exactly: they restore the random state as it starts.

    Raises:
        ValueError: If the checkpoint was trained with other settings than ``config``.
    """
    state = _checkpoint_state(workdir)
    # A resume may extend the schedule, or move to other devices: the global batches, and so
    # the optimization, stay the same.
    saved = TrainConfig.from_dict(state["config"]).to_dict()
    saved.update(epochs=config.epochs, distribute=config.distribute)
    if saved != config.to_dict():
        changed = sorted(k for k, v in config.to_dict().items() if saved.get(k) != v)
        raise ValueError(
            f"The checkpoint in {workdir} was trained with other settings ({', '.join(changed)}); "
            f"resume with the same settings or start a new run in another workdir."
        )
    model = load_model(workdir / CHECKPOINT_FILE)
    return model, list(state["epochs"]), _random_state_callbacks(workdir, model)


def _random_state_callbacks(workdir: Path, model: keras.Model) -> list[keras.callbacks.Callback]:
    """The callback restoring the checkpointed random state, or none for an older checkpoint.

    Checkpoints written before the random state was saved resume with fresh dropout streams:
    that trains well, but not bit for bit like an uninterrupted run.
    """
    path = workdir / CHECKPOINT_RANDOM_FILE
    if not path.is_file():
        warnings.warn(
            f"The checkpoint in {workdir} has no {CHECKPOINT_RANDOM_FILE} (it is older): "
            f"training resumes with fresh dropout streams, so it will not match an "
            f"uninterrupted run bit for bit.",
            stacklevel=3,
        )
        return []
    return [RestoreRandomState(model, from_bytes(path.read_bytes()))]


def _checkpoint_state(workdir: Path) -> dict:
    path = workdir / CHECKPOINT_STATE_FILE
    if not path.is_file() or not (workdir / CHECKPOINT_FILE).is_file():
        raise FileNotFoundError(
            f"No checkpoint in {workdir} to resume from; train without --resume to start."
        )
    state = json.loads(path.read_text())
    if state.get("format") != "seqnet.checkpoint":
        raise ValueError(f"{path} is not a seqnet checkpoint.")
    return state
