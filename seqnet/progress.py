"""How seqnet shows progress: live on a terminal, plain lines anywhere else.

A live display redraws its line with carriage returns, backspaces and ANSI colours, which a
log file keeps as clutter. [`is_live`][seqnet.progress.is_live] is the one rule for when that
is welcome: on a terminal, unless ``NO_COLOR`` is set (https://no-color.org). Elsewhere every
display here writes whole lines only.

``keras.utils.Progbar`` writes to standard output, where it would mix with the predictions
``seqnet predict`` prints, so [`ProgressBar`][seqnet.progress.ProgressBar] can draw on
standard error instead.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

import keras

# Fewer batches than this finish too fast for a bar to tell anyone anything.
MIN_BATCHES = 4


def is_live(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default ``sys.stdout``) may show a display redrawn in place.

    Args:
        stream: Where the display would go.

    Returns:
        True if ``stream`` is a terminal and ``NO_COLOR`` is unset or empty.
    """
    stream = stream if stream is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")


def wants_progress(requested: bool | None, batches: int, stream: TextIO | None = None) -> bool:
    """Whether to show a progress bar.

    Args:
        requested: True or False to force it on or off (``--progress``, ``--no-progress``);
            None to decide here.
        batches: The batches the work takes.
        stream: Where the bar would go (default ``sys.stderr``).

    Returns:
        ``requested`` if given, else whether the work takes at least ``MIN_BATCHES`` batches
        and ``stream`` is live (see [`is_live`][seqnet.progress.is_live]): a bar that cannot
        redraw itself only clutters a log file.
    """
    if requested is not None:
        return requested
    return batches >= MIN_BATCHES and is_live(stream if stream is not None else sys.stderr)


class ProgressBar:
    """``  768/1,000 reviews [######################--------]  77%``, redrawn in place.

    Where the stream is not live (see [`is_live`][seqnet.progress.is_live]) the bar becomes
    plain lines, one each time another quarter of the work is done (``250/1,000 reviews
    (25%)``); with no total, [`close`][seqnet.progress.ProgressBar.close] writes the final
    count. Either way the bar's line starts on a line of its own and ends with a line break,
    so no other output is glued to it.

    Args:
        total: The count that means done; None if unknown, which shows the count only.
        unit: What is counted.
        stream: Where to draw (default ``sys.stderr``).
        width: Characters in the bar itself.
        shown: False to draw nothing at all (a caller's ``verbose=False``).
    """

    def __init__(
        self,
        total: int | None,
        unit: str = "reviews",
        stream: TextIO | None = None,
        width: int = 30,
        *,
        shown: bool = True,
    ) -> None:
        self.total, self.unit, self.width, self.shown = total, unit, width, shown
        self.stream = stream if stream is not None else sys.stderr
        self.live = shown and is_live(self.stream)
        self.done = 0
        self._written = None  # the plain line last written, not to write it twice

    def update(self, count: int) -> None:
        """Add ``count`` to the work done and, on a live stream, redraw the bar."""
        self.advance_to(self.done + count)

    def advance_to(self, done: int) -> None:
        """Set the work done to ``done`` and, on a live stream, redraw the bar."""
        before, self.done = self.done, done if self.total is None else min(done, self.total)
        if self.live:
            self.stream.write(f"\r{self._line()}")
            self.stream.flush()
        elif self.shown and self.total and self._quarter(self.done) > self._quarter(before):
            self._write_plain()

    def close(self) -> None:
        """End the bar's line (plain: write the count unless just written), so later output
        starts on a fresh line."""
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
        elif self.shown and self._written != self._line():
            self._write_plain()

    def _quarter(self, done: int) -> int:
        return 4 * done // max(self.total or 1, 1)

    def _write_plain(self) -> None:
        self._written = self._line()
        self.stream.write(f"{self._written}\n")
        self.stream.flush()

    def _line(self) -> str:
        if self.total is None:
            return f"{self.done:,} {self.unit}"
        count = f"{self.done:,}/{self.total:,} {self.unit}"
        percent = 100 * self.done // max(self.total, 1)
        if not self.live:  # a log keeps the count; a bar of # tells it nothing more
            return f"{count} ({percent}%)"
        filled = self.width * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (self.width - filled)
        return f"{count} [{bar}] {percent:3d}%"


def notice(message: str, stream: TextIO | None = None) -> None:
    """Write one line of progress news, e.g. what a silent step is about to do.

    Args:
        message: The line, without its line break.
        stream: Where to write (default ``sys.stdout``, beside Keras' epoch lines).
    """
    stream = stream if stream is not None else sys.stdout
    stream.write(f"{message}\n")
    stream.flush()


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras' epoch display for a run trained one ``fit`` call per epoch.

    Each ``fit`` spans one epoch only (``initial_epoch=k, epochs=k + 1``), so Keras' own
    logger would title it "Epoch k+1/k+1", and omit the title of the first. This one titles
    every epoch "Epoch k/N" with the run's ``N``. On a live standard output it shows Keras'
    bar; elsewhere one plain line per epoch with its metrics (Keras' ``verbose=2``).

    Args:
        epochs: The run's epochs in all, the ``N``.
    """

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params):
        super().set_params(params)
        # fit adds no logger of its own here (verbose=0), so its verbose says nothing.
        self.verbose = 1 if is_live(sys.stdout) else 2
        self.epochs = self.run_epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        notice(f"Epoch {epoch + 1}/{self.epochs}")
