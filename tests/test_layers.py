import keras
import numpy as np
import pytest

from seqnet import backends, layers
from seqnet.layers import MaxPooledConv1D, _max_and_first_index, _max_over_steps


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


# --- The sparse backward (max_pooled_convolution) against the stock layers ---------------------


def _texts(kind, batch, steps, channels=6, seed=0):
    """Embedded texts ``(batch, steps, channels)`` of one kind.

    "random": no ties; "ties": one constant value, so every window of a text ties;
    "padding": each text ends in all-zero rows (the last text is padding only), so the
    padding-only windows tie at the bias.
    """
    rng = np.random.default_rng(seed)
    texts = rng.normal(size=(batch, steps, channels)).astype("float32")
    if kind == "ties":
        return np.full_like(texts, 0.5)
    if kind == "padding":
        texts[:, steps // 2 :] = 0.0
        texts[-1] = 0.0
    return texts


def _weights(kernel_size, channels, filters, seed=1):
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=(kernel_size, channels, filters)).astype("float32")
    return kernel, rng.normal(size=(filters,)).astype("float32")


def _fused_layer(kernel_size, filters, activation, monkeypatch, *, sparse=True):
    """A built MaxPooledConv1D that trains with (or without) the sparse backward."""
    backend = keras.backend.backend()
    monkeypatch.setitem(layers.SPARSE_CONVOLUTION_GRADIENT, backend, sparse)
    return MaxPooledConv1D(filters, kernel_size, activation=activation, data_format="channels_last")


def _first_maximum_reference(texts, kernel, bias, activation):
    """Conv1D then a gather at the FIRST maximum of each filter (numpy's argmax), then the
    activation: the stock layers' maths with ties given to the first window.

    Returns the function of (texts, kernel, bias), its windows found once from these values.
    """
    responses = keras.ops.conv(texts, kernel, padding="valid", data_format="channels_last")
    first = np.argmax(keras.ops.convert_to_numpy(responses), axis=1)[:, None, :]

    def reference(texts, kernel, bias):
        responses = keras.ops.conv(texts, kernel, padding="valid", data_format="channels_last")
        pooled = keras.ops.take_along_axis(responses, keras.ops.convert_to_tensor(first), axis=1)
        return keras.activations.get(activation)(pooled[:, 0, :] + bias)

    return reference


def _stock_reference(texts, kernel, bias, activation):
    """The lecture's two layers' maths: Conv1D(activation) then GlobalMaxPooling1D."""

    def reference(texts, kernel, bias):
        responses = keras.ops.conv(texts, kernel, padding="valid", data_format="channels_last")
        return keras.ops.max(keras.activations.get(activation)(responses + bias), axis=1)

    return reference


def _layer_function(layer):
    """(texts, kernel, bias) -> the layer's training output, its weights replaced by these."""

    def function(texts, kernel, bias):
        outputs, _ = layer.stateless_call([kernel, bias], [], texts, training=True)
        return outputs

    return function


def _gradients(function, upstream, *values):
    """Outputs of ``function(*values)`` and d(sum(upstream * outputs)) / d(each value)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def objective(*arguments):
            outputs = function(*arguments)
            return (outputs * upstream).sum(), outputs

        gradient = jax.grad(objective, argnums=tuple(range(len(values))), has_aux=True)
        gradients, outputs = jax.jit(gradient)(*values)
    elif backend == "tensorflow":
        import tensorflow as tf

        values = [tf.convert_to_tensor(value) for value in values]
        with tf.GradientTape() as tape:
            tape.watch(values)
            outputs = function(*values)
            objective = tf.reduce_sum(outputs * upstream)
        gradients = tape.gradient(objective, values)
    else:
        import torch

        values = [torch.tensor(value, requires_grad=True) for value in values]
        outputs = function(*values)
        objective = (outputs * torch.as_tensor(upstream)).sum()
        gradients = torch.autograd.grad(objective, values)
    return [keras.ops.convert_to_numpy(v) for v in (outputs, *gradients)]


def _assert_same_outputs_and_gradients(kind, batch, steps, kernel_size, activation, reference, mp):
    filters = 7
    texts = _texts(kind, batch, steps)
    kernel, bias = _weights(kernel_size, texts.shape[-1], filters)
    layer = _fused_layer(kernel_size, filters, activation, mp)
    layer.build(texts.shape)
    upstream = np.random.default_rng(2).normal(size=(batch, filters)).astype("float32")
    fused = _gradients(_layer_function(layer), upstream, texts, kernel, bias)
    expected = _gradients(reference(texts, kernel, bias, activation), upstream, texts, kernel, bias)
    for name, got, want in zip(("outputs", "inputs", "kernel", "bias"), fused, expected, strict=1):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("activation", [None, "relu"])
def test_sparse_gradients_equal_the_stock_layers(kernel_size, activation, monkeypatch):
    _assert_same_outputs_and_gradients(
        "random", 4, 17, kernel_size, activation, _stock_reference, monkeypatch
    )


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("kind", ["ties", "padding"])
def test_sparse_gradients_give_ties_to_the_first_maximum(kind, kernel_size, monkeypatch):
    _assert_same_outputs_and_gradients(
        kind, 4, 17, kernel_size, "relu", _first_maximum_reference, monkeypatch
    )


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize(("batch", "extra_steps"), [(1, 9), (3, 0), (1, 0)])
def test_sparse_gradients_at_batch_one_and_a_single_window(
    batch, extra_steps, kernel_size, monkeypatch
):
    _assert_same_outputs_and_gradients(
        "random", batch, kernel_size + extra_steps, kernel_size, None, _stock_reference, monkeypatch
    )


def test_sparse_gradients_without_a_bias(monkeypatch):
    texts = _texts("random", 2, 9)
    kernel, _ = _weights(3, texts.shape[-1], 4)
    layer = _fused_layer(3, 4, None, monkeypatch)
    layer.use_bias = False
    layer.build(texts.shape)
    upstream = np.ones((2, 4), "float32")

    def fused(texts, kernel):
        return layer.stateless_call([kernel], [], texts, training=True)[0]

    got = _gradients(fused, upstream, texts, kernel)
    stock = _stock_reference(texts, kernel, 0.0, None)
    want = _gradients(lambda t, k: stock(t, k, 0.0), upstream, texts, kernel)
    for got_value, want_value in zip(got, want, strict=True):
        np.testing.assert_allclose(got_value, want_value, rtol=1e-5, atol=1e-5)


def _embedded_model(layer, texts):
    """token ids -> an Embedding holding ``texts`` row by row -> ``layer``: the Embedding's
    gradient is the layer's input gradient, as each position has its own token id. Any
    length, as the bucketed training network's input."""
    batch, steps, channels = texts.shape
    token_ids = keras.Input((None,), dtype="int32")
    embedding = keras.layers.Embedding(batch * steps, channels)
    model = keras.Model(token_ids, layer(embedding(token_ids)))
    embedding.set_weights([texts.reshape(-1, channels)])
    return model, np.arange(batch * steps, dtype="int32").reshape(batch, steps)


def _fit_step_changes(layer, texts, kernel, bias, upstream, jit_compile):
    """Minus each weight's gradient (embedding rows, kernel, bias) through one model.fit step
    with SGD(1.0) and the loss sum(upstream * outputs) / batch."""
    model, token_ids = _embedded_model(layer, texts)
    layer.set_weights([kernel, bias])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=1.0),
        loss=_weighted_sum(upstream),
        jit_compile=jit_compile,
    )
    before = [np.asarray(w).copy() for w in model.get_weights()]
    targets = np.zeros(upstream.shape, "float32")
    # One batch, rows in order: the loss weighs row i by upstream[i].
    model.fit(token_ids, targets, batch_size=len(texts), shuffle=False, verbose=0)
    return [b - np.asarray(a) for b, a in zip(before, model.get_weights(), strict=True)]


@pytest.mark.parametrize("kind", ["random", "ties", "padding"])
@pytest.mark.parametrize("jit_compile", ["auto", False])
def test_a_fit_step_with_the_sparse_backward_equals_the_first_maximum_reference(
    kind, jit_compile, monkeypatch
):
    texts = _texts(kind, 4, 12)
    kernel, bias = _weights(3, texts.shape[-1], 5)
    upstream = np.random.default_rng(3).normal(size=(4, 5)).astype("float32")
    fused = _fused_layer(3, 5, "relu", monkeypatch)
    changes = _fit_step_changes(fused, texts, kernel, bias, upstream, jit_compile)
    # The same step's gradients, straight from the reference maths (the loss divides by 4).
    _, *expected = _gradients(
        _first_maximum_reference(texts, kernel, bias, "relu"),
        upstream / 4,
        texts,
        kernel,
        bias,
    )
    expected[0] = expected[0].reshape(-1, texts.shape[-1])
    for name, got, want in zip(("embedding", "kernel", "bias"), changes, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)


def _index_functions():
    """The portable max-and-first-index and this backend's own, where it has one."""
    specialized = backends.for_backend()
    own = getattr(specialized, "max_and_first_index", None)
    return [_max_and_first_index, *([own] if own else [])]


@pytest.mark.parametrize("index", _index_functions())
def test_max_and_first_index_gives_ties_to_the_first_step(index):
    responses = np.random.default_rng(4).normal(size=(3, 11, 7)).astype("float32")
    responses[0] = 1.0  # every step ties
    responses[1, 4:8, 2] = 9.0  # a tie in one filter, from step 4
    pooled, first = (
        keras.ops.convert_to_numpy(v) for v in index(keras.ops.convert_to_tensor(responses))
    )
    np.testing.assert_array_equal(pooled, responses.max(axis=1))
    np.testing.assert_array_equal(first, responses.argmax(axis=1))
    assert first[1, 2] == 4 and (first[0] == 0).all()
