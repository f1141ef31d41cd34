"""The training loss is binary cross-entropy from logits, the same on every backend.

Each backend is checked against one float64 NumPy reference on the same weights and batch,
saturated logits included, so the three agree with each other to float32 tolerance. (Keras on
TensorFlow once took the loss from the sigmoid's logits while JAX and torch clipped
probabilities to [1e-7, 1 - 1e-7], which gives a confidently wrong review no gradient.)
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from seqnet.config import ModelConfig
from seqnet.model import build_model

LOGITS = np.array([-60.0, -20.0, -3.0, -0.5, 0.0, 0.5, 3.0, 20.0, 60.0], dtype="float32")
LABELS = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0], dtype="float32")  # -60 -> 1, 60 -> 0: wrong, sure


def reference_loss_and_gradient(logits: np.ndarray, labels: np.ndarray):
    """Mean BCE from logits and its gradient d loss / d logit, stably in float64."""
    z, y = logits.astype(np.float64), labels.astype(np.float64)
    losses = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return losses.mean(), (1 / (1 + np.exp(-z)) - y) / len(z)


def _loss_and_gradient(model: keras.Model, logits: np.ndarray, labels: np.ndarray):
    """The compiled loss of ``model`` on given logits, and its gradient, via keras.ops only."""
    loss_function = model.loss

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        value, gradient = jax.value_and_grad(lambda z: loss_function(labels[:, None], z))(
            logits[:, None]
        )
        return float(value), np.asarray(gradient)[:, 0]
    if backend == "torch":
        import torch

        z = torch.tensor(logits[:, None], requires_grad=True)
        value = loss_function(torch.tensor(labels[:, None]), z)
        value.backward()
        return float(value.detach()), z.grad.numpy()[:, 0]
    import tensorflow as tf

    z = tf.Variable(logits[:, None])
    with tf.GradientTape() as tape:
        value = loss_function(tf.constant(labels[:, None]), z)
    return float(value), tape.gradient(value, z).numpy()[:, 0]


def test_the_training_loss_is_bce_from_logits_with_a_gradient_everywhere():
    model = build_model(ModelConfig(vocabulary_size=10, sequence_length=4, filters=2))
    value, gradient = _loss_and_gradient(model, LOGITS, LABELS)
    expected_value, expected_gradient = reference_loss_and_gradient(LOGITS, LABELS)
    assert value == pytest.approx(expected_value, rel=1e-6)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-9)
    # A confidently wrong review (logit -60, label 1) still pulls: gradient -1 / batch.
    assert gradient[0] == pytest.approx(-1 / len(LOGITS), rel=1e-6)


def test_one_step_on_fixed_weights_matches_the_reference():
    """The whole model on one batch: the output bias's gradient is mean(sigmoid(z) - y)."""
    config = ModelConfig(
        vocabulary_size=20,
        sequence_length=6,
        embedding_dim=3,
        filters=4,
        hidden_units=4,
        dropout_rate=0.0,  # the logits seen before the step are the ones the step uses
    )
    model = build_model(config)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss=model.loss)
    rng = np.random.default_rng(0)
    # Large weights: many reviews land deep in the sigmoid's flat tails.
    model.set_weights(
        [rng.normal(scale=3.0, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    x = rng.integers(0, 20, size=(16, 6))
    y = rng.integers(0, 2, size=16).astype("float32")
    logits = keras.ops.convert_to_numpy(model(x, training=False))[:, 0]
    expected_loss, expected_gradient = reference_loss_and_gradient(logits, y)
    loss = model.test_on_batch(x, y, return_dict=True)["loss"]
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    bias_before = model.get_layer("logit").get_weights()[1][0]
    model.train_on_batch(x, y)
    bias_after = model.get_layer("logit").get_weights()[1][0]
    assert bias_before - bias_after == pytest.approx(expected_gradient.sum(), rel=1e-4, abs=1e-6)
