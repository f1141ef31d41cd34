"""Figures people would rather look at than read: training curves, confusion matrices and
benchmark charts.

Text is drawn in matplotlib's default DejaVu Sans, which ships with matplotlib and covers Latin,
Greek and Cyrillic class names; scripts it lacks (e.g. Chinese) need a font that has them set
in matplotlib's rcParams.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # the object API: no pyplot state, no GUI backend

from seqnet.files import write_atomically


def plot_history(epochs: Sequence[dict], path: Path) -> None:
    """Loss and accuracy per epoch, training beside test, as a PNG at ``path``."""
    numbers = [epoch["epoch"] for epoch in epochs]
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    for axes, metric in zip(figure.subplots(1, 2), ("loss", "accuracy"), strict=True):
        axes.plot(numbers, [e[metric] for e in epochs], marker="o", label="train")
        if f"val_{metric}" in epochs[0]:
            axes.plot(numbers, [e[f"val_{metric}"] for e in epochs], marker="o", label="test")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.set_xticks(numbers)
        axes.set_title(f"{metric} per epoch")
        axes.grid(alpha=0.3)
        axes.legend()
    save_figure(figure, path)


def plot_confusion_matrix(report: dict, path: Path) -> None:
    """A classification report's confusion matrix as a PNG at ``path``, read at a glance.

    Each cell shows its count and its share of the true class's texts (its row), and is
    coloured by that share, so a class the model confuses stands out whatever its size. The
    title gives accuracy and macro-F1. Sized for 2 to about 20 classes; long class names are
    cut and the predicted-class names turned to fit.

    Args:
        report: A [`classification_report`][seqnet.metrics.classification_report] (or the
            same dict read back from JSON).
        path: The PNG to write, atomically: a failure leaves no half-written file.

    Raises:
        ValueError: If the report's confusion matrix is not square with one row per class.
    """
    names = [_short(name) for name in report["classes"]]
    counts = np.asarray(report["confusion_matrix"], dtype=np.int64)
    if counts.shape != (len(names), len(names)):
        raise ValueError(
            f"the report's confusion matrix has shape {counts.shape} for {len(names)} classes; "
            "pass a report made by seqnet.metrics.classification_report."
        )
    totals = counts.sum(axis=1, keepdims=True)  # (k, 1): texts per true class
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    side = min(4.0 + 0.55 * len(names), 16.0)  # inches: about 0.55 per cell, room for names
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    _label_cells(axes, counts, shares)
    _name_axes(axes, names)
    figure.colorbar(image, ax=axes, shrink=0.8, label="share of the true class's texts")
    axes.set_title(
        f"Confusion matrix: accuracy {report['accuracy']:.1%}, macro-F1 "
        f"{report['macro_f1']:.3f}\n{report['samples']:,} texts, {len(names)} classes"
    )
    save_figure(figure, path)


def _label_cells(axes, counts: np.ndarray, shares: np.ndarray) -> None:
    """Write each cell's count over its row share: white on dark cells, grey for an empty one."""
    size = 10 if len(counts) <= 8 else 8 if len(counts) <= 14 else 7
    for (row, column), count in np.ndenumerate(counts):
        share = shares[row, column]
        if count == 0:  # a bare grey 0 keeps the eye on the cells that hold texts
            axes.text(column, row, "0", ha="center", va="center", color="0.6", fontsize=size)
            continue
        percent = "<1%" if share < 0.005 else f"{share:.0%}"  # never "0%" for some texts
        colour = "white" if share > 0.55 else "black"
        axes.text(
            column,
            row,
            f"{count:,}\n{percent}",
            ha="center",
            va="center",
            color=colour,
            fontsize=size,
        )


def _name_axes(axes, names: list[str]) -> None:
    """Class names on both axes: the predicted ones along the bottom, turned if long."""
    ticks = range(len(names))
    turned = len(names) > 6 or max(len(name) for name in names) > 8
    axes.set_xticks(ticks, names, rotation=45 if turned else 0, ha="right" if turned else "center")
    if turned:  # anchor each turned name at its tick, not at its centre
        for label in axes.get_xticklabels():
            label.set_rotation_mode("anchor")
    axes.set_yticks(ticks, names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.tick_params(length=0)
    # Thin white lines between cells, so neighbouring cells of a similar shade stay apart.
    axes.set_xticks(np.arange(len(names) + 1) - 0.5, minor=True)
    axes.set_yticks(np.arange(len(names) + 1) - 0.5, minor=True)
    axes.grid(which="minor", color="white", linewidth=1.5)
    axes.tick_params(which="minor", length=0)
    axes.spines[:].set_visible(False)


def _short(name: str, limit: int = 24) -> str:
    """A class name cut to ``limit`` characters for an axis; the report keeps it whole."""
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def save_figure(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    write_atomically(Path(path), buffer.getvalue())
