"""The replica API every engine implements: a layout, a model scope and a ``fit``.

``open_replicas(strategy)`` picks the engine for the current Keras backend; the engines
themselves live in ``jax_engine``, ``tensorflow_engine`` and ``torch_engine`` and are imported
only when chosen, so importing this module loads no backend.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from seqnet.config import DISTRIBUTE_STRATEGIES, require_choice

if TYPE_CHECKING:
    import keras

# The module that opens each backend's data-parallel engine (its ``open_engine()``).
ENGINE_MODULES = {
    "jax": "seqnet.parallel.jax_engine",
    "tensorflow": "seqnet.parallel.tensorflow_engine",
    "torch": "seqnet.parallel.torch_engine",
}


@dataclass(frozen=True)
class ReplicaLayout:
    """Where one run's replicas live: the same model on every device, each fed a batch slice."""

    strategy: str = "none"  # one of DISTRIBUTE_STRATEGIES
    engine: str = "keras.Model.fit"  # the framework mechanism that averages the gradients
    devices: tuple[str, ...] = ()  # this process's devices
    replicas: int = 1  # model copies over all processes, one per device
    processes: int = 1  # hosts or torchrun workers taking part
    process_index: int = 0  # 0 is the chief: the only process that writes files

    def __post_init__(self) -> None:
        require_choice("ReplicaLayout", "strategy", self.strategy, DISTRIBUTE_STRATEGIES)
        if self.replicas < 1 or self.processes < 1 or self.replicas % self.processes:
            raise ValueError(
                f"{self.replicas} replicas cannot be spread evenly over {self.processes} "
                "processes; give every host the same number of devices."
            )
        if not 0 <= self.process_index < self.processes:
            raise ValueError(f"process index {self.process_index} is not in [0, {self.processes}).")

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run folder (process 0)."""
        return self.process_index == 0

    def per_replica_batch_size(self, batch_size: int) -> int:
        """Each replica's share of the global ``batch_size``, or a ValueError if it is uneven."""
        if batch_size < self.replicas or batch_size % self.replicas:
            below = max(self.replicas, batch_size - batch_size % self.replicas)
            raise ValueError(
                f"--batch-size {batch_size} is the global batch, split evenly over "
                f"{self.replicas} replicas (devices): it must be a multiple of {self.replicas}, "
                f"e.g. {below} or {below + self.replicas}."
            )
        return batch_size // self.replicas

    def usable_samples(self, count: int) -> int:
        """The largest multiple of the replica count not above ``count``: one epoch's samples."""
        usable = count - count % self.replicas
        if usable == 0:
            raise ValueError(
                f"{count} samples cannot be shared by {self.replicas} replicas; "
                f"use at least {self.replicas}."
            )
        return usable

    def describe(self) -> str:
        """One line for the user: how many replicas, where, and by which engine."""
        hosts = f" in {self.processes} processes" if self.processes > 1 else ""
        shown = ", ".join(self.devices[:4]) + (", …" if len(self.devices) > 4 else "")
        if self.strategy == "none":
            return f"Training on one device ({shown or 'default'})."
        alone = " Only one device takes part: an ordinary one-device run." * (self.replicas == 1)
        return (
            f"Data-parallel training: {self.replicas} replica(s){hosts} via {self.engine}; "
            f"this process's devices: {shown}.{alone}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values for metrics.json."""
        return {**asdict(self), "devices": list(self.devices)}


@dataclass(frozen=True)
class Replicas:
    """A backend's data-parallel engine, bound to a layout.

    Build or load the model inside [`scope`][seqnet.parallel.Replicas.scope], then train it
    with [`fit`][seqnet.parallel.Replicas.fit]. Between calls nothing is distributed, so
    saving (on the chief only) waits for no other process.
    """

    layout: ReplicaLayout
    engine_fit: Callable[..., Any] = field(repr=False)
    engine_scope: Callable[[], contextlib.AbstractContextManager] = field(
        default=contextlib.nullcontext, repr=False
    )

    def scope(self) -> contextlib.AbstractContextManager:
        """Where to create the model: JAX and TensorFlow then place its variables on every
        replica (PyTorch copies them when training starts)."""
        return self.engine_scope()

    def fit(
        self,
        model: keras.Model,
        x: np.ndarray,
        y: np.ndarray,
        *,
        batch_size: int,
        epochs: int,
        initial_epoch: int = 0,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        verbose: int | str = "auto",
    ) -> keras.callbacks.History:
        """Train on global batches of ``x, y``, in their order (no shuffling).

        Every process passes the same arrays, shuffled the same way, and takes its share of
        each batch.
        """
        self.layout.per_replica_batch_size(batch_size)  # fail before any collective starts
        self.layout.usable_samples(len(x))
        return self.engine_fit(
            self.layout,
            model,
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            initial_epoch=initial_epoch,
            validation_data=validation_data,
            callbacks=list(callbacks),
            verbose=verbose if self.layout.is_chief else 0,
        )


@contextlib.contextmanager
def open_replicas(strategy: str = "data-parallel", *, verbose: bool = False) -> Iterator[Replicas]:
    """Set up ``strategy`` for the current Keras backend for the duration of the block.

    With one device, "data-parallel" is a one-replica run through the same engine. Under
    PyTorch without ``torchrun`` it is a plain single-process run; with ``verbose`` the chief
    prints a line saying which case applies.
    """
    import keras

    backend = keras.backend.backend()
    if require_choice("open_replicas", "strategy", strategy, DISTRIBUTE_STRATEGIES) == "none":
        opener = _single_device_replicas
    elif backend in ENGINE_MODULES:
        opener = importlib.import_module(ENGINE_MODULES[backend]).open_engine
    else:
        choices = ", ".join(ENGINE_MODULES)
        raise ValueError(f"data-parallel training supports {choices}, not {backend!r}.")
    with opener() as replicas:
        if verbose and strategy != "none" and replicas.layout.is_chief:
            print(replicas.layout.describe(), flush=True)
        yield replicas


@contextlib.contextmanager
def _single_device_replicas() -> Iterator[Replicas]:
    yield Replicas(ReplicaLayout(), keras_fit)


def keras_fit(
    layout: ReplicaLayout, model: keras.Model, x, y, **options
) -> keras.callbacks.History:
    """``keras.Model.fit`` on arrays the caller already shuffled, identically on every process.

    The one-device engine, and the path every engine built on Keras' own ``fit`` takes.
    """
    return model.fit(x, y, shuffle=False, **options)


def trimmed(layout: ReplicaLayout, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first ``layout.usable_samples`` samples: every replica's share equally large."""
    usable = layout.usable_samples(len(x))
    return x[:usable], y[:usable]


def environment_integer(name: str) -> int | None:
    """The integer in environment variable ``name``, None where it is unset or empty."""
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}.") from None
