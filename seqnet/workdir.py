"""One training run per run folder: a lock, and no silent replacement of an earlier run.

[`locked_workdir`][seqnet.workdir.locked_workdir] holds an ``fcntl.flock`` on a lock file in the
folder while a run trains. The kernel releases it when its process dies, however it dies, so a
lock left by a killed run is never mistaken for a live one; the PID and host written inside only
name the holder in messages. [`claim_workdir`][seqnet.workdir.claim_workdir] refuses to train
over a finished or resumable run unless told to replace it, and then removes only the files
seqnet wrote there.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqnet.checkpoint import (
    CHECKPOINT_FILE,
    CHECKPOINTS_FOLDER,
    LEGACY_FILES,
    remove_stale_checkpoints,
)
from seqnet.saving import HISTORY_PLOT_FILE, METRICS_FILE, MODEL_FILE, VOCABULARY_FILE
from seqnet.user_warnings import warn

LOCK_FILE = ".seqnet-train.lock"
# What a run writes into its folder; a replaced run loses these and nothing else.
RUN_FILES = (MODEL_FILE, METRICS_FILE, VOCABULARY_FILE, HISTORY_PLOT_FILE, CHECKPOINT_FILE)
_EXPORT_FORMATS = ("onnx", "saved-model")


class WorkdirBusyError(ValueError):
    """Another process trains in the run folder now."""


class ExistingRunError(ValueError):
    """The run folder holds an earlier run, which is neither resumed nor to be replaced.

    ``found`` says what is there; ``resumable`` whether it has a checkpoint to continue.
    """

    def __init__(self, workdir: Path, found: str, resumable: bool) -> None:
        hint = "resume it or replace it" if resumable else "replace it"
        super().__init__(f"{workdir} already holds {found}; {hint}, or train in another folder.")
        self.found, self.resumable = found, resumable


@contextmanager
def locked_workdir(workdir: Path) -> Iterator[None]:
    """Hold the run folder's lock for the block; create the folder if need be.

    Raises:
        WorkdirBusyError: If another process holds it, named by its PID and host.
    """
    created = [folder for folder in (workdir, *workdir.parents) if not folder.exists()]
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / LOCK_FILE
    handle = _acquire(path)
    try:
        _take_over(path, handle)
        yield
    finally:
        # Unlinked while still locked: a process that opened the old file notices (see
        # _acquire) and locks a fresh one, so two runs never both believe they hold it.
        path.unlink(missing_ok=True)
        os.close(handle)
        for folder in created:  # a run that failed before writing leaves no empty folders
            with contextlib.suppress(OSError):
                folder.rmdir()


def _acquire(path: Path) -> int:
    """An open descriptor of ``path`` holding its exclusive lock."""
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _holder(handle)
            os.close(handle)
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise WorkdirBusyError(
                f"{path.parent} is in use by another seqnet train ({holder}); wait for it to "
                f"end or train in another folder."
            ) from None
        try:
            if os.fstat(handle).st_ino == os.stat(path).st_ino:
                return handle
        except FileNotFoundError:
            pass
        os.close(handle)  # the file was replaced by the time we locked it: lock the new one


def _take_over(path: Path, handle: int) -> None:
    """Write this process into the lock file, with a notice if a killed run's is there."""
    previous = _holder(handle)
    if previous:
        warn(
            f"Taking over the lock on {path.parent} left by {previous}, which ended without "
            f"releasing it (killed?)."
        )
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
    os.ftruncate(handle, 0)
    os.pwrite(handle, record, 0)
    os.fsync(handle)


def _holder(handle: int) -> str:
    """'PID 123 on host' from the lock file's record, or '' when it has none."""
    try:
        record = json.loads(os.pread(handle, 4096, 0) or b"null")
        return f"PID {int(record['pid'])} on {record['host']}"
    except (ValueError, TypeError, KeyError):
        return "" if not os.fstat(handle).st_size else "a process that left no readable PID"


def claim_workdir(workdir: Path, *, resume: bool, force: bool) -> None:
    """Make ``workdir`` ready for a run that holds its lock: clear what killed checkpoint
    writes left, and refuse, or with ``force`` remove, an earlier run it would overwrite.

    Args:
        workdir: The run folder.
        resume: The run continues the checkpoint there, which is then kept.
        force: Replace an earlier run: its model, metrics, vocabulary, plot, checkpoints and
            export bundles are deleted; files seqnet did not write are left alone.

    Raises:
        ExistingRunError: If an earlier run is there, neither resumed nor ``force``.
    """
    remove_stale_checkpoints(workdir)
    if resume:
        return
    found = _earlier_run(workdir)
    if found is None:
        return
    if not force:
        raise ExistingRunError(workdir, *found)
    for name in (*RUN_FILES, *LEGACY_FILES):
        (workdir / name).unlink(missing_ok=True)
    shutil.rmtree(workdir / CHECKPOINTS_FOLDER, ignore_errors=True)
    for bundle in _export_bundles(workdir):
        shutil.rmtree(bundle)


def _earlier_run(workdir: Path) -> tuple[str, bool] | None:
    """What an earlier run left in ``workdir`` and whether it can resume, or None."""
    resumable = (workdir / CHECKPOINT_FILE).is_file()
    if (workdir / MODEL_FILE).is_file():
        return f"a finished run ({MODEL_FILE})", False
    if resumable:
        return f"an interrupted run with a checkpoint ({CHECKPOINT_FILE})", True
    if any((workdir / name).exists() for name in LEGACY_FILES):
        return "an interrupted run's checkpoint from an older seqnet", False
    return None


def _export_bundles(workdir: Path) -> list[Path]:
    """The bundles ``seqnet export`` wrote at its default places in ``workdir``: stale once
    the model is replaced. A folder there without a bundle's tokenizer.json is not seqnet's."""
    from seqnet.export import TOKENIZER_FILE, default_output  # export loads much more

    bundles = (default_output(workdir, format) for format in _EXPORT_FORMATS)
    return [bundle for bundle in bundles if (bundle / TOKENIZER_FILE).is_file()]
