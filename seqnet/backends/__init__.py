"""Backend-specific versions of a few seqnet functions, where they are measured much faster.

One module per Keras backend (``torch.py``, ...), each defining some of these functions,
with the signatures of the portable ``keras.ops`` versions in [`seqnet.layers`][seqnet.layers]
that it replaces: ``max_and_first_index(responses)`` and
``window_gradients(inputs, kernel, first, upstream)``, and ``dropout(inputs, rate)`` for
[`BitMaskDropout`][seqnet.layers.BitMaskDropout]. A module is
imported only under its own backend, so importing seqnet imports no other framework.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import keras

# The backends with a module here.
SPECIALIZED = ("torch", "tensorflow")


def for_backend() -> ModuleType | None:
    """This backend's module of replacements, or None where the portable versions are used."""
    backend = keras.backend.backend()
    if backend not in SPECIALIZED:
        return None
    return importlib.import_module(f"{__name__}.{backend}")
