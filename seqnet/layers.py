"""The two layers seqnet's training network adds to Keras, each an exact stand-in for stock ones.

- [`MaxPooledConv1D`][seqnet.layers.MaxPooledConv1D]: ``Conv1D`` + ``GlobalMaxPooling1D``
  fused, with the same parameters and outputs;
- [`BitMaskDropout`][seqnet.layers.BitMaskDropout]: ``Dropout`` with masks drawn more cheaply
  where a backend allows it.

Saved models use the stock layers
(see [`seqnet.model.portable_model`][seqnet.model.portable_model]).
"""

from __future__ import annotations

import keras
from keras import ops

from seqnet import backends

# The max-pooling backward that trains fastest, measured on CPU (2 cores) for (32, 398, 250):
# forward and backward of a gather at the argmax against ops.max's own. torch: 5.2 vs 8.1 ms,
# JAX: +4 % per training step; TensorFlow: 9.2 vs 5.5 ms, as Keras' argmax there adds a
# flush-to-zero pass over the whole tensor.
GATHERS_POOLING_GRADIENT = {"torch": True, "jax": True, "tensorflow": False}

# Where training uses max_pooled_convolution, whose backward reads only the arg-max windows
# instead of the whole (batch, 398, 250) map. A training step at batch 32 x 400 / 250 / 130
# tokens, its speed-up over the dense backward's, side by side on 2 loaded CPU cores
# (benchmarks/sparse_pooling.py): JAX 1.75x / 2.6x / 1.65x, torch 1.8x / 1.25x / 1.1x,
# TensorFlow 1.45x / 1.3x / 0.8-1.0x (two runs): kept there too, as bucketed batches
# average ~250 tokens.
SPARSE_CONVOLUTION_GRADIENT = {"torch": True, "jax": True, "tensorflow": True}

# Where BitMaskDropout thresholds 31 random bits per entry instead of calling Keras' dropout.
# Forward + backward of the embedding's dropout at (32, 400, 50) on 2 CPU cores: torch 1.7
# vs 4.3 ms (torch's bernoulli_ is the cost). JAX: 2.9 vs 2.9 ms, as the threefry words are
# the cost, and 16-bit draws, though twice as fast, would move the rate by 3e-6; TensorFlow:
# 2.6 vs 2.9 ms, within noise. Neither has a replacement.
BIT_MASK_DROPOUT = {"torch": True}


# Activations f with max(f(z)) == f(max(z)): non-decreasing, so they commute with max-pooling.
_MONOTONIC_ACTIVATIONS = ("linear", "relu")


@keras.saving.register_keras_serializable(package="seqnet")
class MaxPooledConv1D(keras.layers.Conv1D):
    """``Conv1D`` followed by ``GlobalMaxPooling1D``, with the bias and ReLU applied after pooling.

    Max-pooling over time commutes with adding a per-filter bias and with any non-decreasing
    activation: ``max_t relu(z_t + b) == relu(max_t z_t + b)``. Applying them to the pooled
    ``(batch, filters)`` result instead of the ``(batch, steps, filters)`` convolution output
    gives the same numbers (and the same gradients almost everywhere) while the largest tensor
    is only written once and reduced, never passed through elementwise ops. In training, where
    ``SPARSE_CONVOLUTION_GRADIENT`` says so, the backward reads only each filter's arg-max
    window ([`max_pooled_convolution`][seqnet.layers.max_pooled_convolution]).

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
        backend = keras.backend.backend()
        if bool(training) and SPARSE_CONVOLUTION_GRADIENT.get(backend, False):
            # A tensor, not the variable: torch's custom gradient sees tensor arguments only.
            kernel = ops.cast(self.kernel, inputs.dtype)
            pooled = max_pooled_convolution(inputs, kernel)  # (batch, 250)
        else:
            responses = ops.conv(
                inputs, self.kernel, strides=1, padding="valid", data_format="channels_last"
            )  # (batch, 398, 250)
            gather = bool(training) and GATHERS_POOLING_GRADIENT.get(backend, False)
            pooled = _max_over_steps(responses, gather=gather)  # (batch, 398, 250) -> (batch, 250)
        if self.use_bias:
            pooled = pooled + self.bias
        return self.activation(pooled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.filters)


@keras.saving.register_keras_serializable(package="seqnet")
class BitMaskDropout(keras.layers.Dropout):
    """``Dropout`` whose training masks come from thresholded random bits where that is faster.

    Where ``BIT_MASK_DROPOUT`` says so, an entry is kept when 31 fresh random bits are at least
    ``round(rate * 2**31)``: the drop probability is within ``2**-32`` of ``rate`` (Keras'
    float32 uniforms resolve ``2**-24``), and kept entries are scaled by ``1 / (1 - rate)``
    as Keras' are. The bits come from the stream Keras' unseeded Dropout draws from on that
    backend (torch's global generator), so seeding and exact resume work as they do for it.
    With a ``seed`` or a ``noise_shape``, or elsewhere, it is Keras' ``Dropout``, whose
    arguments it takes.

    Examples:
        >>> layer = BitMaskDropout(0.5)
        >>> keras.ops.convert_to_numpy(layer(keras.ops.ones((2, 3)), training=False)).tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def call(self, inputs, training=False):
        backend = keras.backend.backend()
        plain = self.seed is None and self.noise_shape is None
        if training and self.rate > 0 and plain and BIT_MASK_DROPOUT.get(backend, False):
            return backends.for_backend().dropout(inputs, self.rate)
        return super().call(inputs, training=training)


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


def max_pooled_convolution(inputs, kernel):
    """``max_t conv(inputs, kernel)[:, t, :]``, with a backward over the arg-max windows only.

    After a global max each text passes gradient to one window per filter: the first
    window reaching the maximum (ties go to the first, as a gather at ``argmax`` does). So
    the kernel's gradient is a sum over ``batch * filters`` windows, and the input's a
    scatter-add of as many kernel columns, instead of two convolutions over the whole map.

    Args:
        inputs: ``(batch, steps, channels)`` float tensor.
        kernel: ``(kernel_size, channels, filters)`` float tensor (not a variable).

    Returns:
        ``(batch, filters)``: the maximum over the ``steps - kernel_size + 1`` windows.
    """
    return _sparse_max_pooled_convolution(inputs, kernel)


@ops.custom_gradient
def _sparse_max_pooled_convolution(inputs, kernel):
    responses = ops.conv(
        inputs, kernel, strides=1, padding="valid", data_format="channels_last"
    )  # (batch, windows, filters)
    specialized = backends.for_backend()
    index = getattr(specialized, "max_and_first_index", _max_and_first_index)
    pooled, first = index(responses)  # (batch, filters) each

    def gradient(*args, upstream=None):
        # JAX and TensorFlow pass the upstream gradient alone; torch passes the inputs first.
        if upstream is None:
            (upstream,) = args
        backward = getattr(specialized, "window_gradients", _window_gradients)
        return backward(inputs, kernel, first, upstream)

    return pooled, gradient


def _max_and_first_index(responses):
    """The max over axis 1 and the first index reaching it: an arg-max from two plain reductions.

    A (value, index) arg-max reduction is 2-3x slower than ``ops.max`` on XLA's CPU; a max
    then a min of the step numbers where the response equals it costs one more cheap pass.
    """
    pooled = ops.max(responses, axis=1)  # (batch, filters)
    steps = ops.shape(responses)[1]
    numbers = ops.expand_dims(ops.arange(steps, dtype="int32"), axis=-1)  # (windows, 1)
    reached = ops.equal(responses, ops.expand_dims(pooled, axis=1))
    return pooled, ops.min(ops.where(reached, numbers, steps), axis=1)


def _window_gradients(inputs, kernel, first, upstream):
    """Gradients w.r.t. ``inputs`` and ``kernel`` when filter f of text b saw window first[b, f].

    Args:
        inputs: ``(batch, steps, channels)``.
        kernel: ``(kernel_size, channels, filters)``.
        first: ``(batch, filters)`` int, the window each filter's maximum came from.
        upstream: ``(batch, filters)``, the gradient of the pooled output.
    """
    batch, steps, channels = ops.shape(inputs)
    width = ops.shape(kernel)[0]
    # Row of the flattened (batch * steps, channels) inputs under tap k of each window.
    rows = ops.expand_dims(first, -1) + ops.arange(width, dtype="int32")  # (batch, filters, K)
    rows = rows + ops.reshape(ops.arange(batch, dtype="int32") * steps, (-1, 1, 1))
    rows = ops.reshape(rows, (-1,))  # (batch * filters * K,)
    flat_inputs = ops.reshape(inputs, (-1, channels))
    windows = ops.reshape(ops.take(flat_inputs, rows, axis=0), (batch, -1, width, channels))
    kernel_gradient = ops.einsum("bf,bfkc->kcf", upstream, windows)
    # Each window's taps, weighted by its filter's upstream gradient: (batch, filters, K, C).
    taps = ops.expand_dims(ops.expand_dims(upstream, -1), -1) * ops.transpose(kernel, (2, 0, 1))
    input_gradient = ops.segment_sum(
        ops.reshape(taps, (-1, channels)), rows, num_segments=batch * steps
    )
    return ops.reshape(input_gradient, (batch, steps, channels)), kernel_gradient
