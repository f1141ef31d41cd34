"""Input checks: nothing out of range reaches a backend (ids in the vocabulary, known classes)."""

from __future__ import annotations

import numpy as np

from seqnet.config import OOV_ID


def check_token_ids(
    x, vocabulary_size: int, sequence_length: int | None = None, *, name: str = "token ids"
) -> np.ndarray:
    """Return ``x`` as an int32 ``(batch, length)`` array, or raise ``ValueError`` saying why.

    Backends fail silently on bad ids (JAX returns NaN rows, XLA clamps), so seqnet checks
    dtype, shape and range before any array reaches a model.

    Args:
        x: Token ids, anything ``np.asarray`` turns into a 2-D integer array.
        vocabulary_size: Ids must lie in ``[0, vocabulary_size)``.
        sequence_length: The tokens per text the model expects, or None to accept any.
        name: What ``x`` is called in error messages.

    Returns:
        ``x`` as an int32 array of shape ``(batch, length)``.

    Raises:
        ValueError: If ``x`` is ragged, not integral, not 2-D, empty, of the wrong length or
            holds an id outside the vocabulary.
    """
    try:
        array = np.asarray(x)
    except ValueError:
        raise ValueError(
            f"{name} are ragged; pad them to one length, e.g. keras.utils.pad_sequences(x, "
            f"maxlen={sequence_length or 400})."
        ) from None
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be integers, got dtype {array.dtype}. Token ids come from "
            f"Vocabulary.encode_batch or load_imdb; cast integral values with x.astype('int32')."
        )
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (batch, sequence_length) with batch >= 1, got shape "
            f"{array.shape}; for one text use x[None, :]."
        )
    if sequence_length is not None and array.shape[1] != sequence_length:
        raise ValueError(
            f"{name} have {array.shape[1]} tokens per text, the model expects "
            f"{sequence_length}; pad or truncate with keras.utils.pad_sequences(x, "
            f"maxlen={sequence_length})."
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= vocabulary_size:
        bad = low if low < 0 else high
        raise ValueError(
            f"{name} must lie in [0, {vocabulary_size}) for a vocabulary of {vocabulary_size} "
            f"words, found {bad}. Encode text with the model's own vocabulary, or map rare "
            f"words to the out-of-vocabulary id {OOV_ID}."
        )
    return array.astype(np.int32, copy=False)


def check_labels(y, count: int, *, num_classes: int = 2, name: str = "labels") -> np.ndarray:
    """Return labels as an int32 vector of ``count`` class indices, or raise ``ValueError``.

    Args:
        y: Labels, shape ``(count,)`` or ``(count, 1)``, numbers or booleans.
        count: How many labels there must be (the number of texts).
        num_classes: Labels must lie in ``0 .. num_classes - 1``; 2 for IMDB (0 negative,
            1 positive).
        name: What ``y`` is called in error messages.

    Returns:
        An int32 array of shape ``(count,)``.

    Raises:
        ValueError: If the shape is wrong or a label is not a class index.
    """
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or len(array) != count:
        raise ValueError(f"{name} must be a vector of {count} labels, got shape {array.shape}.")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(
            f"{name} must be numbers 0 to {num_classes - 1} (class indices), got dtype "
            f"{array.dtype}."
        )
    outside = ~np.isin(array, np.arange(num_classes))
    if outside.any():
        allowed = (
            "0 (negative) or 1 (positive)"
            if num_classes == 2
            else (f"a class index 0 to {num_classes - 1}")
        )
        raise ValueError(
            f"{name} must be {allowed}; found {array[outside][0].item()!r} at index "
            f"{int(np.flatnonzero(outside)[0])}."
        )
    return array.astype(np.int32)
