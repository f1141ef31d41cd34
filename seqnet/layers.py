"""The one layer seqnet adds to Keras: ``Conv1D`` + ``GlobalMaxPooling1D`` fused for training.

Same parameters and outputs as the two stock layers; saved models use the stock layers
(see [`seqnet.model.portable_model`][seqnet.model.portable_model]).
"""

from __future__ import annotations

import keras
from keras import ops

# The max-pooling backward that trains fastest, measured on CPU (2 cores) for (32, 398, 250):
# forward and backward of a gather at the argmax against ops.max's own. torch: 5.2 vs 8.1 ms,
# JAX: +4 % per training step; TensorFlow: 9.2 vs 5.5 ms, as Keras' argmax there adds a
# flush-to-zero pass over the whole tensor.
GATHERS_POOLING_GRADIENT = {"torch": True, "jax": True, "tensorflow": False}


# Activations f with max(f(z)) == f(max(z)): non-decreasing, so they commute with max-pooling.
_MONOTONIC_ACTIVATIONS = ("linear", "relu")


@keras.saving.register_keras_serializable(package="seqnet")
class MaxPooledConv1D(keras.layers.Conv1D):
    """``Conv1D`` followed by ``GlobalMaxPooling1D``, with the bias and ReLU applied after pooling.

    Max-pooling over time commutes with adding a per-filter bias and with any non-decreasing
    activation: ``max_t relu(z_t + b) == relu(max_t z_t + b)``. Applying them to the pooled
    ``(batch, filters)`` result instead of the ``(batch, steps, filters)`` convolution output
    gives the same numbers (and the same gradients almost everywhere) while the largest tensor
    is only written once and reduced, never passed through elementwise ops.

    Args:
        filters: Output channels, as for ``Conv1D``.
        kernel_size: Window width, as for ``Conv1D``.
        **kwargs: ``Conv1D`` arguments; the activation must be "relu" or linear.

    Examples:
        >>> layer = MaxPooledConv1D(4, 3, activation="relu", data_format="channels_last")
        >>> layer(keras.ops.ones((2, 10, 5))).shape
        (2, 4)
    """

    def __init__(self, filters, kernel_size, **kwargs):
        # seqnet 0.1 saved a `matmul` option (a formulation since removed as no faster).
        if kwargs.pop("matmul", False):
            raise ValueError(
                "This model was saved by seqnet 0.1 with matmul_convolution=True, a formulation "
                "seqnet 0.2 removed; load it with seqnet 0.1 and save its weights."
            )
        super().__init__(filters, kernel_size, **kwargs)
        name = getattr(self.activation, "__name__", str(self.activation))
        if name not in _MONOTONIC_ACTIVATIONS:
            raise ValueError(
                f"MaxPooledConv1D needs an activation that commutes with max-pooling "
                f"({', '.join(_MONOTONIC_ACTIVATIONS)}); got {name!r}."
            )
        plain = (self.padding, tuple(self.strides), tuple(self.dilation_rate), self.groups)
        if plain != ("valid", (1,), (1,), 1) or self.data_format != "channels_last":
            raise ValueError(
                "MaxPooledConv1D supports stride 1, no dilation, 'valid' padding and "
                "channels_last only; use Conv1D and GlobalMaxPooling1D otherwise."
            )

    def call(self, inputs, training=False):
        responses = ops.conv(
            inputs, self.kernel, strides=1, padding="valid", data_format="channels_last"
        )  # (batch, 398, 250)
        gather = bool(training) and GATHERS_POOLING_GRADIENT.get(keras.backend.backend(), False)
        pooled = _max_over_steps(responses, gather=gather)  # (batch, 398, 250) -> (batch, 250)
        if self.use_bias:
            pooled = pooled + self.bias
        return self.activation(pooled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.filters)


def _max_over_steps(responses, *, gather: bool):
    """Max over axis 1; with ``gather``, taken at the argmax, which can be cheaper to train.

    ``ops.max``'s backward compares, counts and rescales the whole (batch, 398, 250) tensor;
    a gather's backward scatters 250 values per
    review. Its forward pays an argmax, slower than ``ops.max`` on every backend, so
    inference keeps ``ops.max``, and training gathers only where that wins
    (``GATHERS_POOLING_GRADIENT``). Values are equal;
    gradients too, but at exact ties, which the gather gives to the first maximum and
    ``ops.max`` splits.
    """
    if not gather:
        return ops.max(responses, axis=1)
    positions = ops.expand_dims(ops.argmax(responses, axis=1), axis=1)  # (batch, 1, 250)
    return ops.take_along_axis(responses, positions, axis=1)[:, 0, :]
