"""File writing that never leaves a half-written file where a good one was.

Files and folders are created with modes 0666 and 0777 less the umask, as any other tool's
output is: ``tempfile.mkstemp`` and ``mkdtemp`` would make them 0600 and 0700, which a
renamed-into-place result keeps, so a run or bundle could not be shared or published.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

_ATTEMPTS = 100  # random names tried before giving up; a clash needs 2**32 names in use
_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
    stat.S_IFLNK: "a symbolic link",
}


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    Args:
        path: The file to write; its folder is created if missing.
        data: The file's whole content.

    Raises:
        ValueError: If ``path`` exists and is not a regular file (a folder, FIFO, device...),
            which a rename would replace or a reader would block on.
    """
    refuse_unless_regular(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = create_file(path.parent, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def refuse_unless_regular(path: Path) -> None:
    """Raise unless ``path`` is missing or a regular file (through a link, the file it names).

    Args:
        path: A file about to be replaced.

    Raises:
        ValueError: Naming what ``path`` is, e.g. a FIFO or ``/dev/null``'s character device.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise ValueError(f"cannot check {path}: {error.strerror or error}.") from None
    if not stat.S_ISREG(mode):
        raise ValueError(
            f"{path} exists and is {describe(mode)}, not a regular file; name a new file "
            "or a regular one to replace."
        )


def describe(mode: int) -> str:
    """What a ``st_mode`` says a path is, in words ("a named pipe (FIFO)", "a folder")."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def create_file(folder: Path, prefix: str, suffix: str = "") -> tuple[int, Path]:
    """Create a new, empty file with a random name in ``folder``, mode 0666 less the umask.

    Args:
        folder: An existing folder.
        prefix: The name's start, e.g. ``".metrics.json."``.
        suffix: The name's end.

    Returns:
        An open, writable descriptor and the file's path.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_ATTEMPTS):
        path = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(path, flags, 0o666), path  # the kernel applies the umask
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder} after {_ATTEMPTS} tries")


def create_folder(parent: Path, prefix: str) -> Path:
    """Create a new, empty folder with a random name in ``parent``, mode 0777 less the umask.

    Args:
        parent: An existing folder.
        prefix: The name's start; a random hexadecimal part follows it.

    Returns:
        The folder's path.
    """
    for _ in range(_ATTEMPTS):
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {parent} after {_ATTEMPTS} tries")
