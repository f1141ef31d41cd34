"""Figures people would rather look at than read: training curves and benchmark charts."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

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


def save_figure(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    write_atomically(Path(path), buffer.getvalue())
