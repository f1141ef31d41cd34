import keras
import numpy as np
import pytest

from seqnet.layers import MaxPooledConv1D, _max_over_steps


def _stock(filters, kernel_size, activation):
    """The lecture's two layers: Conv1D then GlobalMaxPooling1D."""
    convolution = keras.layers.Conv1D(
        filters, kernel_size, activation=activation, data_format="channels_last"
    )
    return convolution, keras.Sequential(
        [convolution, keras.layers.GlobalMaxPooling1D(data_format="channels_last")]
    )


def _pair(filters, kernel_size, activation):
    """A stock Conv1D + GlobalMaxPooling1D and a MaxPooledConv1D with the same weights."""
    convolution, reference = _stock(filters, kernel_size, activation)
    fused = MaxPooledConv1D(
        filters, kernel_size, activation=activation, data_format="channels_last"
    )
    inputs = np.random.default_rng(0).normal(size=(4, 17, 6)).astype("float32")
    reference(inputs), fused(inputs)
    fused.set_weights(convolution.get_weights())
    return reference, fused, inputs


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("training", [False, True])
def test_output_equals_conv1d_then_max_pooling(kernel_size, activation, training):
    reference, fused, inputs = _pair(7, kernel_size, activation)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fused(inputs, training=training)),
        keras.ops.convert_to_numpy(reference(inputs)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_gradients_equal_conv1d_then_max_pooling():
    reference, fused, inputs = _pair(5, 3, "relu")
    weights = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    for fused_gradient, reference_gradient in zip(
        _gradients_of(fused, inputs, weights),
        _gradients_of(reference, inputs, weights),
        strict=True,
    ):
        np.testing.assert_allclose(fused_gradient, reference_gradient, rtol=1e-4, atol=1e-5)


def _gradients_of(layer, inputs, weights):
    """d(sum(weights * layer(inputs))) / d(kernel, bias), through one SGD(1.0) step."""
    model_inputs = keras.Input(shape=inputs.shape[1:])
    model = keras.Model(model_inputs, layer(model_inputs))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss=_weighted_sum(weights))
    before = [np.asarray(v).copy() for v in layer.get_weights()]
    model.train_on_batch(inputs, np.zeros(weights.shape, "float32"))
    # With SGD(1.0), each weight's change is minus its gradient.
    return [b - np.asarray(a) for b, a in zip(before, layer.get_weights(), strict=True)]


def _weighted_sum(weights):
    def loss(y_true, y_pred):
        weighted = y_pred * keras.ops.convert_to_tensor(weights)
        return keras.ops.sum(weighted) / keras.ops.cast(keras.ops.shape(y_pred)[0], "float32")

    return loss


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"activation": "tanh"}, "commutes with max-pooling"),
        ({"padding": "same"}, "stride 1, no dilation, 'valid' padding"),
        ({"strides": 2}, "stride 1, no dilation, 'valid' padding"),
    ],
)
def test_settings_that_do_not_commute_with_pooling_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        MaxPooledConv1D(3, 3, data_format="channels_last", **{"activation": "relu", **settings})


def test_round_trips_through_the_keras_format_in_safe_mode(tmp_path):
    inputs = keras.Input((10, 4))
    model = keras.Model(
        inputs, MaxPooledConv1D(3, 3, activation="relu", data_format="channels_last")(inputs)
    )
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    x = np.random.default_rng(2).normal(size=(2, 10, 4)).astype("float32")
    assert isinstance(loaded.layers[-1], MaxPooledConv1D)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_seqnet_0_1_layer_config_still_loads():
    config = MaxPooledConv1D(3, 3, activation="relu", data_format="channels_last").get_config()
    assert isinstance(MaxPooledConv1D.from_config({**config, "matmul": False}), MaxPooledConv1D)
    # Keras wraps the layer's ValueError into its own deserialization error, message kept.
    with pytest.raises((ValueError, TypeError), match="matmul_convolution=True"):
        MaxPooledConv1D.from_config({**config, "matmul": True})


@pytest.mark.parametrize("gather", [False, True])
def test_both_maxima_agree_with_numpy(gather):
    responses = np.random.default_rng(1).normal(size=(3, 11, 7)).astype("float32")
    pooled = keras.ops.convert_to_numpy(_max_over_steps(responses, gather=gather))
    np.testing.assert_array_equal(pooled, responses.max(axis=1))
