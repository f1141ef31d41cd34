"""seqnet 0.2's name for [`seqnet.text_tables`][seqnet.text_tables], from when every text it
read was a movie review. Its names still work, each with a DeprecationWarning naming its new
home; new code imports ``seqnet.text_tables``."""

from __future__ import annotations

import warnings

from seqnet import text_tables

# The seqnet 0.2 names that changed with the module; every other name is the same.
_RENAMED = {"ReviewTable": "TextTable", "read_reviews": "read_texts"}


def __getattr__(name: str):
    new_name = _RENAMED.get(name, name)
    if name.startswith("_") or not hasattr(text_tables, new_name):
        raise AttributeError(f"module 'seqnet.reviews' has no attribute {name!r}")
    warnings.warn(
        f"seqnet.reviews.{name} is now seqnet.text_tables.{new_name}; import it from there.",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(text_tables, new_name)
