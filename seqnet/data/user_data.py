"""A user's labelled text -> a Dataset: read, index the classes, hold out, fit sizes, encode.

The steps every user source (table files and class folders) shares, in order:

1. read the training rows (and the test rows of ``--test-data`` or a ``test/`` folder),
   refusing and counting rows with an empty text or label;
2. the classes are the training labels ([`seqnet.data.labels`][seqnet.data.labels]); a test
   label never seen in training is an error;
3. without test data a seeded, stratified ``test_share`` of the training rows becomes the test
   split; then ``validation_share`` of the rest becomes the per-epoch validation rows, so
   per-epoch validation never looks at the test rows;
4. sizes named in ``fit`` are fitted to the rows trained on
   ([`seqnet.data.sizes`][seqnet.data.sizes]);
5. the vocabulary is built from the rows trained on only (neither validation nor test rows):
   validation then measures what test measures, words unseen in training included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np

import seqnet.data.encoding as encoding  # the modules themselves, not the package: no cycle
import seqnet.data.splits as splits
from seqnet.config import DataOptions
from seqnet.data.class_folders import read_class_folders, read_classes
from seqnet.data.dataset import Dataset
from seqnet.data.labels import ClassIndex, index_classes
from seqnet.data.rows import TextRows
from seqnet.data.sizes import check_sizes, fitted_sizes
from seqnet.data.table import TABLE_SUFFIXES, read_table
from seqnet.progress import notice
from seqnet.text import Vocabulary

VOCABULARY_RULE = "built from the rows trained on only (not the validation or test rows)"


def is_user_source(path: Path) -> bool:
    """Whether ``path`` is a table file (by suffix) or a folder: the user-text forms."""
    return path.is_dir() or path.suffix.lower() in TABLE_SUFFIXES


def read_user_data(
    path: Path,
    *,
    num_words: int,
    maxlen: int,
    options: DataOptions,
    seed: int,
    fit: Collection[str],
    verbose: bool,
) -> Dataset:
    """Read a table file or class folder (and its test data) into padded, encoded splits.

    Args:
        path: A .csv, .tsv or .jsonl file, or a folder of class folders.
        num_words: The vocabulary size, unless fitted.
        maxlen: Tokens per text, unless fitted.
        options: Columns, test data, class names and the shares to hold out.
        seed: Seeds the hold-outs.
        fit: ModelConfig fields to fit to the training texts.
        verbose: Say what is held out, and show progress while tokenizing.

    Raises:
        ValueError: For any input that cannot make a classification data set, with one line
            saying what and where.
    """
    train_rows, test_rows = _read_rows(path, options)
    for rows in (train_rows, test_rows):
        if rows is not None:
            rows.announce()
    index = index_classes(train_rows.labels, train_rows.places, str(path), options.class_names)
    y = index.encode(train_rows.labels, train_rows.places)
    parts, report = _hold_out(y, index, train_rows, test_rows, options, seed, verbose)
    texts = {name: [train_rows.texts[i] for i in rows] for name, rows in parts.items()}
    y_parts = {name: y[rows] for name, rows in parts.items()}
    if test_rows is not None:
        texts["test"] = test_rows.texts
        y_parts["test"] = index.encode(test_rows.labels, test_rows.places)
    num_words, maxlen, sizes = _sizes(texts["train"], fit, num_words, maxlen, verbose)
    vocabulary, x = encoding.encode_splits(texts, num_words, maxlen, verbose)
    report.update(
        _describe(path, options, index, train_rows, test_rows),
        class_counts={
            name: dict(
                zip(
                    index.class_names,
                    np.bincount(labels, minlength=len(index.class_names)).tolist(),
                    strict=True,
                )
            )
            for name, labels in y_parts.items()
        },
        vocabulary=VOCABULARY_RULE,
        sizes=sizes,
    )
    return Dataset(
        x_train=x["train"],
        y_train=y_parts["train"],
        x_test=x["test"],
        y_test=y_parts["test"],
        vocabulary=vocabulary,
        source=str(path),
        class_names=index.class_names,
        x_validation=x["validation"],
        y_validation=y_parts["validation"],
        report=report,
    )


def _read_rows(path: Path, options: DataOptions) -> tuple[TextRows, TextRows | None]:
    """The training rows and the test rows, if there is test data."""
    if path.is_dir():
        train_rows, test_rows = read_class_folders(path)
    else:
        train_rows, test_rows = read_table(path, options), None
    if options.test_data is None:
        return train_rows, test_rows
    if test_rows is not None:
        raise ValueError(
            f"{path} has its own test/ folder and --test-data names {options.test_data}; "
            "pass one of the two."
        )
    test_path = Path(options.test_data).expanduser()
    if not test_path.exists():
        raise FileNotFoundError(f"Test data {options.test_data!r} does not exist.")
    if test_path.is_dir():
        return train_rows, read_classes(test_path)
    if test_path.suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(
            f"test data {test_path} is neither a .csv, .tsv or .jsonl file nor a folder of "
            "class folders."
        )
    return train_rows, read_table(test_path, options)


def _hold_out(
    y: np.ndarray,
    index: ClassIndex,
    train_rows: TextRows,
    test_rows: TextRows | None,
    options: DataOptions,
    seed: int,
    verbose: bool,
) -> tuple[dict[str, np.ndarray], dict]:
    """Row indices of the train, validation (and test) parts, and how they were drawn."""
    hold_test = test_rows is None
    held = [
        name
        for name, wanted in (
            ("a test row", hold_test),
            ("a validation row", options.validation_share > 0),
        )
        if wanted
    ]
    needed = splits.rows_needed(hold_test, options.validation_share)
    splits.check_class_counts(y, index.class_names, needed, train_rows.source, " and ".join(held))
    rows = np.arange(len(y))
    parts, report = {}, {}
    if hold_test:
        kept, test = splits.stratified_holdout(y, options.test_share, seed, splits.TEST_STREAM)
        rows, parts["test"] = kept, test
        report["test_split"] = _share(train_rows.source, options.test_share, seed)
    else:
        report["test_split"] = {"from": test_rows.source}
    validation = np.zeros(0, dtype=np.int64)
    if options.validation_share > 0:
        kept, held_rows = splits.stratified_holdout(
            y[rows], options.validation_share, seed, splits.VALIDATION_STREAM
        )
        rows, validation = rows[kept], rows[held_rows]
    report["validation_split"] = _share(train_rows.source, options.validation_share, seed)
    parts["train"], parts["validation"] = rows, validation
    if verbose:
        notice(_held_out_line(report, train_rows.source))
    return parts, report


def _share(source: str, share: float, seed: int) -> dict:
    return {"from": source, "share": share, "seed": seed, "stratified": True}


def _held_out_line(report: dict, source: str) -> str:
    test, validation = report["test_split"], report["validation_split"]
    first = (
        f"test rows: {test['share']:.0%} of each class of {source} (seed {test['seed']})"
        if "share" in test
        else f"test rows: {test['from']}"
    )
    if not validation["share"]:
        return f"{first}; no validation rows"
    return f"{first}; validation rows: {validation['share']:.0%} of each class of the rest"


def _sizes(
    texts: list[str], fit: Collection[str], num_words: int, maxlen: int, verbose: bool
) -> tuple[int, int, dict]:
    """The sizes to encode with: fitted to the training texts where ``fit`` asks."""
    if not fit:
        return fitted_sizes([], [], fit, num_words=num_words, maxlen=maxlen)
    tokens = encoding.tokenize_all(texts, "train", verbose)
    words = Counter(token for text in tokens for token in text)
    num_words, maxlen, report = fitted_sizes(
        [len(text) for text in tokens],
        list(words.values()),
        fit,
        num_words=num_words,
        maxlen=maxlen,
    )
    check_sizes(num_words=num_words, maxlen=maxlen)
    return num_words, maxlen, report


def _describe(
    path: Path, options: DataOptions, index: ClassIndex, train: TextRows, test: TextRows | None
) -> dict:
    """The report's account of the source: its form, columns, classes and rows read."""
    form = "class folders" if path.is_dir() else TABLE_SUFFIXES[path.suffix.lower()]
    described = {"source": str(path), "form": form, "class_names": list(index.class_names)}
    # Each class's label as the file writes it, so that other files can be scored alike.
    keys = sorted(index.indices, key=index.indices.__getitem__)
    described["labels"] = {
        name: str(key) for name, key in zip(index.class_names, keys, strict=True)
    }
    if not path.is_dir():
        described.update(text_columns=list(options.text_columns), label_column=options.label_column)
    described["read"] = {"train": train.report()}
    if test is not None:
        described["read"]["test"] = test.report()
    return described


def read_labelled_file(
    source: str | Path,
    *,
    vocabulary: Vocabulary,
    labels: Mapping[str, str],
    maxlen: int,
    options: DataOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """Every row of a labelled table or class folder (a folder's ``test/`` if it has one),
    encoded with a trained run's vocabulary and classes, to score the run on it.

    Args:
        source: A .csv, .tsv or .jsonl file, or a folder of class folders.
        vocabulary: The run's vocabulary.
        labels: The run's classes in index order, each with its label as the training data
            wrote it (``report["labels"]``); a row's label may be either.
        maxlen: The run's sequence length.
        options: The columns to read.

    Returns:
        ``(x, y)``: padded token ids and class indices.

    Raises:
        ValueError: For a label that is none of the run's classes (named), or input that
            cannot be read (as for training data).
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Data {str(source)!r} does not exist.")
    if path.is_dir():
        train_rows, test_rows = read_class_folders(path)
        rows = test_rows or train_rows
    else:
        rows = read_table(path, options)
    rows.announce()
    index = {name: i for i, name in enumerate(labels)}
    index.update({written: i for i, written in enumerate(labels.values())})
    unknown = [
        (label, place)
        for label, place in zip(rows.labels, rows.places, strict=True)
        if label not in index
    ]
    if unknown:
        label, place = unknown[0]
        raise ValueError(
            f"{place}: label {label!r} is not a class of the run ({', '.join(labels)}); "
            "a model cannot be scored on a class it never saw: fix the label or drop the row."
        )
    y = np.array([index[label] for label in rows.labels], dtype=np.int32)
    return vocabulary.encode_batch(rows.texts, maxlen), y
