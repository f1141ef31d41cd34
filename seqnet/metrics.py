"""How well a classifier chose between its classes: the numbers `seqnet evaluate` reports.

NumPy only. A precision, recall or F1 whose denominator is zero (a class never predicted, or
absent from the true labels, or both) is 0.0, as scikit-learn's ``zero_division=0`` makes it;
such a class still counts in the macro average, so a class the model never gets right pulls
macro-F1 down rather than dropping out of it. The confusion matrix's rows are the true classes
and its columns the predicted ones, both in ``class_names`` order.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

_NAME_COLUMNS = 40  # longer class names are cut in the text table; the JSON keeps them whole
_NUMBER_COLUMNS = ("precision", "recall", "f1", "support")


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        y_true: ``(n,)`` integer class indices, each in ``[0, num_classes)``.
        y_pred: ``(n,)`` integer class indices, each in ``[0, num_classes)``.
        num_classes: The number of classes, so classes nobody chose still get a row and column.

    Returns:
        ``(num_classes, num_classes)`` int64: entry ``[t, p]`` counts texts of class ``t``
        predicted as ``p``.
    """
    true = _class_indices(y_true, "y_true", num_classes)
    pred = _class_indices(y_pred, "y_pred", num_classes)
    if true.shape != pred.shape:
        raise ValueError(
            f"y_true has {true.size} labels but y_pred {pred.size}; pass one prediction per text."
        )
    pairs = true * num_classes + pred  # one bin per (true, predicted) cell, row-major
    return np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


def classification_report(y_true, y_pred, class_names: Sequence[str]) -> dict:
    """Accuracy, macro- and weighted F1, per-class scores and the confusion matrix, for JSON.

    Args:
        y_true: ``(n,)`` integer true class indices; ``class_names[i]`` names class ``i``.
        y_pred: ``(n,)`` integer predicted class indices (e.g. ``Task.decide``'s output).
        class_names: The class names in index order.

    Returns:
        ``{"accuracy", "macro_f1", "weighted_f1", "samples", "classes", "per_class",
        "confusion_matrix"}``: ``per_class`` holds one ``{"class", "precision", "recall",
        "f1", "support"}`` per class in index order, ``confusion_matrix`` a list of int rows
        (rows true, columns predicted). Every value is a plain Python ``float``, ``int``,
        ``str`` or list.

    Raises:
        ValueError: If the labels are not 1-D integers in range, differ in length, are empty,
            or the class names are missing, not strings, or repeated.
    """
    names = _checked_names(class_names)
    matrix = confusion_matrix(y_true, y_pred, len(names))
    samples = int(matrix.sum())
    if samples == 0:
        raise ValueError("no labels to evaluate: y_true and y_pred are empty.")
    hits = np.diag(matrix)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    precision, recall = _ratio(hits, predicted), _ratio(hits, support)
    f1 = _ratio(2 * hits, support + predicted)  # == 2PR / (P + R), and 0 where both are 0
    per_class = [
        {
            "class": name,
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(s),
        }
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    ]
    return {
        "accuracy": float(hits.sum() / samples),
        "macro_f1": float(f1.mean()),
        "weighted_f1": float((f1 * support).sum() / samples),
        "samples": samples,
        "classes": list(names),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def format_report(report: dict) -> str:
    """``report`` as a plain-text table for a terminal or a log: one row per class.

    Columns are aligned by display width (a CJK character takes two columns, a combining
    accent none), so Cyrillic or Chinese class names line up; names longer than 40 columns
    are cut with ``...``. ASCII spaces and digits only: no colour, no box drawing.

    Args:
        report: A [`classification_report`][seqnet.metrics.classification_report] (or the
            same dict read back from JSON).

    Returns:
        The table, ending with the accuracy and macro-F1 lines, without a final newline.
    """
    names = [_cut(_printable(row["class"]), _NAME_COLUMNS) for row in report["per_class"]]
    width = max(len("class"), *(_display_width(name) for name in names))
    lines = [_pad("class", width) + "".join(f"  {h:>9}" for h in _NUMBER_COLUMNS)]
    for name, row in zip(names, report["per_class"], strict=True):
        scores = "".join(f"  {row[key]:>9.3f}" for key in _NUMBER_COLUMNS[:3])
        lines.append(f"{_pad(name, width)}{scores}  {row['support']:>9d}")
    matrix = report["confusion_matrix"]
    hits = sum(matrix[i][i] for i in range(len(matrix)))
    lines += [
        "",
        f"weighted F1  {report['weighted_f1']:.3f}",
        f"accuracy     {report['accuracy']:.3f}  ({hits} of {report['samples']} texts)",
        f"macro F1     {report['macro_f1']:.3f}",
    ]
    return "\n".join(lines)


def _class_indices(labels, name: str, num_classes: int) -> np.ndarray:
    """``labels`` as a 1-D int64 array, or a ValueError saying what is wrong with them."""
    array = np.asarray(labels)
    if array.size == 0:
        return array.reshape(0).astype(np.int64)  # [] reads as float64; empty is checked later
    if array.ndim != 1:
        raise ValueError(f"{name} has shape {array.shape}; pass one class index per text (n,).")
    if array.dtype.kind not in "iu":
        raise ValueError(
            f"{name} holds {array.dtype} values; pass integer class indices (0 to "
            f"{num_classes - 1}), e.g. Task.decide's output, not scores or names."
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise ValueError(
            f"{name} holds class index {bad}, outside 0 to {num_classes - 1} for "
            f"{num_classes} class names; check the labels match the class names."
        )
    return array.astype(np.int64)


def _checked_names(class_names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(class_names, str):
        raise ValueError(f"class_names is one string {class_names!r}; pass a list of names.")
    names = tuple(class_names)
    if not names:
        raise ValueError("class_names is empty; name each class, class_names[i] for class i.")
    if not all(isinstance(name, str) for name in names):
        raise ValueError(f"class_names must be strings, got {names!r}.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"class_names repeats {repeated!r}; each class needs its own name.")
    return tuple(str(name) for name in names)  # numpy's str_ subclass becomes a plain str


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` element-wise, 0.0 where the denominator is 0."""
    safe = np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, numerator / safe, 0.0)


def _display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK) characters 2, combining marks 0."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _display_width(text))


def _cut(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` display columns, ending in ``...`` if cut."""
    if _display_width(text) <= width:
        return text
    while _display_width(text) > width - 3:
        text = text[:-1]
    return text + "..."


def _printable(text: str) -> str:
    """Tabs, newlines and other control characters as ``?``: each would break the table."""
    return "".join("?" if unicodedata.category(c).startswith("C") else c for c in text)
