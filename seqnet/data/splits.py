"""Seeded, stratified hold-outs: the test share and the validation share of the training rows.

Each class gives its own share (rounded, at least one row, never all of them), so a rare class
is in every part and the parts keep the data's class balance. The same labels, share and seed
always pick the same rows; rows keep their file order within each part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Mixed with the seed so the test and the validation hold-outs draw independently.
TEST_STREAM = 1
VALIDATION_STREAM = 2


def rows_needed(hold_out_test: bool, validation_share: float) -> int:
    """Rows a class needs: one to train on, plus one per part held out of it."""
    return 1 + int(hold_out_test) + int(validation_share > 0)


def check_class_counts(
    y: np.ndarray, class_names: Sequence[str], needed: int, source: str, parts: str
) -> None:
    """Raise if a class has fewer rows than the hold-outs need, naming it and its count.

    Args:
        y: Class indices of the training rows.
        class_names: The classes in index order.
        needed: Rows each class needs ([`rows_needed`][seqnet.data.splits.rows_needed]).
        source: The training file or folder.
        parts: What is held out, e.g. ``"a test row and a validation row"``.
    """
    counts = np.bincount(y, minlength=len(class_names))
    rarest = int(np.argmin(counts))  # ties: the first in class order
    if counts[rarest] < needed:
        raise ValueError(
            f"{source}: class {class_names[rarest]!r} has {counts[rarest]} "
            f"row{'s' if counts[rarest] != 1 else ''}, too few to hold out {parts} and keep one "
            f"to train on; each class needs at least {needed}. Add rows of that class, drop "
            "it, or pass separate test data (--test-data)."
        )


def stratified_holdout(
    y: np.ndarray, share: float, seed: int, stream: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the rows kept and of the rows held out, each class giving ``share``.

    Args:
        y: Class indices; every class present needs at least 2 rows.
        share: Fraction of each class held out (rounded; at least 1, never all).
        seed: The run's seed.
        stream: ``TEST_STREAM`` or ``VALIDATION_STREAM``.

    Returns:
        ``(kept, held_out)``: sorted int64 index arrays that together cover ``y``.
    """
    rng = np.random.default_rng([seed, stream])
    held = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        count = min(max(round(share * len(rows)), 1), len(rows) - 1)
        held.append(rng.permutation(rows)[:count])
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    kept = np.setdiff1d(np.arange(len(y)), held_out)
    return kept, held_out
