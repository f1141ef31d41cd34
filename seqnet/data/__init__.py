"""Data sets as padded int32 arrays: IMDB in all its forms, and a user's own labelled text.

One module per source: [`imdb`][seqnet.data.imdb] (``keras.datasets.imdb``, the official
archive or its folder, and their cache), [`npz`][seqnet.data.npz] (pre-tokenized arrays),
[`synthetic`][seqnet.data.synthetic] (built in, offline), [`table`][seqnet.data.table] (CSV,
TSV, JSON Lines) and [`class_folders`][seqnet.data.class_folders] (one folder per class).
[`read_dataset`][seqnet.data.read_dataset] picks the reader from the source. NumPy and Keras
utilities only: importing this package never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection
from pathlib import Path

import numpy as np

from seqnet.config import DATA_SOURCES_HELP, DataOptions, ModelConfig, TrainConfig
from seqnet.data import imdb
from seqnet.data.checks import check_labels, check_token_ids
from seqnet.data.dataset import IMDB_CLASS_NAMES, Dataset, ImdbDataset
from seqnet.data.encoding import encode_splits as _encode_splits
from seqnet.data.encoding import encode_splits_reference as _encode_splits_reference
from seqnet.data.imdb import LABELS, MAX_REVIEW_BYTES, SHUFFLE_SEED, SPLITS, _read_raw_text
from seqnet.data.labels import read_class_names
from seqnet.data.npz import NPZ_KEYS, read_npz
from seqnet.data.sizes import check_fit, check_sizes, fitted_sizes
from seqnet.data.synthetic import make_synthetic
from seqnet.data.user_data import is_user_source, read_labelled_file, read_user_data

__all__ = [
    "IMDB_CLASS_NAMES",
    "LABELS",
    "MAX_REVIEW_BYTES",
    "NPZ_KEYS",
    "SHUFFLE_SEED",
    "SPLITS",
    "DataOptions",
    "Dataset",
    "ImdbDataset",
    "check_labels",
    "check_token_ids",
    "default_cache_dir",
    "load_imdb",
    "load_training_data",
    "make_synthetic",
    "read_class_names",
    "read_dataset",
    "read_labelled_file",
]
# Kept importable for code (and tests) of seqnet 0.2 that reached into data.py.
_COMPATIBLE = (_encode_splits, _encode_splits_reference, _read_raw_text)


def load_imdb(
    source: str | os.PathLike = "keras",
    *,
    num_words: int = ModelConfig.vocabulary_size,
    maxlen: int = ModelConfig.sequence_length,
    synthetic_samples: int = TrainConfig.synthetic_samples,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = True,
):
    """Load IMDB as ``(x_train, y_train), (x_test, y_test)``, padded like ``pad_sequences``.

    Args:
        source: ``"keras"`` (``keras.datasets.imdb``, downloads once), ``"synthetic"`` (built
            in, offline), a path to ``aclImdb_v1.tar.gz`` or an extracted ``aclImdb/`` folder,
            or a path to an ``.npz`` file with integer arrays ``x_train``, ``y_train``,
            ``x_test`` and ``y_test``; any other source of
            [`read_dataset`][seqnet.data.read_dataset] works too.
        num_words: Keep word ids below this (Keras' ``num_words``); rarer words become id 2.
        maxlen: Tokens per review: shorter reviews are padded with 0 in front, longer ones
            keep their last ``maxlen`` tokens.
        synthetic_samples: Reviews per split for ``source="synthetic"``.
        cache_dir: Where tokenized archives are cached; defaults to ``$SEQNET_CACHE_DIR`` or
            ``~/.cache/seqnet``.
        verbose: Show a progress bar while reading raw text.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: token ids as int32 arrays of shape
        ``(reviews, maxlen)`` and labels as int32 vectors, 1 for a positive review.

    Raises:
        FileNotFoundError: If ``source`` is a path that does not exist.
        ConnectionError: If ``source="keras"`` cannot download the data set.
        ValueError: If a size is not a positive integer or a file is not a usable data set.

    Examples:
        >>> (x_train, y_train), (x_test, y_test) = load_imdb("synthetic", maxlen=100)
        >>> x_train.shape, x_train.dtype.name
        ((2000, 100), 'int32')
    """
    dataset = read_dataset(
        source,
        num_words=num_words,
        maxlen=maxlen,
        synthetic_samples=synthetic_samples,
        cache_dir=cache_dir,
        verbose=verbose,
    )
    return dataset.splits()


def read_dataset(
    source: str | os.PathLike = "keras",
    *,
    num_words: int = ModelConfig.vocabulary_size,
    maxlen: int = ModelConfig.sequence_length,
    synthetic_samples: int = TrainConfig.synthetic_samples,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = True,
    options: DataOptions = DataOptions(),  # noqa: B008 -- frozen, so one shared default is safe
    seed: int = 0,
    fit: Collection[str] = frozenset(),
) -> Dataset:
    """Read any data source into a [`Dataset`][seqnet.data.Dataset], with its vocabulary.

    Args:
        source: ``"keras"``, ``"synthetic"``, ``aclImdb_v1.tar.gz`` or an ``aclImdb/``
            folder, an ``.npz`` file (all IMDB's task: negative/positive), or a user's own
            labelled text: a ``.csv``, ``.tsv`` or ``.jsonl`` file, or a folder with one
            sub-folder of ``.txt`` files per class (optionally under ``train/`` and ``test/``).
        num_words: Keep word ids below this; rarer words become id 2.
        maxlen: Tokens per text after padding or truncation.
        synthetic_samples: Reviews per split for ``source="synthetic"``.
        cache_dir: Where tokenized IMDB archives are cached; defaults to
            [`default_cache_dir()`][seqnet.data.default_cache_dir].
        verbose: Show progress while reading raw text, and what is held out of user data.
            Refused rows are announced on standard error either way.
        options: For user text: its columns, test data, class names and the shares held out.
        seed: Seeds the hold-outs of user text.
        fit: ModelConfig fields (``"vocabulary_size"``, ``"sequence_length"``) to fit to user
            text's training rows instead of ``num_words`` and ``maxlen`` (see
            [`seqnet.data.sizes`][seqnet.data.sizes]); IMDB sources ignore it. The sizes used
            are in ``report["sizes"]``.

    Returns:
        The arrays, the vocabulary that encoded them (None for .npz data), the class names,
        the validation rows of user text and the reading's report.

    Raises:
        FileNotFoundError: If ``source`` is a path that does not exist.
        ConnectionError: If ``source="keras"`` cannot download the data set.
        ValueError: If a setting is invalid or the source cannot make a data set; one line
            saying what is wrong, where, and what to do.
    """
    check_sizes(num_words=num_words, maxlen=maxlen, synthetic_samples=synthetic_samples)
    fit = check_fit(fit)
    if source in ("keras", "synthetic"):
        dataset = (
            imdb.read_keras(num_words, maxlen)
            if source == "keras"
            else make_synthetic(num_words=num_words, maxlen=maxlen, samples=synthetic_samples)
        )
        return _with_imdb_report(dataset, num_words, maxlen)
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"Data source {str(source)!r} does not exist. Use {DATA_SOURCES_HELP}."
        )
    if path.suffix.lower() == ".npz":
        return _with_imdb_report(read_npz(path, num_words, maxlen), num_words, maxlen)
    if path.is_file() and imdb.is_tar_archive(path) or path.is_dir() and imdb.is_imdb_folder(path):
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        dataset = imdb.read_imdb_raw(path, num_words, maxlen, cache, verbose)
        return _with_imdb_report(dataset, num_words, maxlen)
    if path.is_dir() and (path / "aclImdb").is_dir():
        path = path / "aclImdb"  # an aclImdb/ with more classes than IMDB's: class folders
    if is_user_source(path):
        return read_user_data(
            path,
            num_words=num_words,
            maxlen=maxlen,
            options=options,
            seed=seed,
            fit=fit,
            verbose=verbose,
        )
    raise ValueError(
        f"{path} is neither a tar archive, an .npz, .csv, .tsv or .jsonl file, nor a folder. "
        f"Use {DATA_SOURCES_HELP}."
    )


def load_training_data(config: TrainConfig, *, verbose: bool = True) -> Dataset:
    """Read the data set named by ``config.data``, sized for ``config.model`` (or, for the
    sizes in ``config.fit_to_data``, for the user's texts)."""
    return read_dataset(
        config.data,
        num_words=config.model.vocabulary_size,
        maxlen=config.model.sequence_length,
        synthetic_samples=config.synthetic_samples,
        verbose=verbose,
        options=config.data_options,
        seed=config.seed,
        fit=frozenset(config.fit_to_data),
    )


def default_cache_dir() -> Path:
    """``$SEQNET_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/seqnet`` or ``~/.cache/seqnet``."""
    if "SEQNET_CACHE_DIR" in os.environ:
        return Path(os.environ["SEQNET_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqnet"


def _with_imdb_report(dataset: Dataset, num_words: int, maxlen: int) -> Dataset:
    """The IMDB-task dataset with its report: the source, its classes, their counts, sizes."""
    counts = {
        split: dict(zip(dataset.class_names, np.bincount(y, minlength=2).tolist(), strict=True))
        for split, y in (("train", dataset.y_train), ("test", dataset.y_test))
    }
    *_, sizes = fitted_sizes([], [], frozenset(), num_words=num_words, maxlen=maxlen)
    report = {
        "source": dataset.source,
        "form": "imdb",
        "class_names": list(dataset.class_names),
        "class_counts": counts,
        "sizes": sizes,  # IMDB keeps the sizes given (the lecture's 5,000 and 400): fit ignored
    }
    return dataclasses.replace(dataset, report=report)
