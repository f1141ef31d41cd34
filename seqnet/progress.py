"""A minimal progress bar on standard error, for commands whose standard output is data.

``keras.utils.Progbar`` writes to standard output, where it would mix with the predictions
``seqnet predict`` prints, so seqnet draws its own bar on standard error.
"""

from __future__ import annotations

import sys
from typing import TextIO

# Fewer batches than this finish too fast for a bar to tell anyone anything.
MIN_BATCHES = 4


def wants_progress(requested: bool | None, batches: int, stream: TextIO | None = None) -> bool:
    """Whether to show a progress bar.

    Args:
        requested: True or False to force it on or off (``--progress``, ``--no-progress``);
            None to decide here.
        batches: The batches the work takes.
        stream: Where the bar would go (default ``sys.stderr``).

    Returns:
        ``requested`` if given, else whether the work takes at least ``MIN_BATCHES`` batches
        and ``stream`` is a terminal (a bar's carriage returns only clutter a log file).
    """
    if requested is not None:
        return requested
    stream = stream if stream is not None else sys.stderr
    return batches >= MIN_BATCHES and stream.isatty()


class ProgressBar:
    """``  768/1,000 reviews [######################--------]  77%``, redrawn in place.

    Args:
        total: The count that means done.
        unit: What is counted.
        stream: Where to draw (default ``sys.stderr``).
        width: Characters in the bar itself.
    """

    def __init__(
        self, total: int, unit: str = "reviews", stream: TextIO | None = None, width: int = 30
    ) -> None:
        self.total, self.unit, self.width = total, unit, width
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0

    def update(self, count: int) -> None:
        """Add ``count`` to the work done and redraw the bar."""
        self.done = min(self.done + count, self.total)
        filled = self.width * self.done // max(self.total, 1)
        percent = 100 * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.done:,}/{self.total:,} {self.unit} [{bar}] {percent:3d}%"
        self.stream.write(f"\r{line}")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line, so later output starts on a fresh one."""
        self.stream.write("\n")
        self.stream.flush()
