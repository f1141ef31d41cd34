"""Crash-safe training: reproducible runs, atomic checkpoints, resume after SIGKILL, NaN stops."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import seqnet.train
from seqnet.checkpoint import MODEL_PART, RANDOM_PART, read_checkpoint
from seqnet.config import ModelConfig, TrainConfig
from seqnet.random_state import RestoreRandomState, from_bytes, random_state, to_bytes
from seqnet.saving import load_model, save_model
from seqnet.train import TrainingDivergedError, train_and_evaluate

sys.path.insert(0, str(Path(__file__).parent))
from checkpoint_worker import epochs_done, run_killed_at  # noqa: E402

TINY = ModelConfig(
    vocabulary_size=200, sequence_length=60, embedding_dim=16, filters=32, hidden_units=16
)
TINY_RUN = TrainConfig(data="synthetic", epochs=2, synthetic_samples=400, seed=11, model=TINY)


def _weights(workdir: Path) -> list[np.ndarray]:
    return load_model(workdir / "model.keras").get_weights()


def assert_same_weights(first: Path, second: Path) -> None:
    """The two runs' saved models hold bit-identical weights."""
    for one, other in zip(_weights(first), _weights(second), strict=True):
        np.testing.assert_array_equal(one, other)


def _checkpointed_state(workdir: Path) -> list[np.ndarray]:
    """The checkpoint's weights and optimizer variables (step count, moments), in order."""
    model = _checkpointed_model(workdir)
    variables = [*model.weights, *model.optimizer.variables]
    return [keras.ops.convert_to_numpy(variable) for variable in variables]


def _checkpointed_model(workdir: Path) -> keras.Model:
    return load_model(read_checkpoint(workdir)[0] / MODEL_PART)


class Interrupted(Exception):
    """Stands for a crash: the process dies before the epoch it interrupts ends."""


def _crash_in_epoch(monkeypatch, crashed_epoch: int) -> None:
    """Make training die as epoch ``crashed_epoch`` (0-based) begins, after a checkpoint."""
    real_train_one_epoch = seqnet.train.train_one_epoch

    def crashing(model, data, config, epoch, **kwargs):
        if epoch == crashed_epoch:
            raise Interrupted
        return real_train_one_epoch(model, data, config, epoch, **kwargs)

    monkeypatch.setattr(seqnet.train, "train_one_epoch", crashing)


def test_same_seed_gives_bit_identical_weights(tmp_path):
    train_and_evaluate(TINY_RUN, tmp_path / "first", verbose=0)
    train_and_evaluate(TINY_RUN, tmp_path / "second", verbose=0)
    assert_same_weights(tmp_path / "first", tmp_path / "second")


def test_a_resumed_run_ends_bit_for_bit_where_an_uninterrupted_one_does(tmp_path, monkeypatch):
    # Dropout and a schedule are what a resume used to lose: its random streams and its step.
    assert TINY_RUN.model.dropout_rate > 0 and TINY_RUN.learning_rate_schedule != "constant"
    with monkeypatch.context() as patch:
        _crash_in_epoch(patch, crashed_epoch=1)
        with pytest.raises(Interrupted):
            train_and_evaluate(TINY_RUN, tmp_path / "resumed", verbose=0)
    assert (read_checkpoint(tmp_path / "resumed")[0] / RANDOM_PART).is_file()
    resumed = train_and_evaluate(TINY_RUN, tmp_path / "resumed", resume=True, verbose=0)
    straight = train_and_evaluate(TINY_RUN, tmp_path / "straight", verbose=0)
    assert resumed["history"][1]["val_loss"] == straight["history"][1]["val_loss"]
    for one, other in zip(
        _checkpointed_state(tmp_path / "resumed"),
        _checkpointed_state(tmp_path / "straight"),
        strict=True,
    ):
        np.testing.assert_array_equal(one, other)
    assert_same_weights(tmp_path / "resumed", tmp_path / "straight")


def test_a_checkpoint_with_a_part_missing_is_refused(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        _crash_in_epoch(patch, crashed_epoch=1)
        with pytest.raises(Interrupted):
            train_and_evaluate(TINY_RUN, tmp_path, verbose=0)
    (read_checkpoint(tmp_path)[0] / RANDOM_PART).unlink()
    with pytest.raises(ValueError, match="incomplete or mixed: its random.npz is missing"):
        train_and_evaluate(TINY_RUN, tmp_path, resume=True, verbose=0)


def test_random_state_is_restored_once_and_only_into_a_model_it_fits():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5)])
    saved = from_bytes(to_bytes(random_state(model)))
    model(np.ones((2, 4)), training=True)  # one draw moves the generator on
    restorer = RestoreRandomState(model, saved)
    restorer.on_train_begin()
    assert _same_state(random_state(model), saved)
    model(np.ones((2, 4)), training=True)
    restorer.on_train_begin()  # a later fit: the stream runs on
    assert not _same_state(random_state(model), saved)
    without_dropout = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="does not fit this model"):
        RestoreRandomState(without_dropout, saved)


def _same_state(state: dict, other: dict) -> bool:
    """Whether two captured random states are equal, stream by stream."""
    return state.keys() == other.keys() and all(
        np.array_equal(state[key], other[key]) for key in state
    )


def test_resume_continues_from_the_checkpoint(tmp_path):
    one_epoch = TrainConfig(**{**TINY_RUN.__dict__, "epochs": 1})
    train_and_evaluate(one_epoch, tmp_path / "resumed", verbose=0)
    resumed = train_and_evaluate(TINY_RUN, tmp_path / "resumed", resume=True, verbose=0)
    straight = train_and_evaluate(TINY_RUN, tmp_path / "straight", verbose=0)
    assert [epoch["epoch"] for epoch in resumed["history"]] == [1, 2]
    assert resumed["test_accuracy"] == pytest.approx(straight["test_accuracy"], abs=0.02)
    optimizer = _checkpointed_model(tmp_path / "resumed").optimizer
    steps_per_epoch = -(-TINY_RUN.synthetic_samples // TINY_RUN.batch_size)
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 2 * steps_per_epoch


def test_resume_with_other_settings_is_refused(tmp_path):
    train_and_evaluate(TrainConfig(**{**TINY_RUN.__dict__, "epochs": 1}), tmp_path, verbose=0)
    with pytest.raises(ValueError, match="other settings .*seed"):
        train_and_evaluate(TrainConfig(**{**TINY_RUN.__dict__, "seed": 99}), tmp_path, resume=True)
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        train_and_evaluate(TINY_RUN, tmp_path / "empty", resume=True)


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    save_model(model, tmp_path / "model.keras")
    good = (tmp_path / "model.keras").read_bytes()

    def crash(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a zip")
        raise OSError("No space left on device")

    monkeypatch.setattr(keras.Model, "save", crash)
    with pytest.raises(OSError, match="No space left"):
        save_model(model, tmp_path / "model.keras")
    assert (tmp_path / "model.keras").read_bytes() == good
    assert [path.name for path in tmp_path.iterdir()] == ["model.keras"]


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    real_train_one_epoch = seqnet.train.train_one_epoch

    def poisoned_second_epoch(model, arrays, config, epoch, **kwargs):
        if epoch == 1:  # a weight blown up to NaN, as a too-large step would
            kernel = model.get_layer("hidden").kernel
            kernel.assign(keras.ops.full(kernel.shape, float("nan")))
        return real_train_one_epoch(model, arrays, config, epoch, **kwargs)

    monkeypatch.setattr(seqnet.train, "train_one_epoch", poisoned_second_epoch)
    with pytest.raises(TrainingDivergedError, match="epoch 2.*checkpoint after epoch 1 is kept"):
        train_and_evaluate(TINY_RUN, tmp_path, verbose=0)
    state = read_checkpoint(tmp_path)[1]
    assert len(state["epochs"]) == 1
    assert all(np.isfinite(w).all() for w in _checkpointed_model(tmp_path).get_weights())
    assert not (tmp_path / "model.keras").exists()


def test_a_huge_learning_rate_is_reported_as_divergence(tmp_path):
    config = TrainConfig(**{**TINY_RUN.__dict__, "learning_rate": 1e35})
    with pytest.raises(TrainingDivergedError, match="Lower the learning rate"):
        train_and_evaluate(config, tmp_path, verbose=0)


# --- killing a real training process ---------------------------------------------------------

RANDOM_KILLS = 3  # per backend here; tests/kill_loop.py makes hundreds, to measure


def test_sigkill_at_random_instants_resumes_bit_for_bit(tmp_path):
    started = time.monotonic()
    assert run_killed_at(tmp_path / "straight", 3, seconds=600) == "done"
    duration = time.monotonic() - started  # an upper bound of the training's own time
    rng = np.random.default_rng()
    instants = rng.uniform(0, duration, size=RANDOM_KILLS)
    workdir = tmp_path / "killed"
    for instant in instants:
        before = epochs_done(workdir)
        run_killed_at(workdir, 3, instant)
        assert epochs_done(workdir) >= before, f"a kill at {instant:.2f} s lost a checkpoint"
    while run_killed_at(workdir, 3, seconds=600) == "killed":
        pass
    killed = json.loads((workdir / "metrics.json").read_text())
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert [epoch["epoch"] for epoch in killed["history"]] == [1, 2, 3], instants
    # Same seed, same result: not close, but the very same weights and losses.
    assert_same_weights(workdir, tmp_path / "straight")
    for resumed_epoch, straight_epoch in zip(killed["history"], straight["history"], strict=True):
        assert resumed_epoch["val_loss"] == straight_epoch["val_loss"], instants
