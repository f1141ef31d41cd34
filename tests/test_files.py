"""Atomic writes: the umask decides a written file's mode, and only regular files are replaced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import train_tiny_run

from seqnet import files


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=oct)
def umask(request):
    """The process umask set to the parameter for the test, then put back."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_follow_the_umask(tmp_path, umask):
    path = tmp_path / "metrics.json"

    files.write_atomically(path, b"{}")

    assert path.read_bytes() == b"{}"
    assert mode(path) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary left


def test_a_replaced_file_takes_the_umask_mode(tmp_path, umask):
    path = tmp_path / "vocabulary.json"
    path.write_bytes(b"old")
    path.chmod(0o600)

    files.write_atomically(path, b"new")

    assert path.read_bytes() == b"new" and mode(path) == 0o666 & ~umask


def test_created_folders_follow_the_umask(tmp_path, umask):
    folder = files.create_folder(tmp_path, ".bundle-")

    assert folder.is_dir() and folder.name.startswith(".bundle-")
    assert mode(folder) == 0o777 & ~umask


def test_a_run_folder_is_readable_under_the_usual_umask(tmp_path):
    old = os.umask(0o027)
    try:
        workdir = train_tiny_run(tmp_path)
    finally:
        os.umask(old)

    for name in ("metrics.json", "vocabulary.json", "history.png", "model.keras"):
        assert mode(workdir / name) == 0o640, name
    assert mode(workdir) == 0o750


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_a_fifo_is_refused_not_replaced(tmp_path):
    fifo = tmp_path / "predictions.csv"
    os.mkfifo(fifo)

    with pytest.raises(ValueError, match=r"is a named pipe \(FIFO\), not a regular file"):
        files.write_atomically(fifo, b"text")

    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]


def test_device_nodes_and_folders_are_refused(tmp_path):
    # Only checked, never written: as root a rename would replace /dev/null.
    with pytest.raises(ValueError, match="/dev/null exists and is a character device"):
        files.refuse_unless_regular(Path("/dev/null"))
    with pytest.raises(ValueError, match="is a folder, not a regular file"):
        files.write_atomically(tmp_path, b"text")
    assert list(tmp_path.iterdir()) == []


def test_regular_files_links_to_them_and_new_paths_are_accepted(tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("old")
    (tmp_path / "link.csv").symlink_to(target)

    for name in ("target.csv", "link.csv", "new.csv"):
        files.refuse_unless_regular(tmp_path / name)  # no error
