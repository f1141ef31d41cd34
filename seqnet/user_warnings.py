"""Warnings that point at the user's code, however deep in seqnet they are raised.

``warnings.warn(..., stacklevel=n)`` names the frame ``n`` calls up, which is right for one
path to the warning and wrong for the others: IMDB's undecodable-bytes warning is 3 frames
below ``read_imdb_texts`` and 6 below ``read_dataset``. ``warn``
walks up to the first frame outside seqnet instead, so a warning names the line of the
caller's script or notebook that led to it, and Python's once-per-location filters count
that line. (Python 3.12's ``skip_file_prefixes`` does the same; seqnet supports 3.11.)
"""

from __future__ import annotations

import sys
import warnings


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)``, attributed to the first caller outside seqnet.

    Args:
        message: The warning's text.
        category: Its class, e.g. ``UserWarning`` or one of seqnet's subclasses.
    """
    frame = sys._getframe(1)
    while frame.f_back is not None and _in_seqnet(frame):
        frame = frame.f_back
    # No module_globals, as warnings.warn passes none: a loader asked for a source line by
    # module name fails for `python -m seqnet`'s __main__. linecache reads it by file name.
    warnings.warn_explicit(
        message,
        category,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=frame.f_globals.get("__name__", "<unknown>"),
        registry=frame.f_globals.setdefault("__warningregistry__", {}),
    )


def _in_seqnet(frame) -> bool:
    """Whether ``frame`` runs code of the seqnet package (its tests and benchmarks are not)."""
    return frame.f_globals.get("__name__", "").partition(".")[0] == "seqnet"
