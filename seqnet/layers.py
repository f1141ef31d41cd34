"""Layers seqnet adds to Keras: same parameters and maths as the built-in ones, faster on CPU."""

from __future__ import annotations

import keras
from keras import ops


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
