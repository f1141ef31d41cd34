"""The lecture CNN's table form: the portable network's outputs from gathered table rows."""

import numpy as np
import pytest

from seqnet import table_form as table_form_module
from seqnet.config import ModelConfig
from seqnet.model import LectureCnn, build_network
from seqnet.predict import Classifier
from seqnet.task import Task


def _network(config, seed=0):
    """The portable network of ``config``, of any length, with random weights large enough
    that every ReLU and the max see both signs."""
    network = build_network(config, variable_length=True)
    _randomize(network, seed)
    return network


def _table_form(network, config):
    """The table form the lecture CNN's architecture gives ``network``, or None."""
    return LectureCnn().inference_form(config, network)


def _randomize(network, seed):
    rng = np.random.default_rng(seed)
    for weight in network.weights:
        weight.assign(rng.normal(0.0, 0.3, weight.shape).astype("float32"))


def _texts(config, lengths, seed=0):
    """Texts of the given lengths of random ids (reserved ones included), padded in front."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), config.sequence_length), dtype=np.int32)
    for row, length in enumerate(lengths):
        if length:
            ids[row, -length:] = rng.integers(0, config.vocabulary_size, length)
    return ids


@pytest.mark.parametrize("kernel_size", [1, 2, 3, 5])
@pytest.mark.parametrize("num_classes", [2, 4])
@pytest.mark.parametrize("texts_per_chunk", [None, 1, 4])  # None: all six texts in one chunk
def test_outputs_equal_the_portable_network(kernel_size, num_classes, texts_per_chunk, monkeypatch):
    config = ModelConfig(
        vocabulary_size=300,
        sequence_length=40,
        embedding_dim=6,
        filters=9,
        hidden_units=7,
        kernel_size=kernel_size,
        num_classes=num_classes,
    )
    network = _network(config)
    # Full-length, short, one-token and empty (padding-only windows) texts.
    ids = _texts(config, [40, 17, 3, 1, 0, 25])
    table_form = _table_form(network, config)
    if texts_per_chunk:  # the bytes of that many texts' full-length responses
        windows = config.sequence_length - kernel_size + 1
        chunk_bytes = 4 * windows * config.filters * texts_per_chunk
        monkeypatch.setattr(table_form_module, "CHUNK_BYTES", chunk_bytes)
    expected = np.asarray(network.predict_on_batch(ids))
    np.testing.assert_allclose(table_form(ids), expected, rtol=1e-5, atol=1e-6)
    # Trimmed on the left as inference trims: kernel_size padding tokens before the longest.
    trimmed = ids[1:, -(25 + kernel_size) :]  # the longest of these has 25 tokens
    np.testing.assert_allclose(table_form(trimmed), expected[1:], rtol=1e-5, atol=1e-6)


def test_ties_and_padding_only_texts_give_the_networks_outputs():
    config = ModelConfig(vocabulary_size=50, sequence_length=12, embedding_dim=4, filters=5)
    network = _network(config, seed=1)
    # The same word over and over: every window of a row ties for the max.
    ids = np.array([[7] * 12, [0] * 8 + [7] * 4, [0] * 12], dtype=np.int32)
    np.testing.assert_allclose(
        _table_form(network, config)(ids),
        np.asarray(network.predict_on_batch(ids)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_logits_of_any_size_give_probabilities_without_overflow():
    config = ModelConfig(vocabulary_size=50, sequence_length=12, embedding_dim=4, filters=5)
    network = _network(config)
    head = network.layers[-1]
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 1e4, bias])  # logits of thousands: sigmoid saturates
    ids = _texts(config, [12, 6, 0], seed=2)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        probabilities = _table_form(network, config)(ids)
    np.testing.assert_allclose(probabilities, np.asarray(network.predict_on_batch(ids)), atol=1e-6)


def test_no_table_form_where_it_would_not_be_exact_or_would_not_fit():
    normalized = ModelConfig(vocabulary_size=50, sequence_length=12, batch_normalization=True)
    assert _table_form(build_network(normalized), normalized) is None
    huge = ModelConfig(vocabulary_size=200_000, sequence_length=12, filters=250)
    assert _table_form(build_network(huge), huge) is None


@pytest.mark.parametrize("num_classes", [2, 3])
def test_classifier_gives_the_same_probabilities_with_and_without_it(num_classes):
    config = ModelConfig(vocabulary_size=300, sequence_length=60, num_classes=num_classes)
    network = build_network(config)
    _randomize(network, seed=4)
    names = tuple(f"class {index}" for index in range(num_classes))
    tables, keras_only = (Classifier(network, None, config, Task(names)) for _ in range(2))
    assert tables._inference_form is not None
    keras_only._inference_form = None
    ids = _texts(config, [60, 5, 0, 33, 12, 1, 59, 20, 2], seed=3)
    for batch_size in (1, 4, 9):
        np.testing.assert_allclose(
            tables.predict_token_ids(ids, batch_size=batch_size),
            keras_only.predict_token_ids(ids, batch_size=batch_size),
            rtol=1e-5,
            atol=1e-6,
        )
