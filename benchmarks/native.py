"""Native baselines: the lecture's network hand-written in plain PyTorch, plain JAX with optax,
and plain TensorFlow (no Keras), so the benchmarks show what the Keras layer costs or gains.

Every framework is imported inside the function that needs it: importing this module imports none.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from seqnet.config import ModelConfig

TrainRound = Callable[[], None]  # one pass over the pre-batched benchmark data


def native_training_round(
    backend: str,
    config: ModelConfig,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    device: str,
    *,
    learning_rate: float,
) -> TrainRound:
    """A function that trains a native copy of the network once over ``x``/``y`` on ``device``.

    Data is moved to the device before the function is returned, so it is not timed; the
    function blocks until the last step has finished.
    """
    builders = {"torch": _torch_round, "jax": _jax_round, "tensorflow": _tensorflow_round}
    if backend not in builders:
        raise ValueError(
            f"No native baseline for backend {backend!r}; use one of {sorted(builders)}."
        )
    return builders[backend](config, x, y, batch_size, device, learning_rate)


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int):
    count = len(x) // batch_size
    return [
        (x[i * batch_size : (i + 1) * batch_size], y[i * batch_size : (i + 1) * batch_size])
        for i in range(count)
    ]


# --- PyTorch ---------------------------------------------------------------------------------


def _torch_round(config, x, y, batch_size, device, learning_rate) -> TrainRound:
    import torch
    from torch import nn

    torch_device = torch.device("cuda" if device.startswith("gpu") else "cpu")

    class ImdbCnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(config.vocabulary_size, config.embedding_dim)
            self.dropout = nn.Dropout(config.dropout_rate)
            self.convolution = nn.Conv1d(config.embedding_dim, config.filters, config.kernel_size)
            self.hidden = nn.Linear(config.filters, config.hidden_units)
            self.output = nn.Linear(config.hidden_units, 1)

        def forward(self, token_ids):
            embedded = self.dropout(self.embedding(token_ids))  # (batch, 400, 50)
            features = torch.relu(self.convolution(embedded.transpose(1, 2)))  # (batch, 250, 398)
            pooled = features.amax(dim=2)  # (batch, 250)
            hidden = self.dropout(torch.relu(self.hidden(pooled)))
            return self.output(hidden)[:, 0]  # logits, (batch,)

    model = ImdbCnn().to(torch_device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_function = nn.BCEWithLogitsLoss()
    batches = [
        (
            torch.from_numpy(bx).long().to(torch_device),
            torch.from_numpy(by).float().to(torch_device),
        )
        for bx, by in _batches(x, y, batch_size)
    ]

    def train_round() -> None:
        for token_ids, labels in batches:
            optimizer.zero_grad(set_to_none=True)
            loss_function(model(token_ids), labels).backward()
            optimizer.step()
        if torch_device.type == "cuda":
            torch.cuda.synchronize()

    return train_round


# --- JAX + optax -----------------------------------------------------------------------------


def _jax_round(config, x, y, batch_size, device, learning_rate) -> TrainRound:
    import jax
    import jax.numpy as jnp
    import optax

    platform_name = "gpu" if device.startswith("gpu") else "cpu"
    target = jax.devices(platform_name)[int(device.split(":")[1])]
    keys = jax.random.split(jax.random.key(0), 6)

    def uniform(key, shape, fan_in, fan_out):  # Glorot uniform, as Keras initializes
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return jax.random.uniform(key, shape, jnp.float32, -limit, limit)

    e, f, k, h = config.embedding_dim, config.filters, config.kernel_size, config.hidden_units
    params = {
        "embedding": jax.random.uniform(
            keys[0], (config.vocabulary_size, e), minval=-0.05, maxval=0.05
        ),
        "kernel": uniform(keys[1], (k, e, f), k * e, k * f),  # (width, in, out)
        "conv_bias": jnp.zeros(f),
        "hidden": uniform(keys[2], (f, h), f, h),
        "hidden_bias": jnp.zeros(h),
        "output": uniform(keys[3], (h, 1), h, 1),
        "output_bias": jnp.zeros(1),
    }
    params = jax.device_put(params, target)
    optimizer = optax.adam(learning_rate)
    state = jax.device_put(optimizer.init(params), target)
    rate = config.dropout_rate

    def dropout(key, values):
        keep = jax.random.bernoulli(key, 1.0 - rate, values.shape)
        return jnp.where(keep, values / (1.0 - rate), 0.0)

    def loss(params, token_ids, labels, key):
        first, second = jax.random.split(key)
        embedded = dropout(first, params["embedding"][token_ids])  # (batch, 400, 50)
        features = jax.lax.conv_general_dilated(
            embedded, params["kernel"], (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")
        )
        features = jax.nn.relu(features + params["conv_bias"])  # (batch, 398, 250)
        hidden = jax.nn.relu(features.max(axis=1) @ params["hidden"] + params["hidden_bias"])
        logits = (dropout(second, hidden) @ params["output"] + params["output_bias"])[:, 0]
        return optax.sigmoid_binary_cross_entropy(logits, labels).mean()

    @jax.jit
    def train_step(params, state, token_ids, labels, key):
        grads = jax.grad(loss)(params, token_ids, labels, key)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    batches = [
        (jax.device_put(bx, target), jax.device_put(by.astype(np.float32), target))
        for bx, by in _batches(x, y, batch_size)
    ]
    carried = {"params": params, "state": state, "key": keys[4]}

    def train_round() -> None:
        params, state, key = carried["params"], carried["state"], carried["key"]
        for token_ids, labels in batches:
            key, step_key = jax.random.split(key)
            params, state = train_step(params, state, token_ids, labels, step_key)
        jax.block_until_ready(params)
        carried.update(params=params, state=state, key=key)

    return train_round


# --- TensorFlow ------------------------------------------------------------------------------


def _tensorflow_round(config, x, y, batch_size, device, learning_rate) -> TrainRound:
    import tensorflow as tf

    tf_device = "/GPU:" + device.split(":")[1] if device.startswith("gpu") else "/CPU:0"
    e, f, k, h = config.embedding_dim, config.filters, config.kernel_size, config.hidden_units
    glorot = tf.initializers.GlorotUniform(seed=0)
    with tf.device(tf_device):
        variables = [
            tf.Variable(tf.random.uniform((config.vocabulary_size, e), -0.05, 0.05, seed=0)),
            tf.Variable(glorot((k, e, f))),
            tf.Variable(tf.zeros(f)),
            tf.Variable(glorot((f, h))),
            tf.Variable(tf.zeros(h)),
            tf.Variable(glorot((h, 1))),
            tf.Variable(tf.zeros(1)),
        ]
        moments = [
            (tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in variables
        ]
        step = tf.Variable(0.0)
        batches = [
            (tf.constant(bx), tf.constant(by.astype(np.float32)))
            for bx, by in _batches(x, y, batch_size)
        ]
    rate = config.dropout_rate

    def logits(token_ids):
        embedding, kernel, conv_bias, hidden, hidden_bias, output, output_bias = variables
        embedded = tf.nn.dropout(tf.nn.embedding_lookup(embedding, token_ids), rate)
        features = tf.nn.relu(tf.nn.conv1d(embedded, kernel, 1, "VALID") + conv_bias)
        pooled = tf.reduce_max(features, axis=1)  # (batch, 250)
        hidden_out = tf.nn.dropout(tf.nn.relu(pooled @ hidden + hidden_bias), rate)
        return (hidden_out @ output + output_bias)[:, 0]

    @tf.function
    def train_step(token_ids, labels):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits(token_ids))
            )
        step.assign_add(1.0)
        correction = tf.sqrt(1.0 - 0.999**step) / (1.0 - 0.9**step)
        for variable, gradient, (m, v) in zip(
            variables, tape.gradient(loss, variables), moments, strict=True
        ):  # Adam, written out: plain TensorFlow has no optimizer outside Keras
            gradient = tf.convert_to_tensor(gradient)
            m.assign(0.9 * m + 0.1 * gradient)
            v.assign(0.999 * v + 0.001 * tf.square(gradient))
            variable.assign_sub(learning_rate * correction * m / (tf.sqrt(v) + 1e-7))

    def train_round() -> None:
        with tf.device(tf_device):
            for token_ids, labels in batches:
                train_step(token_ids, labels)
        variables[0].numpy()  # wait for the last step

    return train_round


# --- the convolution alone, for the step-time profile ----------------------------------------


def native_convolution_round(
    backend: str, config: ModelConfig, batch_size: int, steps: int, device: str
) -> TrainRound:
    """``steps`` forward and backward passes of the network's convolution alone, natively.

    The convolution holds 99 % of a training step's FLOPs, so its time is the floor under
    every step; the benchmark's profile compares whole steps against it. Gradients flow to
    both the input (the embedding needs them) and the kernel, as in training.
    """
    builders = {
        "torch": _torch_convolution,
        "jax": _jax_convolution,
        "tensorflow": _tensorflow_convolution,
    }
    if backend not in builders:
        raise ValueError(f"No native convolution for backend {backend!r}.")
    return builders[backend](config, batch_size, steps, device)


def _convolution_arrays(config: ModelConfig, batch_size: int):
    random = np.random.default_rng(0)
    steps = config.sequence_length - config.kernel_size + 1
    shape = (config.kernel_size, config.embedding_dim, config.filters)
    return (
        random.normal(size=(batch_size, config.sequence_length, config.embedding_dim)),
        random.normal(size=shape) / np.sqrt(config.kernel_size * config.embedding_dim),
        random.normal(size=(batch_size, steps, config.filters)),  # the output's gradient
    )


def _torch_convolution(config, batch_size, steps, device) -> TrainRound:
    import torch

    torch_device = torch.device("cuda" if device.startswith("gpu") else "cpu")
    inputs, kernel, output_gradient = (
        torch.from_numpy(array).float().to(torch_device)
        for array in _convolution_arrays(config, batch_size)
    )
    inputs = inputs.transpose(1, 2).contiguous().requires_grad_()  # (batch, 50, 400)
    kernel = kernel.permute(2, 1, 0).contiguous().requires_grad_()  # (250, 50, 3)
    output_gradient = output_gradient.transpose(1, 2).contiguous()  # (batch, 250, 398)

    def convolution_round() -> None:
        for _ in range(steps):
            inputs.grad = kernel.grad = None
            torch.nn.functional.conv1d(inputs, kernel).backward(output_gradient)
        if torch_device.type == "cuda":
            torch.cuda.synchronize()

    return convolution_round


def _jax_convolution(config, batch_size, steps, device) -> TrainRound:
    import jax

    platform_name = "gpu" if device.startswith("gpu") else "cpu"
    target = jax.devices(platform_name)[int(device.split(":")[1])]
    arrays = [
        jax.device_put(a.astype(np.float32), target)
        for a in _convolution_arrays(config, batch_size)
    ]

    def convolution(inputs, kernel):
        return jax.lax.conv_general_dilated(
            inputs, kernel, (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")
        )

    @jax.jit
    def forward_and_backward(inputs, kernel, output_gradient):
        outputs, pullback = jax.vjp(convolution, inputs, kernel)
        # The sum keeps the forward pass alive: the gradients of a linear map do not need its
        # outputs, so XLA would otherwise drop the forward and time two thirds of the work.
        return jax.numpy.sum(outputs), *pullback(output_gradient)

    def convolution_round() -> None:
        for _ in range(steps):
            gradients = forward_and_backward(*arrays)
        jax.block_until_ready(gradients)

    convolution_round()  # compile, untimed
    return convolution_round


def _tensorflow_convolution(config, batch_size, steps, device) -> TrainRound:
    import tensorflow as tf

    tf_device = "/GPU:" + device.split(":")[1] if device.startswith("gpu") else "/CPU:0"
    with tf.device(tf_device):
        inputs, kernel, output_gradient = (
            tf.constant(a, tf.float32) for a in _convolution_arrays(config, batch_size)
        )

    @tf.function
    def forward_and_backward():
        with tf.GradientTape() as tape:
            tape.watch([inputs, kernel])
            outputs = tf.nn.conv1d(inputs, kernel, 1, "VALID")
        gradients = tape.gradient(outputs, [inputs, kernel], output_gradients=output_gradient)
        return tf.reduce_sum(outputs), *gradients  # the sum keeps the forward alive, as in JAX

    def convolution_round() -> None:
        with tf.device(tf_device):
            for _ in range(steps):
                gradients = forward_and_backward()
        gradients[2].numpy()  # wait for the last step

    convolution_round()  # trace, untimed
    return convolution_round
