"""Train seqnet's model (dropout 0) for two short epochs data-parallel, then on one device.

Run by the tests in a fresh process, because simulated devices must exist before the backend
starts: JAX reads ``XLA_FLAGS`` (set by the test), TensorFlow gets logical CPUs here, PyTorch
runs one copy of this script per ``torchrun`` process, and multi-host runs (JAX_COORDINATOR_ADDRESS,
TF_CONFIG) one per simulated host. Only the chief writes ``--output``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, required=True, help="simulated TensorFlow CPUs")
    parser.add_argument("--samples", type=int, required=True, help="training reviews")
    parser.add_argument("--validation-samples", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True, help="the global batch")
    parser.add_argument("--output", required=True, help=".npz file for weights and histories")
    return parser.parse_args(argv)


def optimizer_state(model) -> list[np.ndarray]:
    """Adam's step count and moments: unlike the weights, they scale with the gradients."""
    import keras

    return [keras.ops.convert_to_numpy(variable) for variable in model.optimizer.variables]


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    import keras

    from seqnet.config import TrainConfig
    from seqnet.data import make_synthetic
    from seqnet.model import build_model
    from seqnet.parallel import open_replicas, simulate_cpu_devices

    if keras.backend.backend() == "tensorflow" and args.devices > 1:
        simulate_cpu_devices(args.devices)
    # The model `seqnet train` builds, without dropout: no randomness that replicas could draw
    # differently from one device.
    config = dataclasses.replace(TrainConfig().model, dropout_rate=0.0)
    data = make_synthetic(samples=args.samples, seed=0)
    validation = (
        data.x_test[: args.validation_samples],
        data.y_test[: args.validation_samples],
    )
    # Two epochs, one call each, as seqnet.train does (it checkpoints in between).
    epochs, options = 2, dict(batch_size=args.batch_size, validation_data=validation, verbose=0)
    # The data-parallel run comes first: a multi-worker strategy or a multi-host JAX job must be
    # set up before the backend runs anything.
    with open_replicas("data-parallel") as replicas:
        with replicas.scope():
            keras.utils.set_random_seed(0)
            model = build_model(config)
        initial = model.get_weights()
        history: dict[str, list[float]] = {}
        for epoch in range(epochs):
            logs = replicas.fit(
                model, data.x_train, data.y_train, epochs=epoch + 1, initial_epoch=epoch, **options
            ).history
            for name, values in logs.items():
                history.setdefault(name, []).extend(values)
        parallel_weights = model.get_weights()
        parallel_optimizer = optimizer_state(model)
        layout = replicas.layout
    if not layout.is_chief:
        return 0
    usable = layout.usable_samples(args.samples)
    reference = build_model(config)  # outside any distribution: one device
    reference.set_weights(initial)
    single = reference.fit(
        data.x_train[:usable], data.y_train[:usable], epochs=epochs, shuffle=False, **options
    )
    np.savez(
        args.output,
        replicas=layout.replicas,
        usable_samples=usable,
        **{f"initial_weight_{i}": weight for i, weight in enumerate(initial)},
        **{f"parallel_weight_{i}": weight for i, weight in enumerate(parallel_weights)},
        **{f"single_weight_{i}": weight for i, weight in enumerate(reference.get_weights())},
        **{f"parallel_optimizer_{i}": value for i, value in enumerate(parallel_optimizer)},
        **{f"single_optimizer_{i}": value for i, value in enumerate(optimizer_state(reference))},
        **{f"parallel_history_{name}": values for name, values in history.items()},
        **{f"single_history_{name}": values for name, values in single.history.items()},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
