"""JAX's data-parallel engine: ``keras.distribution.DataParallel`` over every process's devices.

On several hosts ``jax.distributed.initialize`` runs first (see
[`start_jax_processes`][seqnet.parallel.jax_engine.start_jax_processes]).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import numpy as np

from seqnet.parallel.replicas import (
    ReplicaLayout,
    Replicas,
    environment_integer,
    keras_fit,
    trimmed,
)

# Environment variables seqnet reads for a multi-host JAX run (JAX itself reads only the first).
JAX_COORDINATOR_VARIABLE = "JAX_COORDINATOR_ADDRESS"
JAX_PROCESS_COUNT_VARIABLE = "JAX_NUM_PROCESSES"
JAX_PROCESS_ID_VARIABLE = "JAX_PROCESS_ID"


def start_jax_processes() -> None:
    """Join a multi-host JAX job when ``JAX_COORDINATOR_ADDRESS`` is set; otherwise do nothing.

    ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0) is read by JAX itself; seqnet passes
    ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` on. When those two are unset, JAX detects them
    from Slurm, Open MPI or a TPU pod. Must run before any JAX computation.
    """
    import jax

    if not os.environ.get(JAX_COORDINATOR_VARIABLE) or jax.distributed.is_initialized():
        return
    jax.distributed.initialize(
        num_processes=environment_integer(JAX_PROCESS_COUNT_VARIABLE),
        process_id=environment_integer(JAX_PROCESS_ID_VARIABLE),
    )


@contextlib.contextmanager
def open_engine() -> Iterator[Replicas]:
    import jax
    import keras

    start_jax_processes()
    devices = keras.distribution.list_devices()  # every process's devices: GPUs, else CPUs
    # Each process feeds its own slice of the data (see _jax_fit), so Keras must not re-shard.
    distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    layout = ReplicaLayout(
        strategy="data-parallel",
        engine="keras.distribution.DataParallel",
        devices=tuple(f"{device.platform}:{device.id}" for device in jax.local_devices()),
        replicas=len(devices),
        processes=jax.process_count(),
        process_index=jax.process_index(),
    )
    # The distribution is current only while building and training: saving creates variables,
    # which under a multi-host distribution would wait for every process.
    fit = functools.partial(_jax_fit, distribution=distribution)
    yield Replicas(layout, fit, distribution.scope)


def _jax_fit(layout: ReplicaLayout, model, x, y, *, distribution, batch_size, **options):
    # Keras' JAX trainer takes each process's share of a global batch and assembles the global,
    # device-sharded array; every share of a step must split evenly over the local devices.
    x, y = _process_share(layout, x, y)
    if options["validation_data"] is not None:
        options["validation_data"] = _process_share(layout, *options["validation_data"])
    with distribution.scope():
        return keras_fit(layout, model, x, y, batch_size=batch_size // layout.processes, **options)


def _process_share(layout: ReplicaLayout, x: np.ndarray, y: np.ndarray):
    """This process's strided share, like DistributedSampler's: step k's shares form batch k."""
    x, y = trimmed(layout, x, y)
    step = layout.processes
    return x[layout.process_index :: step], y[layout.process_index :: step]


# --- TensorFlow -----------------------------------------------------------------------------
