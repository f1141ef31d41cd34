"""What a user-data reader hands on: the texts and raw labels it kept, and what it refused why."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from seqnet.progress import notice

# Line numbers (or file names) kept per refusal reason in the report: enough to find the rows.
FIRST_REFUSED = 5
EMPTY_TEXT = "empty text"
EMPTY_LABEL = "empty label"


@dataclass
class TextRows:
    """The rows of one file or folder, as read: texts, their raw labels and where they were.

    Attributes:
        source: The file or folder read.
        texts: Each kept row's text, its text columns joined with one space.
        labels: Each kept row's label as written in the file (a string; JSON integers as
            their digits), stripped of surrounding white space.
        places: Where each kept row was: ``"train.csv:12"`` (file and line) for a table, the
            text file for a class folder.
        read: Rows read, kept or not.
        refused: Per reason, the places of the rows refused for it.
    """

    source: str
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    read: int = 0
    refused: dict[str, list[str]] = field(default_factory=dict)

    def add(self, text: str, label: str, place: str) -> None:
        """Keep the row, or refuse it if its text or label is empty after stripping."""
        self.read += 1
        if not text.strip():
            self.refuse(EMPTY_TEXT, place, counted=True)
        elif not label:
            self.refuse(EMPTY_LABEL, place, counted=True)
        else:
            self.texts.append(text)
            self.labels.append(label)
            self.places.append(place)

    def refuse(self, reason: str, place: str, *, counted: bool = False) -> None:
        """Count a refused row; ``counted`` if ``read`` already includes it."""
        if not counted:
            self.read += 1
        self.refused.setdefault(reason, []).append(place)

    def report(self) -> dict:
        """Rows read, kept and refused (a count and the first places per reason), for JSON."""
        return {
            "source": self.source,
            "rows_read": self.read,
            "rows_kept": len(self.texts),
            "rows_refused": {
                reason: {"count": len(places), "first": places[:FIRST_REFUSED]}
                for reason, places in self.refused.items()
            },
        }

    def check_not_empty(self) -> None:
        """Raise if no row was kept: every row refused (say why), or none at all."""
        if self.texts:
            return
        if not self.read:
            raise ValueError(f"{self.source} holds no rows: nothing to train or test on.")
        raise ValueError(
            f"{self.source}: all {self.read} rows were refused ({self.refusals()}); check "
            "--text-column and --label-column."
        )

    def refusals(self) -> str:
        """E.g. ``"2 empty text (a.csv:4, a.csv:9); 1 empty label (a.csv:7)"``."""
        parts = []
        for reason, places in self.refused.items():
            shown = ", ".join(places[:FIRST_REFUSED]) + (
                ", ..." if len(places) > FIRST_REFUSED else ""
            )
            parts.append(f"{len(places)} {reason} ({shown})")
        return "; ".join(parts)

    def announce(self) -> None:
        """One line on standard error if any row was refused: nothing is dropped silently."""
        if self.refused:
            notice(
                f"{self.source}: read {self.read} rows, kept {len(self.texts)}, refused "
                f"{self.read - len(self.texts)}: {self.refusals()}",
                sys.stderr,
            )
