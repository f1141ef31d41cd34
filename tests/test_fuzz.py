"""Fuzzing: random arrays, shapes, dtypes, bytes and text thrown at every input seqnet takes.

Every outcome must be a correct result or a seqnet ``ValueError`` that names the problem:
never a backend stack trace, a NaN, or a hang (each example has a deadline).
"""

from __future__ import annotations

import io

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from conftest import write_tiny_archive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqnet.config import ModelConfig
from seqnet.data import check_token_ids, load_imdb, make_synthetic, read_dataset
from seqnet.model import build_model
from seqnet.predict import Classifier
from seqnet.text import Vocabulary

FUZZ = settings(
    max_examples=300,
    deadline=5000,  # ms per example: a hang fails the test
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TINY = ModelConfig(
    vocabulary_size=50, sequence_length=16, embedding_dim=4, filters=4, hidden_units=4
)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    data = make_synthetic(num_words=TINY.vocabulary_size, maxlen=TINY.sequence_length, samples=4)
    return Classifier(build_model(TINY), data.vocabulary)


def _assert_probabilities(probabilities: np.ndarray, count: int) -> None:
    assert probabilities.shape == (count,)
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


@FUZZ
@given(token_ids=token_arrays)
def test_random_token_arrays_predict_or_raise_clearly(classifier, token_ids):
    try:
        probabilities = classifier.predict_token_ids(token_ids)
    except ValueError as error:
        assert "token ids" in str(error)
        return
    _assert_probabilities(probabilities, len(token_ids))


@FUZZ
@given(token_ids=st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=20), max_size=5))
def test_random_nested_lists_are_checked(token_ids):
    try:
        checked = check_token_ids(token_ids, vocabulary_size=50, sequence_length=16)
    except ValueError as error:
        assert "token ids" in str(error)
        return
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
    try:
        (x_train, y_train), _ = load_imdb(path, num_words=50, maxlen=8)
    except ValueError as error:
        assert str(path) in str(error)
        return
    assert x_train.shape == (len(x), 8) and x_train.dtype == np.int32
    assert set(np.unique(y_train)) <= {0, 1}


@FUZZ
@given(data=st.binary(max_size=4000))
def test_random_bytes_as_an_archive_raise_clearly(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "aclImdb_v1.tar.gz"
    path.write_bytes(data)
    with pytest.raises(ValueError):
        read_dataset(path, num_words=30, maxlen=8, verbose=False)


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
    try:
        dataset = read_dataset(path, num_words=30, maxlen=8, verbose=False, cache_dir=path.parent)
    except ValueError:
        return
    assert dataset.x_train.dtype == np.int32 and len(dataset.x_train) == len(dataset.y_train)
