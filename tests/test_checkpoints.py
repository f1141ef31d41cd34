"""Checkpoints as one unit: a kill at every write, mixed parts, changed epochs, other backends,
the workdir lock, and no silent replacement of a finished run."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

import seqnet.train
from seqnet import cli
from seqnet.checkpoint import (
    CHECKPOINT_FILE,
    CHECKPOINTS_FOLDER,
    MANIFEST_PART,
    MODEL_PART,
    RANDOM_PART,
    load_checkpoint,
    read_checkpoint,
    remove_stale_checkpoints,
    save_checkpoint,
)
from seqnet.random_state import from_bytes
from seqnet.saving import load_model
from seqnet.train import train_and_evaluate
from seqnet.workdir import LOCK_FILE, ExistingRunError, WorkdirBusyError

WORKER = Path(__file__).with_name("checkpoint_worker.py")
sys.path.insert(0, str(WORKER.parent))
from checkpoint_worker import KILL_RUN, epochs_done  # noqa: E402

TWO_EPOCHS = replace(KILL_RUN, epochs=2)


class Died(BaseException):
    """The process is dead from here on: no handler may write anything more."""


@contextmanager
def dying_at(call: int | None):
    """Count every file-system write ``seqnet`` makes; at write ``call`` (1-based), and at
    every one after it, raise ``Died``, so that the disk holds what a kill there leaves.

    ``Model.save`` counts as one write: what it leaves when killed midway is a partial file in
    a staging folder, as when killed before the rename that follows it. Yields the counter.
    """
    counter = {"calls": 0, "inside_save": False}
    originals = {}

    def write(name, real):
        def patched(*args, **kwargs):
            if name in ("open", "os.open") and not _writes(name, args, kwargs):
                return real(*args, **kwargs)
            if counter["inside_save"]:
                return real(*args, **kwargs)
            counter["calls"] += 1
            if call is not None and counter["calls"] >= call:
                raise Died
            if name == "Model.save":
                counter["inside_save"] = True
                try:
                    return real(*args, **kwargs)
                finally:
                    counter["inside_save"] = False
            return real(*args, **kwargs)

        return patched

    targets = [(os, n) for n in ("mkdir", "rename", "replace", "fsync", "unlink", "rmdir", "open")]
    targets += [(builtins, "open"), (keras.Model, "save")]
    for owner, name in targets:
        originals[owner, name] = getattr(owner, name)
        label = {builtins: "open", os: f"os.{name}"}.get(owner, "Model.save")
        setattr(owner, name, write(label, originals[owner, name]))
    try:
        yield counter
    finally:
        for (owner, name), real in originals.items():
            setattr(owner, name, real)


def _writes(name: str, args, kwargs) -> bool:
    if name == "open":
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        return any(flag in mode for flag in "wax+")
    flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
    return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))


def _state(workdir: Path) -> list[np.ndarray]:
    """The checkpoint's weights, optimizer variables and random state, and its epoch count."""
    checkpoint = load_checkpoint(workdir, TWO_EPOCHS)
    model = checkpoint.model
    variables = [*model.weights, *model.optimizer.variables]
    arrays = [keras.ops.convert_to_numpy(variable) for variable in variables]
    folder = read_checkpoint(workdir)[0]
    random = from_bytes((folder / RANDOM_PART).read_bytes())
    return [np.array(len(checkpoint.epochs)), *arrays, *(random[key] for key in sorted(random))]


def _same(one: list[np.ndarray], other: list[np.ndarray]) -> bool:
    if len(one) != len(other):
        return False
    return all(np.array_equal(a, b) for a, b in zip(one, other, strict=True))


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """A run folder after epoch 1, the model after epoch 2 and the checkpoint it makes."""
    root = tmp_path_factory.mktemp("checkpoints")
    two = train_and_evaluate(TWO_EPOCHS, root / "two", verbose=0)
    (root / "two" / "model.keras").unlink()  # keep the checkpoint alone
    real_train_one_epoch = seqnet.train.train_one_epoch

    def killed_in_second_epoch(model, data, config, epoch, **kwargs):
        if epoch == 1:
            raise Died
        return real_train_one_epoch(model, data, config, epoch, **kwargs)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(Died):
        patch.setattr(seqnet.train, "train_one_epoch", killed_in_second_epoch)
        train_and_evaluate(TWO_EPOCHS, root / "one", verbose=0)
    model = load_checkpoint(root / "two", TWO_EPOCHS).model
    return root, model, two["history"][:1], two["history"]


def test_a_kill_at_every_write_leaves_the_old_or_the_new_checkpoint(two_checkpoints, tmp_path):
    root, model, _, history = two_checkpoints
    # Each save captures torch's global generator: the same for every save, as in training.
    shutil.copytree(root / "one", tmp_path / "count")
    keras.utils.set_random_seed(7)
    with dying_at(None) as counter:
        save_checkpoint(tmp_path / "count", model, TWO_EPOCHS, history)
    writes = counter["calls"]
    old, new = _state(root / "one"), _state(tmp_path / "count")
    assert writes >= 10  # the parts, their syncs, the renames and the clean-up
    outcomes = []
    for call in range(1, writes + 2):  # + 2: also after the last write
        workdir = tmp_path / f"killed-{call}"
        shutil.copytree(root / "one", workdir)
        keras.utils.set_random_seed(7)
        with dying_at(call), pytest.raises(Died) if call <= writes else _nothing():
            save_checkpoint(workdir, model, TWO_EPOCHS, history)
        state = _state(workdir)
        assert _same(state, old) or _same(state, new), f"a kill at write {call} mixed them"
        outcomes.append("new" if _same(state, new) else "old")
        remove_stale_checkpoints(workdir)  # as the next run does before it starts
        assert [path.name for path in (workdir / CHECKPOINTS_FOLDER).iterdir()] == [
            read_checkpoint(workdir)[0].name
        ]
        assert not list(workdir.glob(".*.tmp"))
    # Until the pointer is replaced the old one holds, from then on the new one.
    assert outcomes == sorted(outcomes, key=["old", "new"].index)
    assert "old" in outcomes and outcomes[-1] == "new"


@contextmanager
def _nothing():
    yield


def test_a_kill_while_writing_the_first_checkpoint_leaves_none(two_checkpoints, tmp_path):
    _, model, history, _ = two_checkpoints
    config = replace(KILL_RUN, epochs=1)
    with dying_at(3), pytest.raises(Died):
        save_checkpoint(tmp_path, model, config, history[:1])
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        read_checkpoint(tmp_path)
    assert list((tmp_path / CHECKPOINTS_FOLDER).iterdir())  # a staging folder is left
    train_and_evaluate(config, tmp_path, verbose=0)  # starts afresh: nothing to refuse
    assert [path.name for path in (tmp_path / CHECKPOINTS_FOLDER).iterdir()] == ["epoch-0001"]


def test_resuming_either_outcome_ends_as_an_uninterrupted_run(two_checkpoints, tmp_path):
    root, _, _, _ = two_checkpoints
    straight = train_and_evaluate(TWO_EPOCHS, tmp_path / "straight", verbose=0)
    for outcome in ("one", "two"):  # killed before, or after, the pointer's replacement
        workdir = tmp_path / outcome
        shutil.copytree(root / outcome, workdir)
        resumed = train_and_evaluate(TWO_EPOCHS, workdir, resume=True, verbose=0)
        assert _same_losses(resumed, straight)
        for one, other in zip(_weights(workdir), _weights(tmp_path / "straight"), strict=True):
            np.testing.assert_array_equal(one, other)


def _same_losses(one: dict, other: dict) -> bool:
    return [e["val_loss"] for e in one["history"]] == [e["val_loss"] for e in other["history"]]


def _weights(workdir: Path) -> list[np.ndarray]:
    return load_model(workdir / "model.keras").get_weights()


# --- parts that do not belong together --------------------------------------------------------


def test_a_part_from_another_run_is_refused(two_checkpoints, tmp_path):
    root, _, _, _ = two_checkpoints
    shutil.copytree(root / "one", tmp_path / "run")
    other = read_checkpoint(root / "two")[0] / MODEL_PART
    shutil.copy(other, read_checkpoint(tmp_path / "run")[0] / MODEL_PART)
    with pytest.raises(ValueError, match="mixed: its model.keras is missing or not the one"):
        train_and_evaluate(TWO_EPOCHS, tmp_path / "run", resume=True, verbose=0)


def test_a_pointer_to_another_manifest_is_refused(two_checkpoints, tmp_path):
    root, _, _, _ = two_checkpoints
    shutil.copytree(root / "one", tmp_path / "run")
    folder = read_checkpoint(tmp_path / "run")[0]
    manifest = json.loads((folder / MANIFEST_PART).read_text())
    manifest["epochs"] = manifest["epochs"] * 2  # claims an epoch it does not hold
    (folder / MANIFEST_PART).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="manifest.json is not the one checkpoint.json names"):
        read_checkpoint(tmp_path / "run")


def _forge_backend(workdir: Path, backend: str) -> None:
    """Rewrite the checkpoint as if written under ``backend``, hashes consistent."""
    folder = read_checkpoint(workdir)[0]
    manifest = json.loads((folder / MANIFEST_PART).read_text())
    data = json.dumps({**manifest, "backend": backend}).encode()
    (folder / MANIFEST_PART).write_bytes(data)
    pointer = json.loads((workdir / CHECKPOINT_FILE).read_text())
    pointer["manifest_sha256"] = hashlib.sha256(data).hexdigest()
    (workdir / CHECKPOINT_FILE).write_text(json.dumps(pointer))


def test_a_checkpoint_from_another_backend_is_refused_naming_both(
    two_checkpoints, tmp_path, capsys
):
    root, _, _, _ = two_checkpoints
    shutil.copytree(root / "one", tmp_path / "run")
    other = next(b for b in ("tensorflow", "jax", "torch") if b != keras.backend.backend())
    _forge_backend(tmp_path / "run", other)
    code = cli.main(["train", "--resume", "--workdir", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert code == 1 and error.count("\n") == 1
    assert f"under the {other} backend" in error and keras.backend.backend() in error
    assert f"KERAS_BACKEND={other}" in error


# --- changing --epochs on resume --------------------------------------------------------------


def test_resuming_with_more_epochs_rebuilds_the_schedule_and_says_so(two_checkpoints, tmp_path):
    root, _, _, _ = two_checkpoints
    shutil.copytree(root / "two", tmp_path / "run")
    before = load_checkpoint(tmp_path / "run", TWO_EPOCHS).model.get_weights()
    four = replace(KILL_RUN, epochs=4)
    metrics = train_and_evaluate(four, tmp_path / "run", resume=True, verbose=0)
    assert [epoch["epoch"] for epoch in metrics["history"]] == [1, 2, 3, 4]
    assert metrics["schedule_changes"] == [{"epoch": 2, "from_epochs": 2, "to_epochs": 4}]
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["schedule_changes"] == metrics["schedule_changes"]
    # The 2-epoch cosine ended at 0: epochs 3 and 4 moved the weights only on a new schedule.
    after = _weights(tmp_path / "run")
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert metrics["history"][3]["val_loss"] != metrics["history"][1]["val_loss"]


def test_more_epochs_on_a_constant_rate_resume_exactly_as_a_longer_run(tmp_path):
    constant = replace(KILL_RUN, learning_rate_schedule="constant", learning_rate=1e-3)
    train_and_evaluate(replace(constant, epochs=1), tmp_path / "resumed", verbose=0)
    (tmp_path / "resumed" / "model.keras").unlink()
    resumed = train_and_evaluate(replace(constant, epochs=2), tmp_path / "resumed", resume=True)
    train_and_evaluate(replace(constant, epochs=2), tmp_path / "straight", verbose=0)
    assert resumed["schedule_changes"] == []
    for one, other in zip(
        _weights(tmp_path / "resumed"), _weights(tmp_path / "straight"), strict=True
    ):
        np.testing.assert_array_equal(one, other)


def test_resuming_with_fewer_epochs_than_done_is_refused(two_checkpoints, tmp_path, capsys):
    root, _, _, _ = two_checkpoints
    shutil.copytree(root / "two", tmp_path / "run")
    code = cli.main(["train", "--resume", "--epochs", "1", "--workdir", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert code == 1 and error.count("\n") == 1
    assert "has 2 epochs done; it cannot resume to 1" in error


# --- one run per workdir ----------------------------------------------------------------------


def _holding_worker(workdir: Path) -> subprocess.Popen:
    """A training process that holds ``workdir``'s lock until its stdin closes."""
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(workdir), "1", "--hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout.readline() == "started\n"
    assert worker.stdout.readline() == "holding\n"  # inside the lock now
    return worker


def test_a_second_train_on_a_busy_workdir_exits_1_naming_the_first(tmp_path):
    first = _holding_worker(tmp_path / "run")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "seqnet", "train", "--workdir", str(tmp_path / "run")],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        first.stdin.close()
        first.wait(timeout=300)
    assert second.returncode == 1, second.stderr
    # Only seqnet's own lines: TensorFlow logs to stderr as it is imported.
    error = [line for line in second.stderr.splitlines() if line.startswith("seqnet")]
    assert len(error) == 1 and f"PID {first.pid} on " in error[0], second.stderr
    assert "Traceback" not in second.stderr
    assert "in use by another seqnet train" in error[0]
    assert first.returncode == 0  # the first run was not disturbed
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_notice(tmp_path):
    killed = _holding_worker(tmp_path / "run")
    killed.kill()
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "run" / LOCK_FILE).is_file()  # its PID is still written there
    with pytest.warns(UserWarning, match=f"Taking over the lock .* left by PID {killed.pid}"):
        train_and_evaluate(replace(KILL_RUN, epochs=1), tmp_path / "run", verbose=0)


@pytest.mark.parametrize(
    ("stop", "named"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")]
)
def test_a_stop_signal_ends_training_with_one_line_and_the_run_resumes(tmp_path, stop, named):
    """SIGTERM or Ctrl-C in epoch 2 of ``seqnet train``: status 128 + the signal, one line
    naming --resume, the lock released, epoch 1's checkpoint kept; --resume finishes the run."""
    run = tmp_path / "run"
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(run), "3", "--hold", "2", "--cli"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout.readline() == "started\n"
    assert worker.stdout.readline() == "holding\n", worker.communicate()[1]
    worker.send_signal(stop)
    _, stderr = worker.communicate(timeout=300)
    assert worker.returncode == 128 + stop
    assert "Traceback" not in stderr
    # The worker imports Keras before seqnet's CLI runs, so TensorFlow's notices may precede.
    assert [line for line in stderr.splitlines() if line.startswith("seqnet")] == [
        f"seqnet train: stopped by {named}. "
        "Its last finished epoch is checkpointed: --resume continues from there."
    ]
    assert not (run / LOCK_FILE).exists()
    assert epochs_done(run) == 1
    resumed = subprocess.run(
        [sys.executable, str(WORKER), str(run), "3", "--resume", "--cli"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert len(json.loads((run / "metrics.json").read_text())["history"]) == 3


def test_the_lock_refuses_a_holder_in_this_process_too(tmp_path):
    from seqnet.workdir import locked_workdir

    busy = pytest.raises(WorkdirBusyError, match=f"PID {os.getpid()}")
    with locked_workdir(tmp_path), busy, locked_workdir(tmp_path):
        pass


# --- a finished run is not replaced without a word --------------------------------------------


def test_training_over_a_finished_run_is_refused(two_checkpoints, tmp_path, capsys):
    run = tmp_path / "run"
    train_and_evaluate(replace(KILL_RUN, epochs=1), run, verbose=0)
    model = (run / "model.keras").read_bytes()
    code = cli.main(["train", "--workdir", str(run)])
    error = capsys.readouterr().err
    assert code == 1 and error.count("\n") == 1
    assert "already holds a finished run (model.keras)" in error and "--force" in error
    assert (run / "model.keras").read_bytes() == model
    with pytest.raises(ExistingRunError):
        train_and_evaluate(replace(KILL_RUN, epochs=1), run, verbose=0)


def test_training_over_an_interrupted_run_points_to_resume(two_checkpoints, tmp_path, capsys):
    root, _, _, _ = two_checkpoints
    shutil.copytree(root / "one", tmp_path / "run")
    code = cli.main(["train", "--workdir", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert code == 1 and error.count("\n") == 1
    assert "interrupted run with a checkpoint" in error and "--resume" in error


def test_force_replaces_only_what_seqnet_wrote(tmp_path):
    run = tmp_path / "run"
    train_and_evaluate(replace(KILL_RUN, epochs=1, seed=1), run, verbose=0)
    bundle = run / "export-onnx"
    bundle.mkdir()
    (bundle / "tokenizer.json").write_text("{}")  # as seqnet export writes it
    (run / "export-saved-model").mkdir()  # the user's own folder: no bundle
    (run / "notes.txt").write_text("mine")
    old = (run / "model.keras").read_bytes()
    metrics = train_and_evaluate(replace(KILL_RUN, epochs=1), run, force=True, verbose=0)
    assert metrics["config"]["seed"] == KILL_RUN.seed
    assert (run / "model.keras").read_bytes() != old
    assert not bundle.exists()
    assert (run / "notes.txt").read_text() == "mine" and (run / "export-saved-model").is_dir()
    assert [path.name for path in (run / CHECKPOINTS_FOLDER).iterdir()] == ["epoch-0001"]


def test_resume_and_force_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["train", "--resume", "--force"])
    assert exit.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path):
    config = replace(KILL_RUN, data=str(tmp_path / "missing.tar.gz"))
    with pytest.raises(FileNotFoundError):
        train_and_evaluate(config, tmp_path / "new" / "run", verbose=0)
    assert not (tmp_path / "new").exists()
