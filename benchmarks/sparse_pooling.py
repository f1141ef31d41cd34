"""seqnet's exact training shortcuts, one more at a time, against the stock layers (#20).

Run once per backend: ``KERAS_BACKEND=jax python -m benchmarks.sparse_pooling [--rounds 7]``.
Side by side in one process, round after round in alternation, at batch 32 and each length:

- **layer**: forward + backward (gradients w.r.t. inputs, kernel and bias) of the stock
  ``Conv1D(relu)`` + ``GlobalMaxPooling1D``; of ``MaxPooledConv1D`` with Keras' own backward
  (the dense one, as before); and of ``MaxPooledConv1D`` with the backward over the arg-max
  windows only (``seqnet.layers.max_pooled_convolution``);
- **step**: one ``train_on_batch`` of the whole training network (``seqnet.model.build_model``,
  variable length, as bucketed training runs it) with each of the three, and with the sparse
  backward and ``BitMaskDropout``'s masks where the backend has them (seqnet's default).

Each cell is the median over rounds of one call's milliseconds; "x stock" is the median over
rounds of the stock time divided by that formulation's time in the same round.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import keras
import numpy as np

from seqnet import layers
from seqnet.config import LECTURE_RECIPE, ModelConfig
from seqnet.model import build_model, compile_for_training

FORMULATIONS = ("stock", "fused dense", "fused sparse")
# The training step also runs with every shortcut: what seqnet trains with.
STEP_FORMULATIONS = (*FORMULATIONS, "sparse, bit-mask dropout")
BATCH, CHANNELS = 32, 50


@contextlib.contextmanager
def formulation(name: str):
    """Make MaxPooledConv1D train with the sparse backward only for the "sparse" formulations,
    and BitMaskDropout draw its own masks (where the backend has them) only for the last."""
    backend = keras.backend.backend()
    switches = (
        (layers.SPARSE_CONVOLUTION_GRADIENT, "sparse" in name),
        (layers.BIT_MASK_DROPOUT, name == STEP_FORMULATIONS[-1]),
    )
    saved = [dict(switch) for switch, _ in switches]
    for switch, on in switches:
        switch[backend] = on and switch.get(backend, False)
    try:
        yield
    finally:
        for (switch, _), before in zip(switches, saved, strict=True):
            switch.clear()
            switch.update(before)


def _layer(name: str, config: ModelConfig) -> keras.Layer:
    settings = {"activation": "relu", "data_format": "channels_last"}
    if name == "stock":
        return keras.Sequential(
            [
                keras.layers.Conv1D(config.filters, config.kernel_size, **settings),
                keras.layers.GlobalMaxPooling1D(data_format="channels_last"),
            ]
        )
    return layers.MaxPooledConv1D(config.filters, config.kernel_size, **settings)


def layer_call(name: str, config: ModelConfig, length: int) -> Callable[[], object]:
    """A function running one forward + backward of formulation ``name`` on fixed inputs."""
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(BATCH, length, CHANNELS)).astype("float32")
    upstream = rng.normal(size=(BATCH, config.filters)).astype("float32")
    layer = _layer(name, config)
    layer.build(inputs.shape)
    weights = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]

    def objective(inputs, *weights):
        outputs, _ = layer.stateless_call(list(weights), [], inputs, training=True)
        return keras.ops.sum(outputs * keras.ops.convert_to_tensor(upstream))

    return _backend_gradient(objective, [inputs, *weights])


def _backend_gradient(objective, values) -> Callable[[], object]:
    """The gradient of ``objective`` at ``values``, compiled as Keras' trainer compiles a
    step on CPU: jax.jit, tf.function without XLA, torch eager. Blocks until done."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        gradient = jax.jit(jax.grad(objective, argnums=tuple(range(len(values)))))
        return lambda: jax.block_until_ready(gradient(*values))
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(value) for value in values]

        @tf.function
        def gradient():
            with tf.GradientTape() as tape:
                tape.watch(tensors)
                result = objective(*tensors)
            return tape.gradient(result, tensors)

        return lambda: [g.numpy() for g in gradient()]
    import torch

    tensors = [torch.tensor(value, requires_grad=True) for value in values]
    return lambda: torch.autograd.grad(objective(*tensors), tensors)


def step_call(name: str, config: ModelConfig, length: int) -> Callable[[], object]:
    """A function running one training step of the whole network with formulation ``name``."""
    keras.utils.set_random_seed(0)
    if name == "stock":
        model = stock_training_network(config)
    else:
        model = build_model(config, variable_length=True)
    rng = np.random.default_rng(1)
    x = rng.integers(3, config.vocabulary_size, size=(BATCH, length), dtype="int32")
    y = rng.integers(0, 2, size=(BATCH, 1)).astype("float32")
    return lambda: model.train_on_batch(x, y)


def stock_training_network(config: ModelConfig) -> keras.Model:
    """The lecture's network from stock layers, with build_model's logit head and compile."""
    token_ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(config.vocabulary_size, config.embedding_dim)(token_ids)
    x = keras.layers.Dropout(config.dropout_rate)(x)
    x = keras.layers.Conv1D(config.filters, config.kernel_size, activation="relu")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    x = keras.layers.Dense(config.hidden_units, activation="relu")(x)
    x = keras.layers.Dropout(config.dropout_rate)(x)
    model = keras.Model(token_ids, keras.layers.Dense(1)(x))
    compile_for_training(model, config, learning_rate=LECTURE_RECIPE["learning_rate"])
    return model


def time_side_by_side(calls: dict[str, Callable[[], object]], rounds: int, repeats: int):
    """Per formulation, the milliseconds of one call in each round; rounds alternate the
    formulations (the order rotating), after one warm-up call each (compilation)."""
    names = list(calls)
    for name in names:
        with formulation(name):
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            with formulation(name):
                start = time.perf_counter()
                for _ in range(repeats):
                    calls[name]()
                times[name].append((time.perf_counter() - start) / repeats * 1e3)
    return times


def row(piece: str, length: int, times: dict[str, list[float]]) -> str:
    """One markdown row: each formulation's median ms, and its median ratio to stock ("–"
    where a formulation was not timed)."""
    milliseconds, ratios = [], []
    for name in STEP_FORMULATIONS:
        if name not in times:
            milliseconds.append("–")
            ratios.append("–")
            continue
        per_round = [s / t for s, t in zip(times["stock"], times[name], strict=True)]
        milliseconds.append(f"{statistics.median(times[name]):.2f}")
        ratios.append(f"{statistics.median(per_round):.2f}x")
    # The stock formulation's ratio to itself is left out.
    return f"| {piece} | {length} | " + " | ".join(milliseconds + ratios[1:]) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sparse_pooling", description=__doc__
    )
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--repeats", type=int, default=5, help="calls per round (default 5)")
    parser.add_argument("--lengths", default="400,250,130", help="tokens per text, comma-separated")
    args = parser.parse_args(argv)
    config = ModelConfig()
    print(f"backend {keras.backend.backend()}, batch {BATCH}, ms per call (median of rounds)")
    ratios = [f"{name} x stock" for name in STEP_FORMULATIONS[1:]]
    print("| piece | tokens | " + " | ".join([*STEP_FORMULATIONS, *ratios]) + " |")
    print("|---" * (2 + 2 * len(STEP_FORMULATIONS) - 1) + "|")
    pieces = (
        ("conv+max fwd+bwd", layer_call, FORMULATIONS),
        ("training step", step_call, STEP_FORMULATIONS),
    )
    for piece, make, names in pieces:
        for length in (int(text) for text in args.lengths.split(",")):
            calls = {}
            for name in names:
                with formulation(name):
                    calls[name] = make(name, config, length)
            times = time_side_by_side(calls, args.rounds, args.repeats)
            print(row(piece, length, times), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
