"""Fuzzing: random arrays, shapes, dtypes, bytes and text thrown at every input seqnet takes.

Every outcome must be a correct result or a seqnet ``ValueError`` with the message a user
would see for that input: never a backend stack trace, another error's message, or a NaN.
"""

from __future__ import annotations

import io
import lzma
import re
import tarfile
import zlib

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from conftest import write_tiny_archive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqnet.config import ModelConfig
from seqnet.data import check_token_ids, load_imdb, make_synthetic, read_dataset
from seqnet.model import build_model, portable_model
from seqnet.predict import Classifier
from seqnet.text import Vocabulary

FUZZ = settings(
    max_examples=300,
    # No per-example wall-clock limit: on a loaded machine it fails examples that are merely
    # slow, and it never stopped a hang (it is checked once an example returns).
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TINY = ModelConfig(
    vocabulary_size=50, sequence_length=16, embedding_dim=4, filters=4, hidden_units=4
)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    data = make_synthetic(num_words=TINY.vocabulary_size, maxlen=TINY.sequence_length, samples=4)
    return Classifier(
        portable_model(build_model(TINY), TINY, from_training=True), data.vocabulary, TINY
    )


def _assert_probabilities(probabilities: np.ndarray, count: int) -> None:
    assert probabilities.shape == (count, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert np.isfinite(probabilities).all()
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


token_arrays = hnp.arrays(
    dtype=st.one_of(
        hnp.integer_dtypes(),
        hnp.unsigned_integer_dtypes(),
        hnp.floating_dtypes(),
        hnp.boolean_dtypes(),
        hnp.complex_number_dtypes(),
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=20),
)


def _token_ids_problem(token_ids, vocabulary_size: int, sequence_length: int) -> str | None:
    """The message (a regex) a user must get for ``token_ids``, or None if they are valid.

    The checks in the order the user meets them: ragged, not integers, not one batch of
    reviews, the wrong length, an id outside the vocabulary.
    """
    if isinstance(token_ids, list) and len({len(row) for row in token_ids}) > 1:
        return r"^token ids are ragged; pad them to one length"
    array = np.asarray(token_ids)  # [] and [[]] are float arrays
    if array.dtype == bool or array.dtype.kind not in "iu":
        return rf"^token ids must be integers, got dtype {array.dtype}\."
    if array.ndim != 2 or not len(array):
        shape = re.escape(str(array.shape))
        return (
            r"^token ids must have shape \(batch, sequence_length\) with batch >= 1, "
            rf"got shape {shape};"
        )
    if array.shape[1] != sequence_length:
        return (
            rf"^token ids have {array.shape[1]} tokens per text, the model expects "
            rf"{sequence_length};"
        )
    if array.min() < 0 or array.max() >= vocabulary_size:
        bad = array.min() if array.min() < 0 else array.max()
        return (
            rf"^token ids must lie in \[0, {vocabulary_size}\) for a vocabulary of "
            rf"{vocabulary_size} words, found {bad}\."
        )
    return None


@FUZZ
@given(token_ids=token_arrays)
def test_random_token_arrays_predict_or_raise_clearly(classifier, token_ids):
    problem = _token_ids_problem(token_ids, TINY.vocabulary_size, TINY.sequence_length)
    if problem is not None:
        with pytest.raises(ValueError, match=problem):
            classifier.predict_token_ids(token_ids)
        return
    _assert_probabilities(classifier.predict_token_ids(token_ids), len(token_ids))


@FUZZ
@given(token_ids=st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=20), max_size=5))
def test_random_nested_lists_are_checked(token_ids):
    problem = _token_ids_problem(token_ids, vocabulary_size=50, sequence_length=16)
    if problem is not None:
        with pytest.raises(ValueError, match=problem):
            check_token_ids(token_ids, vocabulary_size=50, sequence_length=16)
        return
    checked = check_token_ids(token_ids, vocabulary_size=50, sequence_length=16)
    assert checked.dtype == np.int32 and checked.min() >= 0 and checked.max() < 50


@FUZZ
@given(texts=st.lists(st.text(max_size=300), min_size=1, max_size=4))
def test_random_text_always_gets_a_probability(classifier, texts):
    _assert_probabilities(classifier.predict_probabilities(texts), len(texts))


@FUZZ
@given(texts=st.lists(st.text(max_size=100), max_size=6), num_words=st.integers(5, 40))
def test_random_corpora_give_ids_in_range(texts, num_words):
    vocabulary = Vocabulary.from_texts(texts, num_words=num_words)
    for text in texts:
        ids = vocabulary.encode(text)
        assert ids[0] == 1 and all(0 < i < num_words for i in ids)


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npz_problem(x: np.ndarray, y: np.ndarray, path: str, num_words: int) -> str | None:
    """The message (a regex) for an .npz of these train (and test) arrays, or None if valid:
    the reviews are checked before their labels."""
    if x.dtype.kind not in "iu":
        return rf"^x_train in {path} must be integers, got dtype {x.dtype}\."
    if x.ndim != 2 or not len(x):
        return rf"^x_train in {path} must have shape \(batch, sequence_length\)"
    if x.min() < 0 or x.max() >= num_words:
        bad = x.min() if x.min() < 0 else x.max()
        return rf"^x_train in {path} must lie in \[0, {num_words}\) .* found {bad}\."
    labels = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if labels.ndim != 1 or len(labels) != len(x):
        shape = re.escape(str(labels.shape))
        return rf"^y_train in {path} must be a vector of {len(x)} labels, got shape {shape}\."
    outside = np.flatnonzero(~np.isin(labels, (0, 1)))
    if len(outside):
        return (
            rf"^y_train in {path} must be 0 \(negative\) or 1 \(positive\); found "
            rf"{labels[outside[0]]} at index {outside[0]}\."
        )
    return None


@FUZZ
@given(
    x=hnp.arrays(
        st.sampled_from([np.int8, np.int64, np.float32, np.int16]),
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
        elements=st.integers(-3, 60) | st.just(0),
    ),
    y=hnp.arrays(
        st.sampled_from([np.int32, np.float64, np.int8]),
        hnp.array_shapes(min_dims=1, max_dims=2, max_side=6),
        elements=st.integers(-1, 2) | st.just(1),
    ),
)
def test_random_npz_files_load_or_raise_clearly(tmp_path_factory, x, y):
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    path.write_bytes(_npz_bytes({"x_train": x, "y_train": y, "x_test": x, "y_test": y}))
    problem = _npz_problem(x, y, re.escape(str(path)), num_words=50)
    if problem is not None:
        with pytest.raises(ValueError, match=problem):
            load_imdb(path, num_words=50, maxlen=8)
        return
    (x_train, y_train), _ = load_imdb(path, num_words=50, maxlen=8)
    assert x_train.shape == (len(x), 8) and x_train.dtype == np.int32
    assert set(np.unique(y_train)) <= {0, 1}


@FUZZ
@given(data=st.binary(max_size=4000))
def test_random_bytes_as_an_archive_raise_clearly(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "aclImdb_v1.tar.gz"
    path.write_bytes(data)
    name = re.escape(str(path))
    try:
        readable = tarfile.is_tarfile(path)
    except (EOFError, OSError, zlib.error, lzma.LZMAError):  # compressed, then cut off
        readable = None
    if readable is False:  # not even the start of an archive
        problem = rf"^{name} is neither a tar archive, an .npz, .csv, .tsv or .jsonl file, nor a"
    else:
        problem = rf"^Could not read {name}: the archive is corrupt or truncated|^{name} does not"
    with pytest.raises(ValueError, match=problem):
        read_dataset(path, num_words=30, maxlen=8, verbose=False)


# Every message a damaged archive may give, each naming the file and what is wrong with it.
DAMAGED_ARCHIVE_MESSAGES = (
    "^Could not read {path}: the archive is corrupt or truncated .*Download aclImdb_v1",
    "^{path} is neither a tar archive, an .npz, .csv, .tsv or .jsonl file, nor a folder",
    "^{path} does not have the aclImdb layout: no positive and negative reviews under",
    r"^.* in {path} is [\d,]+ bytes, more than the [\d,]+ a review can be",
)


@pytest.fixture(scope="module")
def archive_bytes(tmp_path_factory) -> bytes:
    return write_tiny_archive(tmp_path_factory.mktemp("valid") / "a.tar.gz").read_bytes()


@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8)
)
def test_corrupted_archives_load_or_raise_clearly(tmp_path_factory, archive_bytes, flips):
    damaged = bytearray(archive_bytes)
    for position, mask in flips:
        damaged[position % len(damaged)] ^= mask
    path = tmp_path_factory.mktemp("flipped") / "aclImdb_v1.tar.gz"
    path.write_bytes(bytes(damaged))
    messages = [message.format(path=re.escape(str(path))) for message in DAMAGED_ARCHIVE_MESSAGES]
    try:
        dataset = read_dataset(path, num_words=30, maxlen=8, verbose=False, cache_dir=path.parent)
    except ValueError as error:
        assert re.match("|".join(messages), str(error)), str(error)
        return
    assert dataset.x_train.dtype == np.int32 and len(dataset.x_train) == len(dataset.y_train)
