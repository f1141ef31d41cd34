"""A run's checkpoint, written as one unit: a kill at any instant leaves the old or the new.

Each epoch's checkpoint is a folder ``checkpoints/epoch-0003/`` in the run folder holding
``model.keras`` (the training network with its optimizer), ``random.npz`` (where its random
streams stood, see [`seqnet.random_state`][seqnet.random_state]) and ``manifest.json`` (the
config, backend and epoch records, and the sha256 of both other parts). The folder is written
under a temporary name, synced and renamed into place; only then is ``checkpoint.json``, a small
pointer naming the folder and the manifest's sha256, replaced atomically, and older folders
deleted. Loading checks every hash, so parts from different writes or runs are refused, never
resumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from seqnet.config import TrainConfig
from seqnet.files import write_atomically
from seqnet.random_state import RestoreRandomState, from_bytes, random_state, to_bytes
from seqnet.saving import load_model

CHECKPOINT_FILE = "checkpoint.json"  # the pointer: the one file a checkpoint write replaces
CHECKPOINTS_FOLDER = "checkpoints"
MODEL_PART, RANDOM_PART, MANIFEST_PART = "model.keras", "random.npz", "manifest.json"
# What seqnet before 0.3 wrote instead: three files side by side, replaced one by one.
LEGACY_FILES = ("checkpoint.keras", "checkpoint.random.npz")
FORMAT, VERSION = "seqnet.checkpoint", 2
_STAGING_PREFIX = ".staging-"
_FOLDER_NAME = re.compile(r"epoch-\d{4,}")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: damaged, mixed from several writes, or foreign."""


@dataclass
class Checkpoint:
    """What a run continues from: a model, its epoch records and how its schedule changed.

    ``callbacks`` restore the random state as the next ``fit`` starts; ``config`` is the
    config the checkpoint was written with.
    """

    model: keras.Model
    config: TrainConfig | None = None
    epochs: list[dict] = field(default_factory=list)
    schedule_changes: list[dict] = field(default_factory=list)
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)


def save_checkpoint(
    workdir: Path,
    model: keras.Model,
    config: TrainConfig,
    epochs: list[dict],
    schedule_changes: list[dict] = (),
) -> None:
    """Write the checkpoint after ``len(epochs)`` epochs as one unit, then drop older ones.

    Args:
        workdir: The run folder.
        model: The training network, optimizer included.
        config: The run's config, checked on resume.
        epochs: The records of the epochs trained so far.
        schedule_changes: When resumes changed the learning-rate schedule, for metrics.json.
    """
    root = workdir / CHECKPOINTS_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{len(epochs):04d}"
    staging = Path(tempfile.mkdtemp(dir=root, prefix=_STAGING_PREFIX))
    try:
        manifest = _write_parts(staging, model, config, epochs, schedule_changes)
        if (root / name).exists():  # a folder written by a killed run that never pointed to it
            shutil.rmtree(root / name)
        os.rename(staging, root / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _sync_folder(root)
    pointer = {"format": FORMAT, "version": VERSION, "folder": name, "manifest_sha256": manifest}
    write_atomically(workdir / CHECKPOINT_FILE, json.dumps(pointer, indent=2).encode())
    _sync_folder(workdir)  # the rename of the pointer is durable before older folders go
    remove_stale_checkpoints(workdir)


def _write_parts(
    folder: Path, model: keras.Model, config: TrainConfig, epochs, schedule_changes
) -> str:
    """Write the model, random state and manifest into ``folder``, synced; the manifest's
    sha256."""
    model.save(folder / MODEL_PART)
    _sync_file(folder / MODEL_PART)
    # Captured before anything else draws: this is where the next epoch's dropout starts.
    _write_synced(folder / RANDOM_PART, to_bytes(random_state(model)))
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "backend": keras.backend.backend(),
        "config": config.to_dict(),
        "epochs": list(epochs),
        "schedule_changes": list(schedule_changes),
        "sha256": {part: _sha256(folder / part) for part in (MODEL_PART, RANDOM_PART)},
    }
    data = json.dumps(manifest, indent=2).encode()
    _write_synced(folder / MANIFEST_PART, data)
    _sync_folder(folder)
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(workdir: Path, config: TrainConfig) -> Checkpoint:
    """The checkpoint in ``workdir``, verified, to continue training per ``config``.

    ``config`` may differ from the checkpoint's in ``epochs`` (no fewer than are done) and
    ``distribute`` only: both leave the global batches, and so the optimization, the same.

    Raises:
        FileNotFoundError: If ``workdir`` holds no checkpoint.
        CheckpointError: If it is damaged, mixed, from another backend, or trained with other
            settings than ``config``.
    """
    folder, manifest = read_checkpoint(workdir)
    saved = TrainConfig.from_dict(manifest["config"])
    _check_settings(workdir, saved, config, len(manifest["epochs"]))
    model = load_model(folder / MODEL_PART)
    state = from_bytes((folder / RANDOM_PART).read_bytes())
    return Checkpoint(
        model,
        saved,
        list(manifest["epochs"]),
        list(manifest.get("schedule_changes", [])),
        [RestoreRandomState(model, state)],
    )


def _check_settings(workdir: Path, saved: TrainConfig, config: TrainConfig, done: int) -> None:
    if config.epochs < done:
        raise CheckpointError(
            f"The checkpoint in {workdir} has {done} epochs done; it cannot resume to "
            f"{config.epochs}. Ask for {done} or more epochs."
        )
    expected = saved.to_dict()
    # fit_to_data says how to read the data, and what it chose is in the model's sizes.
    expected.update(epochs=config.epochs, distribute=config.distribute)
    expected["fit_to_data"] = config.to_dict()["fit_to_data"]
    if expected != config.to_dict():
        changed = sorted(k for k, v in config.to_dict().items() if expected.get(k) != v)
        raise CheckpointError(
            f"The checkpoint in {workdir} was trained with other settings ({', '.join(changed)}); "
            f"resume with the same settings or start a new run in another workdir."
        )


def checkpointed_config(workdir: Path) -> TrainConfig:
    """The TrainConfig of the checkpoint in ``workdir``, to resume it with its own settings."""
    return TrainConfig.from_dict(read_checkpoint(workdir)[1]["config"])


def read_checkpoint(workdir: Path) -> tuple[Path, dict[str, Any]]:
    """The folder and manifest ``checkpoint.json`` points to, each part's sha256 verified.

    Raises:
        FileNotFoundError: If ``workdir`` holds no checkpoint.
        CheckpointError: If a part is missing or altered, or the checkpoint was written under
            another backend than this process runs or by an older seqnet.
    """
    pointer = _read_pointer(workdir)
    folder = workdir / CHECKPOINTS_FOLDER / pointer["folder"]
    try:
        data = (folder / MANIFEST_PART).read_bytes()
    except OSError:
        raise _mixed(workdir, f"{CHECKPOINTS_FOLDER}/{pointer['folder']} is missing") from None
    if hashlib.sha256(data).hexdigest() != pointer["manifest_sha256"]:
        raise _mixed(workdir, f"its {MANIFEST_PART} is not the one {CHECKPOINT_FILE} names")
    manifest = json.loads(data)
    for part, digest in manifest["sha256"].items():
        if not (folder / part).is_file() or _sha256(folder / part) != digest:
            raise _mixed(workdir, f"its {part} is missing or not the one written with it")
    backend = keras.backend.backend()
    if manifest["backend"] != backend:
        raise CheckpointError(
            f"The checkpoint in {workdir} was written under the {manifest['backend']} backend, "
            f"and its optimizer state only resumes there, not under {backend}: resume with "
            f"KERAS_BACKEND={manifest['backend']}."
        )
    return folder, manifest


def _read_pointer(workdir: Path) -> dict[str, Any]:
    """``checkpoint.json``, checked to be a pointer this seqnet wrote."""
    path = workdir / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No checkpoint in {workdir} to resume from; train without resuming to start."
        )
    try:
        pointer = json.loads(path.read_bytes())
    except (ValueError, OSError) as error:
        raise CheckpointError(f"{path} is damaged ({error}); it cannot be resumed.") from None
    if not isinstance(pointer, dict) or pointer.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a seqnet checkpoint.")
    if "folder" not in pointer and "config" in pointer:
        raise CheckpointError(
            f"The checkpoint in {workdir} was written by an older seqnet, whose parts cannot "
            f"be checked to belong together; it cannot be resumed: start a new run."
        )
    folder, digest = pointer.get("folder"), pointer.get("manifest_sha256")
    if not (isinstance(folder, str) and _FOLDER_NAME.fullmatch(folder) and isinstance(digest, str)):
        raise CheckpointError(f"{path} is damaged: it names no checkpoint folder.")
    return pointer


def _mixed(workdir: Path, reason: str) -> CheckpointError:
    return CheckpointError(
        f"The checkpoint in {workdir} is incomplete or mixed: {reason}. It cannot be resumed "
        f"exactly; start a new run."
    )


def remove_stale_checkpoints(workdir: Path) -> None:
    """Delete what killed or superseded checkpoint writes left: staging folders, temporary
    pointer files and every checkpoint folder the pointer does not name.

    Where the pointer cannot be read, the checkpoint folders are kept: which one is current
    is then unknown, and deleting the wrong one would lose the run.
    """
    for leftover in workdir.glob(f".{CHECKPOINT_FILE}.*.tmp"):
        leftover.unlink(missing_ok=True)
    root = workdir / CHECKPOINTS_FOLDER
    if not root.is_dir():
        return
    try:
        current = _read_pointer(workdir)["folder"]
    except (FileNotFoundError, CheckpointError):
        current = None
    for entry in root.iterdir():
        stale = entry.name.startswith(_STAGING_PREFIX) or (
            current is not None and entry.name != current and _FOLDER_NAME.fullmatch(entry.name)
        )
        if stale:
            shutil.rmtree(entry, ignore_errors=True)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _sync_file(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _sync_folder(path: Path) -> None:
    """Make the renames inside ``path`` durable: without it, a power cut may undo them."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
