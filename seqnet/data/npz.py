"""Pre-tokenized IMDB-task arrays from a user's .npz file, read without pickle."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from seqnet.data.checks import check_labels, check_token_ids
from seqnet.data.dataset import Dataset

SPLITS = ("train", "test")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_npz(path: Path, num_words: int, maxlen: int) -> Dataset:
    """Read pre-tokenized arrays without pickle: an .npz file can never run code."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise ValueError(
                    f"{path} lacks the arrays {missing}; an .npz source needs integer arrays "
                    f"named {', '.join(NPZ_KEYS)}."
                )
            arrays = {key: archive[key] for key in NPZ_KEYS}
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise
        raise ValueError(
            f"{path} holds object arrays, which seqnet never unpickles. Pad the sequences and "
            f"save integer arrays instead, e.g. np.savez(path, x_train=keras.utils."
            f"pad_sequences(x_train, maxlen={maxlen}).astype('int32'), "
            f"y_train=np.asarray(y_train, 'int32'), ...)."
        ) from None
    except (OSError, zlib.error, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npz file ({error}).") from None
    splits = {}
    for split in SPLITS:
        x = check_token_ids(arrays[f"x_{split}"], num_words, name=f"x_{split} in {path}")
        y = check_labels(arrays[f"y_{split}"], len(x), name=f"y_{split} in {path}")
        splits[split] = (_fit_length(x, maxlen), y)
    return Dataset(*splits["train"], *splits["test"], vocabulary=None, source=str(path))


def _fit_length(x: np.ndarray, maxlen: int) -> np.ndarray:
    """Pad in front or keep the last ``maxlen`` columns, as pad_sequences would."""
    if x.shape[1] >= maxlen:
        return np.ascontiguousarray(x[:, x.shape[1] - maxlen :])
    return np.pad(x, ((0, 0), (maxlen - x.shape[1], 0)))
