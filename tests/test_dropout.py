"""BitMaskDropout: Keras' Dropout in distribution, scale, gradient and seeding, on every backend
(torch draws its own thresholded bits; JAX and TensorFlow call Keras' dropout)."""

import keras
import numpy as np

from seqnet import backends
from seqnet.config import ModelConfig
from seqnet.layers import BIT_MASK_DROPOUT, BitMaskDropout
from seqnet.model import build_network

RATE = 0.2
SCALE = 1 / (1 - RATE)


def _masks(layer, shape=(1000, 1000)):
    """The layer's training output on ones: 0 where it dropped, its scale where it kept."""
    return keras.ops.convert_to_numpy(layer(keras.ops.ones(shape), training=True))


def test_it_drops_the_rate_and_scales_what_it_keeps():
    kept = _masks(BitMaskDropout(RATE))
    dropped = kept == 0
    # Five standard deviations of the dropped fraction of 10^6 independent draws.
    assert abs(dropped.mean() - RATE) < 5 * np.sqrt(RATE * (1 - RATE) / dropped.size)
    np.testing.assert_allclose(kept[~dropped], SCALE, rtol=1e-6)


def test_neighbouring_entries_are_dropped_independently():
    # torch takes two entries from each 64-bit draw: both halves must be random and distinct.
    dropped = (_masks(BitMaskDropout(RATE)) == 0).reshape(-1, 2)
    both = (dropped[:, 0] & dropped[:, 1]).mean()
    assert abs(both - RATE**2) < 5 * np.sqrt(RATE**2 * (1 - RATE**2) / len(dropped))


def test_an_odd_number_of_entries_is_masked_whole():
    kept = _masks(BitMaskDropout(RATE), shape=(3, 7, 101))
    assert kept.shape == (3, 7, 101)
    assert set(np.unique(kept)) == {0.0, np.float32(SCALE)}


def test_inference_and_rate_zero_pass_the_inputs_through():
    inputs = np.random.default_rng(0).normal(size=(4, 9)).astype("float32")
    for layer, training in ((BitMaskDropout(RATE), False), (BitMaskDropout(0.0), True)):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(layer(inputs, training=training)), inputs
        )


def test_the_gradient_passes_through_the_forward_pass_mask_scaled():
    """One SGD(1.0) step of all-ones-kernel Dense -> dropout on one-hot rows, with the loss
    half the sum of squared outputs: the kernel's change is the forward mask times the
    backward mask times the scale squared. Unmasked or unscaled backward passes change the
    value; a backward mask other than the forward's drops 1 - 0.8**2 = 36 % instead of 20 %."""
    size = 200
    inputs = keras.Input((size,))
    dense = keras.layers.Dense(size, use_bias=False, kernel_initializer="ones")
    model = keras.Model(inputs, BitMaskDropout(RATE)(dense(inputs)))
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=1.0),
        loss=lambda _, outputs: keras.ops.sum(outputs**2, axis=-1) / 2,
    )
    model.train_on_batch(np.eye(size, dtype="float32"), np.zeros((size, size), "float32"))
    # Times the batch size, which the loss averages over.
    change = (1.0 - dense.get_weights()[0]) * size
    passed = ~np.isclose(change, 0.0, atol=1e-4)
    np.testing.assert_allclose(change[passed], SCALE**2, rtol=1e-4)
    assert abs((~passed).mean() - RATE) < 5 * np.sqrt(RATE * (1 - RATE) / change.size)


def test_the_global_seed_replays_the_masks_and_each_call_draws_new_ones():
    keras.utils.set_random_seed(3)
    layer = BitMaskDropout(RATE)
    first, second = _masks(layer, (50, 50)), _masks(layer, (50, 50))
    keras.utils.set_random_seed(3)
    np.testing.assert_array_equal(_masks(BitMaskDropout(RATE), (50, 50)), first)
    assert (first != second).any()


def test_with_a_seed_it_is_keras_dropout():
    ours, keras_own = BitMaskDropout(RATE, seed=7), keras.layers.Dropout(RATE, seed=7)
    np.testing.assert_array_equal(_masks(ours, (40, 30)), _masks(keras_own, (40, 30)))


def test_it_round_trips_through_the_keras_format_in_safe_mode(tmp_path):
    inputs = keras.Input((6,))
    keras.Model(inputs, BitMaskDropout(0.3, name="dropout")(inputs)).save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True).get_layer("dropout")
    assert isinstance(loaded, BitMaskDropout) and loaded.rate == 0.3


def test_torch_draws_its_own_bit_masks_and_other_backends_keras_masks():
    backend = keras.backend.backend()
    assert BIT_MASK_DROPOUT.get(backend, False) == (backend == "torch")
    keras.utils.set_random_seed(5)
    got = _masks(BitMaskDropout(RATE), (30, 40))
    keras.utils.set_random_seed(5)
    if backend == "torch":
        want = backends.for_backend().dropout(keras.ops.ones((30, 40)), RATE)
    else:
        want = keras.layers.Dropout(RATE)(keras.ops.ones((30, 40)), training=True)
    np.testing.assert_array_equal(got, keras.ops.convert_to_numpy(want))


def test_only_the_training_network_has_bit_mask_dropout():
    for training in (True, False):
        dropouts = [
            layer
            for layer in build_network(ModelConfig(), training=training).layers
            if isinstance(layer, keras.layers.Dropout)
        ]
        assert [layer.name for layer in dropouts] == ["embedding_dropout", "hidden_dropout"]
        assert all(isinstance(layer, BitMaskDropout) == training for layer in dropouts)
