"""Labels as a file writes them -> class indices, class names and classes.txt files.

Classes are the distinct training labels, sorted: integers numerically (``2`` before ``10``),
anything else as strings. A classes.txt names integer labels instead: line k names label k
when the smallest label is 1 (AG News ships 1-4), label k - 1 when it is 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_INTEGER = re.compile(r"[+-]?[0-9]+")
# A number with a fraction or exponent: 3.5, 1.0, 2e3. Never a class index.
_FRACTION = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+)")


@dataclass(frozen=True)
class ClassIndex:
    """Raw labels -> class indices, for the training file and any file tested against it.

    Attributes:
        class_names: The classes in index order.
        indices: Each raw label's key (an int for integer labels, else the string) -> index.
        integers: Whether the labels are integers (keys are ints).
    """

    class_names: tuple[str, ...]
    indices: dict
    integers: bool

    def encode(self, labels: Sequence[str], places: Sequence[str]) -> np.ndarray:
        """The class index of every label, or a ValueError naming one never seen in training.

        Args:
            labels: Raw labels, as [`TextRows`][seqnet.data.rows.TextRows] keeps them.
            places: Where each label was, for the error.
        """
        indices = np.empty(len(labels), dtype=np.int32)
        for row, (label, place) in enumerate(zip(labels, places, strict=True)):
            key = _key(label, self.integers)
            if key not in self.indices:
                raise ValueError(
                    f"{place}: label {label!r} is not a class of the training data "
                    f"({', '.join(map(repr, self.class_names))}); a model cannot be tested on "
                    "a class it never saw: fix the label or drop the row."
                )
            indices[row] = self.indices[key]
        return indices


def index_classes(
    labels: Sequence[str], places: Sequence[str], source: str, class_names: str | None = None
) -> ClassIndex:
    """The classes of a training file's labels, named by a classes.txt if given.

    Args:
        labels: The training rows' raw labels.
        places: Where each label was, for errors.
        source: The training file or folder.
        class_names: A classes.txt naming integer labels, or None.

    Raises:
        ValueError: If a label is a fraction (``3.5``), a classes.txt is given for labels
            that are not integers or lacks a label's line, or fewer than two classes occur.
    """
    integers = all(_INTEGER.fullmatch(label) for label in labels)
    if not integers:
        _refuse_fractions(labels, places)
    keys = sorted({_key(label, integers) for label in labels})
    if class_names is not None:
        return _named_classes(keys, integers, labels, places, source, class_names)
    if len(keys) < 2:
        raise ValueError(
            f"{source} has one class only ({labels[0]!r}): a classifier needs at least two; "
            "check --label-column."
        )
    names = tuple(str(key) for key in keys)
    return ClassIndex(names, {key: index for index, key in enumerate(keys)}, integers)


def _key(label: str, integers: bool):
    return int(label) if integers else label


def _refuse_fractions(labels: Sequence[str], places: Sequence[str]) -> None:
    """Labels that are all numbers, some with a fraction, are scores, not classes: refuse."""
    numbers = [_INTEGER.fullmatch(label) or _FRACTION.fullmatch(label) for label in labels]
    if not all(numbers):
        return  # words among them: every label is a class name, "3.5" included
    row = next(i for i, label in enumerate(labels) if not _INTEGER.fullmatch(label))
    raise ValueError(
        f"{places[row]}: label {labels[row]!r} is a fraction, not a class; labels "
        "are class names or integers (a score to predict is a regression, which seqnet does "
        "not train). Round or bin the values into classes."
    )


def _named_classes(
    keys: list, integers: bool, labels: Sequence[str], places, source: str, class_names: str
) -> ClassIndex:
    names = read_class_names(class_names)
    if not integers:
        row = next(i for i, label in enumerate(labels) if not _INTEGER.fullmatch(label))
        raise ValueError(
            f"{places[row]}: label {labels[row]!r} is not an integer, but "
            f"{class_names} names integer labels; drop --class-names for labels that are names."
        )
    first = keys[0]
    if first not in (0, 1):
        raise ValueError(
            f"{source}: the smallest label is {first}; with {class_names} labels count from 0 "
            "or from 1 (line 1 names label 0 or label 1)."
        )
    beyond = [key for key in keys if key - first >= len(names)]
    if beyond:
        raise ValueError(
            f"{source}: label {beyond[0]} has no line in {class_names}, which names "
            f"{len(names)} classes (labels {first}-{first + len(names) - 1})."
        )
    missing = [names[index] for index in range(len(names)) if index + first not in keys]
    if missing:
        raise ValueError(
            f"{source} has no rows of class {missing[0]!r} (label {names.index(missing[0]) + first}"
            f" in {class_names}): a model cannot learn a class it never sees."
        )
    return ClassIndex(names, {key: key - first for key in keys}, True)


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """The class names of a classes.txt: one per line, in index order; blank lines ignored.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If it is not UTF-8, names no class, or names one twice.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No class names file at {path}; pass a classes.txt.")
    data = path.read_bytes()
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}, line {line}: not UTF-8; save the file as UTF-8.") from None
    names = tuple(line.strip() for line in content.splitlines() if line.strip())
    if len(names) < 2:
        raise ValueError(f"{path} names {len(names)} classes; a classifier needs at least two.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{path} names the class {repeated[0]!r} twice; class names must differ.")
    return names
