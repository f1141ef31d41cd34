"""Length bucketing: every review once per epoch, no token dropped, the same outputs."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
from conftest import MODEL_CONFIGS

from seqnet.buckets import (
    BucketedBatches,
    bucket_lengths,
    bucket_sizes,
    bucketed_batches,
    buckets_exactly,
    review_lengths,
    trimmed_length,
)
from seqnet.config import INFERENCE_BATCH_SIZE, TrainConfig
from seqnet.data import make_synthetic
from seqnet.model import build_model, portable_model
from seqnet.parallel import ReplicaLayout
from seqnet.train import build_training_model, epoch_data, trains_bucketed

# Batch-normalized networks train untrimmed (tests/test_second_config.py says why).
BUCKETED_CONFIGS = {name: c for name, c in MODEL_CONFIGS.items() if buckets_exactly(c)}


def _padded_reviews(count: int = 203, length: int = 24, seed: int = 0) -> np.ndarray:
    """``count`` reviews of 0 to ``length`` tokens (ids 1-59), padded with 0 in front."""
    rng = np.random.default_rng(seed)
    x = np.zeros((count, length), dtype="int32")
    for row, size in enumerate(rng.integers(0, length + 1, count)):
        x[row, length - size :] = rng.integers(1, 60, size)
    return x


def test_review_lengths_count_the_tokens_after_the_padding():
    x = np.array([[0, 0, 5, 0, 7], [0, 0, 0, 0, 0], [3, 1, 1, 1, 1]], dtype="int32")
    np.testing.assert_array_equal(review_lengths(x), [3, 0, 5])  # inner zeros are tokens


def test_bucket_lengths_keep_a_padding_window_and_never_exceed_the_length():
    lengths = np.array([0, 47, 48, 100, 396, 397, 400])
    buckets = bucket_lengths(lengths, kernel_size=3, sequence_length=400)
    np.testing.assert_array_equal(buckets, [50, 50, 100, 150, 400, 400, 400])


@pytest.mark.parametrize("shuffled", [True, False])
def test_every_review_lands_in_exactly_one_batch(shuffled):
    x = _padded_reviews()
    rng = np.random.default_rng([0, 1]) if shuffled else None
    batches = bucketed_batches(x, 16, kernel_size=3, rng=rng, step=5)
    rows = np.concatenate([rows for rows, _ in batches])
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(x)))
    assert sorted(len(rows) for rows, _ in batches)[1:] == [16] * (len(batches) - 1)


def test_trimming_drops_only_padding_and_keeps_a_padding_window():
    x = _padded_reviews()
    for rows, length in bucketed_batches(
        x, 16, kernel_size=3, rng=np.random.default_rng(1), step=5
    ):
        assert not x[rows, : x.shape[1] - length].any()  # nothing but padding is cut
        longest = review_lengths(x[rows]).max()
        assert length == x.shape[1] or length >= longest + 3
    assert {length for _, length in bucketed_batches(x, 16, kernel_size=3, step=5)} <= {
        5,
        10,
        15,
        20,
        24,  # multiples of the step, capped at the sequence length
    }


def test_order_depends_only_on_the_generator_seed():
    x = _padded_reviews()

    def order(seed):
        batches = bucketed_batches(x, 16, kernel_size=3, rng=np.random.default_rng(seed), step=5)
        return [(rows.tolist(), length) for rows, length in batches]

    assert order([0, 1]) == order([0, 1])
    assert order([0, 1]) != order([0, 2])


@pytest.mark.parametrize("config", BUCKETED_CONFIGS.values(), ids=BUCKETED_CONFIGS.keys())
def test_trimmed_batches_give_the_untrimmed_outputs(config):
    """Each batch keeps a full padding window, so no max changes (dropout off)."""
    model = build_model(config, variable_length=True)
    x = _padded_reviews()
    y = np.zeros(len(x), dtype="int32")
    whole = keras.ops.convert_to_numpy(model(x, training=False))
    batches = bucketed_batches(
        x, 16, kernel_size=config.kernel_size, rng=np.random.default_rng(2), step=5
    )
    dataset = BucketedBatches(x, y, batches)
    for index, (rows, length) in enumerate(batches):
        trimmed, _ = dataset[index]
        assert trimmed.shape == (len(rows), length)
        outputs = keras.ops.convert_to_numpy(model(trimmed, training=False))
        np.testing.assert_allclose(outputs, whole[rows], rtol=1e-5, atol=1e-5)


def test_variable_length_network_keeps_its_length_in_the_saved_form(tiny_model_config):
    model = build_model(tiny_model_config, variable_length=True)
    assert model.input_shape == (None, None)
    portable = portable_model(model, tiny_model_config, from_training=True)
    assert portable.input_shape == (None, tiny_model_config.sequence_length)


def test_training_model_is_variable_length_on_one_device(tiny_model_config):
    config = TrainConfig(model=tiny_model_config)
    model = build_training_model(config, 100)
    assert model.input_shape == (None, None)
    parallel = build_training_model(dataclasses.replace(config, distribute="data-parallel"), 100)
    assert parallel.input_shape == (None, tiny_model_config.sequence_length)


def test_only_single_device_variable_length_training_is_bucketed(tiny_model_config):
    config = TrainConfig(model=tiny_model_config, batch_size=16)
    data = make_synthetic(num_words=60, maxlen=24, samples=100)
    variable = build_model(tiny_model_config, variable_length=True)
    assert trains_bucketed(variable, ReplicaLayout())
    assert not trains_bucketed(build_model(tiny_model_config), ReplicaLayout())
    assert not trains_bucketed(variable, ReplicaLayout(strategy="data-parallel"))
    x, y, validation = epoch_data(variable, data, config, 0, ReplicaLayout())
    assert y is None and len(x) == -(-len(data.x_train) // 16)
    assert len(validation) == -(-len(data.x_test) // INFERENCE_BATCH_SIZE)


def test_a_batch_trims_to_its_longest_reviews_bucket():
    x = _padded_reviews()
    longest = int(review_lengths(x).max())
    assert trimmed_length(x, kernel_size=3, step=5) == min(-(-(longest + 3) // 5) * 5, 24)
    short = np.zeros((2, 24), dtype="int32")
    short[0, -4:] = 7
    assert trimmed_length(short, kernel_size=3, step=5) == 10  # 4 tokens + 3 padding -> 10
    assert trimmed_length(short[:0], kernel_size=3, step=5) == 24


def test_bucket_sizes_are_every_length_a_batch_can_get():
    assert bucket_sizes(400) == [50, 100, 150, 200, 250, 300, 350, 400]
    assert bucket_sizes(24, step=5) == [5, 10, 15, 20, 24]
    lengths = bucket_lengths(np.arange(25), kernel_size=3, sequence_length=24, step=5)
    assert set(lengths.tolist()) <= set(bucket_sizes(24, step=5))
