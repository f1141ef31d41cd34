import keras
import numpy as np
import pytest

from seqnet.layers import MatmulConv1D


def _pair(**settings):
    """A Conv1D and a MatmulConv1D with the same weights."""
    reference = keras.layers.Conv1D(data_format="channels_last", **settings)
    fast = MatmulConv1D(data_format="channels_last", **settings)
    inputs = np.random.default_rng(0).normal(size=(4, 17, 6)).astype("float32")
    reference(inputs), fast(inputs)
    fast.set_weights(reference.get_weights())
    return reference, fast, inputs


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("activation", [None, "relu"])
def test_output_equals_conv1d(kernel_size, activation):
    reference, fast, inputs = _pair(filters=7, kernel_size=kernel_size, activation=activation)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fast(inputs)),
        keras.ops.convert_to_numpy(reference(inputs)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_gradients_equal_conv1d():
    reference, fast, inputs = _pair(filters=5, kernel_size=3, activation="relu")
    weights = np.random.default_rng(1).normal(size=(4, 15, 5)).astype("float32")

    def gradients(layer):
        variables = [np.asarray(v) for v in layer.get_weights()]
        return _gradients_of(layer, inputs, weights, variables)

    for fast_gradient, reference_gradient in zip(
        gradients(fast), gradients(reference), strict=True
    ):
        np.testing.assert_allclose(fast_gradient, reference_gradient, rtol=1e-4, atol=1e-5)


def _gradients_of(layer, inputs, weights, variables):
    """d(sum(weights * layer(inputs))) / d(kernel, bias, inputs), by finite-free autodiff."""
    model_inputs = keras.Input(shape=inputs.shape[1:])
    model = keras.Model(model_inputs, layer(model_inputs))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss=_weighted_sum(weights))
    before = [v.copy() for v in variables]
    model.train_on_batch(inputs, np.zeros((4, 15, 5), "float32"))
    # With SGD(1.0), each weight's change is minus its gradient.
    return [b - np.asarray(a) for b, a in zip(before, layer.get_weights(), strict=True)]


def _weighted_sum(weights):
    def loss(y_true, y_pred):
        weighted = y_pred * keras.ops.convert_to_tensor(weights)
        return keras.ops.sum(weighted) / keras.ops.cast(keras.ops.shape(y_pred)[0], "float32")

    return loss


def test_other_settings_fall_back_to_conv1d():
    reference, fast, inputs = _pair(filters=3, kernel_size=3, padding="same", strides=2)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fast(inputs)),
        keras.ops.convert_to_numpy(reference(inputs)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_round_trips_through_the_keras_format_in_safe_mode(tmp_path):
    inputs = keras.Input((10, 4))
    model = keras.Model(inputs, MatmulConv1D(3, 3, data_format="channels_last")(inputs))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    x = np.ones((2, 10, 4), "float32")
    assert isinstance(loaded.layers[-1], MatmulConv1D)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_pooled_convolution_gives_the_same_values_in_training_and_inference():
    from seqnet.layers import MaxPooledConv1D

    layer = MaxPooledConv1D(6, 3, activation="relu", data_format="channels_last")
    inputs = np.random.default_rng(0).normal(size=(4, 20, 5)).astype("float32")
    training = keras.ops.convert_to_numpy(layer(inputs, training=True))
    inference = keras.ops.convert_to_numpy(layer(inputs, training=False))
    assert training.shape == (4, 6)
    np.testing.assert_allclose(training, inference, atol=1e-6)


@pytest.mark.parametrize("gather", [False, True])
def test_both_maxima_agree_with_numpy(gather):
    from seqnet.layers import _max_over_steps

    responses = np.random.default_rng(1).normal(size=(3, 11, 7)).astype("float32")
    pooled = keras.ops.convert_to_numpy(_max_over_steps(responses, gather=gather))
    np.testing.assert_array_equal(pooled, responses.max(axis=1))
