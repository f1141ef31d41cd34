"""Labelled text as folders: one sub-folder per class, one text per ``.txt`` file.

The layout of ``keras.utils.text_dataset_from_directory``: ``FOLDER/CLASS/*.txt`` (files in
nested folders count for their class), or ``FOLDER/train/CLASS/*.txt`` with an optional
``FOLDER/test/CLASS/*.txt``, which then serves as the test data. A class is named by its folder.
An aclImdb folder with exactly IMDB's classes (pos, neg) is read by
[`seqnet.data.imdb`][seqnet.data.imdb] instead; one with more class folders (say ``neu/``) is a
class-folder data set, every class folder a class (``train/unsup/`` too, if present). Links are
never followed and files that are not ``.txt`` are not read: both are counted as refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from seqnet.data.rows import TextRows
from seqnet.data.table import decode_file

# One text per file: a file far beyond this is a corpus put in the wrong place.
MAX_TEXT_BYTES = 1 << 20
SPLIT_FOLDERS = ("train", "test")
LAYOUT = "FOLDER/CLASS/*.txt, or FOLDER/train/CLASS/*.txt and FOLDER/test/CLASS/*.txt"


def read_class_folders(path: Path) -> tuple[TextRows, TextRows | None]:
    """The training texts of a class-folder data set, and its test texts if it has a test/.

    Raises:
        ValueError: If the folder has no class folders (listing what it holds), a class
            folder has no .txt file, a file is not UTF-8, or every text is empty.
    """
    train_folder = path / "train"
    if train_folder.is_dir() and _class_folders(train_folder):
        test_folder = path / "test"
        test = read_classes(test_folder) if test_folder.is_dir() else None
        return read_classes(train_folder), test
    return read_classes(path), None


def read_classes(folder: Path) -> TextRows:
    """Every ``.txt`` file under each class folder of ``folder``, labelled by the folder."""
    classes = _class_folders(folder)
    if not classes:
        held = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in os.scandir(folder))
        shown = ", ".join(held[:10]) + (", ..." if len(held) > 10 else "") or "nothing"
        raise ValueError(
            f"{folder} has no class folders (it holds {shown}); expected {LAYOUT}. For a table "
            "pass the file itself, e.g. --data train.csv --test-data test.csv."
        )
    rows = TextRows(str(folder))
    for class_folder in classes:
        if not _read_class(class_folder, rows):
            raise ValueError(
                f"class folder {class_folder} holds no .txt files; each class folder holds "
                "one text per .txt file (UTF-8)."
            )
    rows.check_not_empty()
    return rows


def _class_folders(folder: Path) -> list[Path]:
    """The sub-folders of ``folder``, sorted by name; links to folders are not classes."""
    entries = [entry for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False)]
    return [Path(entry.path) for entry in sorted(entries, key=lambda entry: entry.name)]


def _read_class(class_folder: Path, rows: TextRows) -> int:
    """Add each text file of one class folder (nested folders included) to ``rows``; count them."""
    label, texts = class_folder.name, 0
    for root, folders, files in os.walk(class_folder):
        folders.sort()  # os.walk descends in this order: the same rows on every system
        for name in sorted(files):
            file = Path(root) / name
            if file.is_symlink():
                rows.refuse("link, not followed", str(file))
            elif file.suffix != ".txt":
                rows.refuse("not a .txt file", str(file))
            else:
                rows.add(_read_text(file), label, str(file))
                texts += 1
        for name in folders:
            if (Path(root) / name).is_symlink():
                rows.refuse("link, not followed", str(Path(root) / name))
    return texts


def _read_text(file: Path) -> str:
    size = file.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise ValueError(
            f"{file} is {size:,} bytes, more than the {MAX_TEXT_BYTES:,} one text can be; a "
            "class folder holds one text per .txt file."
        )
    return decode_file(file)
