"""Layers seqnet adds to Keras: same parameters and maths as the built-in ones, faster on CPU."""

from __future__ import annotations

import keras
from keras import ops

from seqnet.native import gathers_pooling_gradient


@keras.saving.register_keras_serializable(package="seqnet")
class MatmulConv1D(keras.layers.Conv1D):
    """``Conv1D`` computed as one matrix multiply over the ``kernel_size`` shifted windows.

    For stride 1, no dilation and "valid" padding, a 1D convolution is a matmul of the
    concatenated shifted inputs ``(batch, steps, kernel_size * channels)`` with the kernel
    reshaped to ``(kernel_size * channels, filters)``. Forward and backward are then plain
    GEMMs, which CPU backends run near their peak, while their conv1d backward often is not.
    Weights, their layout and the output are those of ``keras.layers.Conv1D`` (so weights
    transfer both ways); other settings fall back to ``Conv1D``'s own computation.

    Examples:
        >>> layer = MatmulConv1D(4, 3, data_format="channels_last")
        >>> layer(keras.ops.ones((2, 10, 5))).shape
        (2, 8, 4)
    """

    def _is_plain_valid_convolution(self) -> bool:
        return (
            self.padding == "valid"
            and tuple(self.strides) == (1,)
            and tuple(self.dilation_rate) == (1,)
            and self.groups == 1
            and self.data_format == "channels_last"
        )

    def call(self, inputs):
        if not self._is_plain_valid_convolution():
            return super().call(inputs)
        width = self.kernel_size[0]
        steps = inputs.shape[1] - width + 1  # 400 - 3 + 1 = 398
        windows = ops.concatenate(
            [inputs[:, offset : offset + steps, :] for offset in range(width)], axis=-1
        )  # (batch, 398, 3 * 50)
        kernel = ops.reshape(self.kernel, (-1, self.filters))  # (3 * 50, 250), tap-major
        outputs = ops.matmul(windows, kernel)  # (batch, 398, 250)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


# Activations f with max(f(z)) == f(max(z)): non-decreasing, so they commute with max-pooling.
_MONOTONIC_ACTIVATIONS = ("linear", "relu")


@keras.saving.register_keras_serializable(package="seqnet")
class MaxPooledConv1D(MatmulConv1D):
    """``Conv1D`` followed by ``GlobalMaxPooling1D``, with the bias and ReLU applied after pooling.

    Max-pooling over time commutes with adding a per-filter bias and with any non-decreasing
    activation: ``max_t relu(z_t + b) == relu(max_t z_t + b)``. Applying them to the pooled
    ``(batch, filters)`` result instead of the ``(batch, steps, filters)`` convolution output
    gives the same numbers (and the same gradients almost everywhere) while the largest tensor
    is only written once and reduced, never passed through elementwise ops.

    Args:
        filters: Output channels, as for ``Conv1D``.
        kernel_size: Window width, as for ``Conv1D``.
        matmul: Compute the convolution as one GEMM over shifted windows (``MatmulConv1D``)
            instead of the backend's conv op; which is faster depends on the backend.
        **kwargs: ``Conv1D`` arguments; the activation must be "relu" or linear.

    Examples:
        >>> layer = MaxPooledConv1D(4, 3, activation="relu", data_format="channels_last")
        >>> layer(keras.ops.ones((2, 10, 5))).shape
        (2, 4)
    """

    def __init__(self, filters, kernel_size, *, matmul: bool = False, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        name = getattr(self.activation, "__name__", str(self.activation))
        if name not in _MONOTONIC_ACTIVATIONS:
            raise ValueError(
                f"MaxPooledConv1D needs an activation that commutes with max-pooling "
                f"({', '.join(_MONOTONIC_ACTIVATIONS)}); got {name!r}."
            )
        if not self._is_plain_valid_convolution():
            raise ValueError(
                "MaxPooledConv1D supports stride 1, no dilation, 'valid' padding and "
                "channels_last only; use Conv1D and GlobalMaxPooling1D otherwise."
            )
        self.matmul = matmul

    def call(self, inputs, training=False):
        if self.matmul:
            width = self.kernel_size[0]
            steps = inputs.shape[1] - width + 1
            windows = ops.concatenate(
                [inputs[:, offset : offset + steps, :] for offset in range(width)], axis=-1
            )
            responses = ops.matmul(windows, ops.reshape(self.kernel, (-1, self.filters)))
        else:
            responses = ops.conv(
                inputs, self.kernel, strides=1, padding="valid", data_format="channels_last"
            )
        gather = bool(training) and gathers_pooling_gradient(keras.backend.backend())
        pooled = _max_over_steps(responses, gather=gather)  # (batch, 398, 250) -> (batch, 250)
        if self.use_bias:
            pooled = pooled + self.bias
        return self.activation(pooled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.filters)

    def get_config(self):
        return {**super().get_config(), "matmul": self.matmul}


def _max_over_steps(responses, *, gather: bool):
    """Max over axis 1; with ``gather``, taken at the argmax, which can be cheaper to train.

    ``ops.max``'s backward compares, counts and rescales the whole (batch, 398, 250) tensor
    (10 of torch's 41 ms per step on 2 cores); a gather's backward scatters 250 values per
    review. Its forward pays an argmax, slower than ``ops.max`` on every backend, so
    inference keeps ``ops.max``, and training gathers only where that wins
    ([`gathers_pooling_gradient`][seqnet.native.gathers_pooling_gradient]). Values are equal;
    gradients too, but at exact ties, which the gather gives to the first maximum and
    ``ops.max`` splits.
    """
    if not gather:
        return ops.max(responses, axis=1)
    positions = ops.expand_dims(ops.argmax(responses, axis=1), axis=1)  # (batch, 1, 250)
    return ops.take_along_axis(responses, positions, axis=1)[:, 0, :]
