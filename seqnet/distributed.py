"""Data-parallel training through each backend's own engine: seqnet's only framework-specific code.

``open_replicas("data-parallel")`` sets up the backend's data-parallel machinery and yields a
[`Replicas`][seqnet.distributed.Replicas]: build or load the model inside ``replicas.scope()``,
then train it with ``replicas.fit`` (the arguments of ``keras.Model.fit``):

- JAX: ``keras.distribution.DataParallel`` over ``keras.distribution.list_devices()``; on several
  hosts ``jax.distributed.initialize`` first (see
  [`start_jax_processes`][seqnet.distributed.start_jax_processes]).
- TensorFlow: ``tf.distribute.MirroredStrategy`` over this host's GPUs (or its logical CPUs), or
  ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names several workers.
- PyTorch: ``torch.distributed`` with ``DistributedDataParallel``, one process per device started
  by ``torchrun`` (gloo on CPU, nccl on GPU), each process fed a ``DistributedSampler`` share.

Batch semantics, the same for every backend: ``batch_size`` is the *global* batch, the reviews of
one optimizer step summed over all replicas; each replica gets ``batch_size / replicas`` of them,
so ``batch_size`` must be a multiple of the replica count. Each epoch uses the largest multiple
of the replica count not above the number of training samples (at most ``replicas - 1`` are left
out), so every replica's share of every step is equally large and the averaged gradient is
exactly the gradient of the mean loss over the global batch, as on one device.

Every process passes the same, already shuffled arrays; each takes its own share. Frameworks are
imported inside functions only: importing this module loads no backend.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from seqnet.config import DISTRIBUTE_STRATEGIES, ModelConfig

if TYPE_CHECKING:
    import keras

# Environment variables seqnet reads for a multi-host JAX run (JAX itself reads only the first).
JAX_COORDINATOR_VARIABLE = "JAX_COORDINATOR_ADDRESS"
JAX_PROCESS_COUNT_VARIABLE = "JAX_NUM_PROCESSES"
JAX_PROCESS_ID_VARIABLE = "JAX_PROCESS_ID"


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
        check_strategy(self.strategy)
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

    Build or load the model inside [`scope`][seqnet.distributed.Replicas.scope], then train it
    with [`fit`][seqnet.distributed.Replicas.fit]. Between calls nothing is distributed, so
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

        Every process passes the same arrays and takes its share of each batch. Like
        ``seqnet.train.fit``: the caller shuffles, the same way on every process.
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


def check_strategy(strategy: str) -> str:
    """Return ``strategy`` if seqnet knows it, else raise a ValueError naming the choices."""
    if strategy not in DISTRIBUTE_STRATEGIES:
        raise ValueError(
            f"Unknown distribution strategy {strategy!r}; choose one of "
            f"{', '.join(DISTRIBUTE_STRATEGIES)}."
        )
    return strategy


@contextlib.contextmanager
def open_replicas(strategy: str = "data-parallel", *, verbose: bool = False) -> Iterator[Replicas]:
    """Set up ``strategy`` for the current Keras backend for the duration of the block.

    With one device, "data-parallel" is a one-replica run through the same engine. Under
    PyTorch without ``torchrun`` it is a plain single-process run; with ``verbose`` the chief
    prints a line saying which case applies.
    """
    import keras

    backend = keras.backend.backend()
    openers = {"jax": _jax_replicas, "tensorflow": _tensorflow_replicas, "torch": _torch_replicas}
    if check_strategy(strategy) == "none":
        opener = _single_device_replicas
    elif backend in openers:
        opener = openers[backend]
    else:
        raise ValueError(f"data-parallel training supports {', '.join(openers)}, not {backend!r}.")
    with opener() as replicas:
        if verbose and strategy != "none" and replicas.layout.is_chief:
            print(replicas.layout.describe(), flush=True)
        yield replicas


@contextlib.contextmanager
def _single_device_replicas() -> Iterator[Replicas]:
    yield Replicas(ReplicaLayout(), _keras_fit)


def _keras_fit(layout: ReplicaLayout, model, x, y, **options):
    """``keras.Model.fit`` through seqnet's one-device loop (no shuffling: the caller shuffled,
    identically on every process), so benchmarks and every engine built on fit share one path."""
    from seqnet.train import fit

    return fit(model, x, y, **options)


def _trimmed(layout: ReplicaLayout, x: np.ndarray, y: np.ndarray):
    usable = layout.usable_samples(len(x))
    return x[:usable], y[:usable]


# --- JAX ------------------------------------------------------------------------------------


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
        num_processes=_environment_integer(JAX_PROCESS_COUNT_VARIABLE),
        process_id=_environment_integer(JAX_PROCESS_ID_VARIABLE),
    )


def _environment_integer(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}.") from None


@contextlib.contextmanager
def _jax_replicas() -> Iterator[Replicas]:
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
        return _keras_fit(layout, model, x, y, batch_size=batch_size // layout.processes, **options)


def _process_share(layout: ReplicaLayout, x: np.ndarray, y: np.ndarray):
    """This process's strided share, like DistributedSampler's: step k's shares form batch k."""
    x, y = _trimmed(layout, x, y)
    step = layout.processes
    return x[layout.process_index :: step], y[layout.process_index :: step]


# --- TensorFlow -----------------------------------------------------------------------------


@contextlib.contextmanager
def _tensorflow_replicas() -> Iterator[Replicas]:
    cluster = tensorflow_cluster()
    strategy = _tensorflow_strategy(cluster)
    layout = ReplicaLayout(
        strategy="data-parallel",
        engine=(
            "tf.distribute.MultiWorkerMirroredStrategy (seqnet's training loop)"
            if cluster.processes > 1
            else "tf.distribute.MirroredStrategy"
        ),
        # "/job:worker/replica:0/task:0/device:GPU:0" -> "GPU:0"
        devices=tuple(name.rsplit("device:", 1)[-1] for name in strategy.extended.worker_devices),
        replicas=strategy.num_replicas_in_sync,
        processes=cluster.processes,
        process_index=cluster.process_index,
    )
    # Keras' TensorFlow trainer keeps the strategy of the scope the model was built in and
    # enters it itself in fit, so the scope is needed only while the model is created.
    fit = functools.partial(_tensorflow_fit, strategy=strategy, loops={})
    yield Replicas(layout, fit, strategy.scope)


@dataclass(frozen=True)
class TensorFlowCluster:
    """The workers named by ``TF_CONFIG``; one process when it is unset."""

    processes: int = 1
    process_index: int = 0


def tensorflow_cluster(tf_config: str | None = None) -> TensorFlowCluster:
    """Parse ``TF_CONFIG`` (default: the environment's): worker count and this task's index.

    The chief is process 0; without a "chief" task, worker 0 is the chief, as in TensorFlow.
    """
    text = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not text.strip():
        return TensorFlowCluster()
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        if task["type"] not in ("chief", "worker"):
            raise ValueError(f"task type {task['type']!r} takes no part in training")
        chiefs = len(cluster.get("chief", []))
        offset = 0 if task["type"] == "chief" else chiefs
        return TensorFlowCluster(chiefs + len(cluster.get("worker", [])), offset + task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"TF_CONFIG must be JSON like {{'cluster': {{'worker': ['host:port', ...]}}, "
            f"'task': {{'type': 'worker', 'index': 0}}}}: {error}"
        ) from None


def _tensorflow_strategy(cluster: TensorFlowCluster):
    import tensorflow as tf

    if cluster.processes > 1:
        # Reads TF_CONFIG; it must exist before any TensorFlow op runs in this process.
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy(devices=[device.name for device in devices])


def _tensorflow_fit(layout: ReplicaLayout, model, x, y, *, strategy, loops: dict, **options):
    # tf.distribute splits each global batch over the replicas itself; trimming keeps the last
    # batch evenly divisible, so no replica's share is smaller than another's and the averaged
    # gradient matches one device's.
    x, y = _trimmed(layout, x, y)
    if layout.processes == 1:
        return _keras_fit(layout, model, x, y, **options)
    if id(model) not in loops:  # trace the steps once per model, not once per epoch
        loops[id(model)] = _TensorFlowSteps.create(strategy, model, x[:1], y[:1])
    return _tensorflow_multi_worker_fit(strategy, loops[id(model)], model, x, y, **options)


@dataclass(frozen=True)
class _TensorFlowSteps:
    """The traced training and evaluation steps of one model under a multi-worker strategy."""

    train: Callable
    evaluate: Callable

    @classmethod
    def create(cls, strategy, model, x, y) -> _TensorFlowSteps:
        # A tf.function under strategy.run may not create variables: make the optimizer's and
        # the loss's now, in the strategy's scope.
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
            model.compute_loss(x=x, y=y, y_pred=model(x, training=False), training=False)
        return cls(
            train=_tensorflow_step(strategy, model, training=True),
            evaluate=_tensorflow_step(strategy, model, training=False),
        )


def _tensorflow_multi_worker_fit(
    strategy, steps: _TensorFlowSteps, model, x, y, *, batch_size, validation_data, **options
):
    """seqnet's own loop for MultiWorkerMirroredStrategy, where Keras 3's fit fails.

    Keras 3.15's fit reduces sample batches and step outputs in ways the collective strategy
    rejects (keras-team/keras#20585, tensorflow/tensorflow#72388); the step is Keras' own
    (compute_loss, optimizer.apply) run by ``strategy.run``.
    """
    train_batches = _tensorflow_global_batches(strategy, x, y, batch_size)

    def train_epoch(epoch: int, callback_list) -> dict:
        return _step_through(train_batches, steps.train, callback_list, model)

    def evaluate() -> dict:
        batches = _tensorflow_global_batches(strategy, *validation_data, batch_size)
        logs = _step_through(batches, steps.evaluate, None, model)
        return {f"val_{name}": value for name, value in logs.items()}

    evaluation = evaluate if validation_data is not None else None
    return _run_epochs(model, -(-len(x) // batch_size), train_epoch, evaluation, **options)


def _tensorflow_global_batches(strategy, x, y, batch_size: int):
    import tensorflow as tf

    options = tf.data.Options()
    # Each worker takes its replicas' slices of every global batch (not whole files).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _tensorflow_step(strategy, model, *, training: bool):
    """One global step: (loss sum, correct predictions, samples) summed over all replicas."""
    import tensorflow as tf

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            predictions = model(x, training=training)
            # Keras divides a loss by the replica count under tf.distribute, so the optimizer's
            # all-reduce SUM of the replicas' gradients is their mean over the global batch.
            loss = model.compute_loss(x=x, y=y, y_pred=predictions, training=training)
        if training:
            weights = model.trainable_weights
            model.optimizer.apply(tape.gradient(model.optimizer.scale_loss(loss), weights), weights)
        count = tf.cast(tf.shape(y)[0], "float32")
        mean_loss = loss * strategy.num_replicas_in_sync  # undo that division for the logs
        correct = tf.reduce_sum(_binary_accuracy(y, predictions))
        return tf.stack([tf.math.multiply_no_nan(mean_loss, count), correct, count])

    @tf.function
    def step(batch):
        sums = strategy.run(replica_step, args=batch)
        return strategy.reduce("SUM", sums, axis=None)

    return lambda batch: step(batch).numpy()


# --- seqnet's own epoch loop (TensorFlow on several hosts, PyTorch) --------------------------


def _binary_accuracy(y, predictions):
    """1.0 where the thresholded prediction equals the label: the model's "accuracy" metric."""
    import keras

    return keras.metrics.binary_accuracy(y, predictions)


def _step_through(batches, step: Callable, callback_list, model) -> dict:
    """Run ``step`` (returning global sums) on every batch; stop early when a callback asks."""
    totals = np.zeros(3)
    for index, batch in enumerate(batches):
        if callback_list is not None:
            callback_list.on_train_batch_begin(index)
        totals += step(batch)
        if callback_list is not None:
            # The sums are global, so every process sees the same logs and stops alike.
            callback_list.on_train_batch_end(index, _mean_logs(totals))
            if model.stop_training:
                break
    return _mean_logs(totals)


def _mean_logs(totals: np.ndarray) -> dict:
    """Loss and accuracy from (loss sum, correct predictions, samples)."""
    loss_sum, correct, count = (float(value) for value in totals)
    return {"loss": loss_sum / count, "accuracy": correct / count}


def _run_epochs(model, steps, train_epoch, evaluate, *, epochs, initial_epoch, callbacks, verbose):
    """The epoch loop of ``keras.Model.fit`` for seqnet's own loops: callbacks and history."""
    import keras

    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history],
        add_progbar=verbose != 0,
        verbose=1 if verbose == "auto" else verbose,
        epochs=epochs,
        steps=steps,
        model=model,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    logs: dict = {}
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        logs = train_epoch(epoch, callback_list)
        if evaluate is not None and not model.stop_training:
            callback_list.on_test_begin()
            logs |= evaluate()
            callback_list.on_test_end(logs)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return history


# --- PyTorch --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchProcess:
    """This process's place in a ``torchrun`` job, from the variables torchrun sets."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    launched: bool = False  # False: not started by torchrun


def torch_process() -> TorchProcess:
    """Read ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (set by ``torchrun``)."""
    if "WORLD_SIZE" not in os.environ:
        return TorchProcess()
    return TorchProcess(
        rank=_environment_integer("RANK") or 0,
        local_rank=_environment_integer("LOCAL_RANK") or 0,
        world_size=_environment_integer("WORLD_SIZE") or 1,
        launched=True,
    )


@dataclass
class _TorchRun:
    """What one torchrun job keeps between fit calls; torn down in a safe order at the end."""

    # One DDP wrapper per model: a second one would hook the same parameters twice.
    wrappers: dict[int, Any] = field(default_factory=dict)
    # Reduction buffers that Python keeps alive until the process group is gone: a gloo worker
    # thread that drops the last reference to a Python-owned tensor needs the GIL, and waiting
    # for it while the group is being destroyed can deadlock at exit.
    buffers: dict[int, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _torch_replicas() -> Iterator[Replicas]:
    process = torch_process()
    if not process.launched:
        # DDP needs one process per device; without torchrun there is only this one.
        layout = ReplicaLayout(
            strategy="data-parallel",
            engine="keras.Model.fit (one process: start with torchrun for more replicas)",
            devices=(_torch_device_name(process),),
        )
        yield Replicas(layout, _keras_fit)
        return
    run = _TorchRun()
    with _torch_process_group(process):
        layout = ReplicaLayout(
            strategy="data-parallel",
            engine="torch DistributedDataParallel",
            devices=(_torch_device_name(process),),
            replicas=process.world_size,
            processes=process.world_size,
            process_index=process.rank,
        )
        try:
            yield Replicas(layout, functools.partial(_torch_fit, run=run))
            _finish_torch_work()
        finally:
            run.wrappers.clear()  # DDP holds the group: it must go first
    run.buffers.clear()


def _finish_torch_work() -> None:
    """Wait for every process, with the GIL released, so gloo's threads finish their work."""
    import torch.distributed as dist

    dist.barrier()


def _torch_device_name(process: TorchProcess) -> str:
    import torch

    return f"cuda:{process.local_rank}" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def _torch_process_group(process: TorchProcess) -> Iterator[None]:
    import torch
    import torch.distributed as dist

    if dist.is_initialized():  # the caller manages it
        yield
        return
    if torch.cuda.is_available():
        # Keras places tensors on "cuda", i.e. the current device: make it this rank's GPU.
        torch.cuda.set_device(process.local_rank)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def _torch_fit(layout: ReplicaLayout, model, x, y, *, run: _TorchRun, batch_size, **options):
    """Keras' own train step (loss, optimizer) around a DDP forward and backward pass."""
    import torch

    if id(model) not in run.wrappers:
        # Broadcasts process 0's weights, so every replica starts equal.
        run.wrappers[id(model)] = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[torch.cuda.current_device()] if torch.cuda.is_available() else None
        )
    parallel_model = run.wrappers[id(model)]
    share = layout.per_replica_batch_size(batch_size)
    sampler = _torch_sampler(layout, len(x))
    validation_data = options.pop("validation_data")

    def train_step(indices) -> np.ndarray:
        sums = _torch_train_step(parallel_model, model, x[indices], y[indices])
        return _sum_over_replicas(sums, run)

    def train_epoch(epoch: int, callback_list) -> dict:
        indices = np.asarray(list(sampler))
        batches = [indices[start : start + share] for start in range(0, len(indices), share)]
        return _step_through(batches, train_step, callback_list, model)

    def evaluate() -> dict:
        return _torch_evaluate(layout, run, model, *validation_data, batch_size=share)

    evaluation = evaluate if validation_data is not None else None
    return _run_epochs(model, -(-len(sampler) // share), train_epoch, evaluation, **options)


def _torch_sampler(layout: ReplicaLayout, count: int):
    from torch.utils.data import DistributedSampler

    # No shuffling: the caller passes shuffled arrays. drop_last: every process gets
    # count // replicas samples and the tail is left out; without it the sampler would repeat
    # samples to pad the last share.
    return DistributedSampler(
        range(count),
        num_replicas=layout.replicas,
        rank=layout.process_index,
        shuffle=False,
        drop_last=True,
    )


def _torch_train_step(parallel_model, model, x, y) -> np.ndarray:
    """One step on this replica's share; returns its (loss sum, correct, samples)."""
    import keras
    import torch

    x, y = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
    model.zero_grad()
    predictions = parallel_model(x, training=True)
    loss = model.compute_loss(x=x, y=y, y_pred=predictions, training=True)
    # DDP's backward hooks all-reduce the gradients and divide by the world size: each replica
    # then holds the gradient of the mean loss over the whole global batch.
    model.optimizer.scale_loss(loss).backward()
    weights = model.trainable_weights
    with torch.no_grad():
        model.optimizer.apply([weight.value.grad for weight in weights], weights)
    correct = float(_binary_accuracy(y, predictions.detach()).sum())
    return np.array([float(loss.detach()) * len(x), correct, len(x)])


def _torch_evaluate(layout: ReplicaLayout, run: _TorchRun, model, x, y, *, batch_size) -> dict:
    """Every replica evaluates a strided slice; the sample-weighted means are combined."""
    x, y = x[layout.process_index :: layout.replicas], y[layout.process_index :: layout.replicas]
    if len(x) == 0:
        raise ValueError(f"Need at least {layout.replicas} validation samples, one per replica.")
    results = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    names = sorted(results)
    sums = _sum_over_replicas(np.array([*(results[name] * len(x) for name in names), len(x)]), run)
    return {f"val_{name}": sums[index] / sums[-1] for index, name in enumerate(names)}


def _sum_over_replicas(values: np.ndarray, run: _TorchRun) -> np.ndarray:
    """Element-wise sums over all processes, through a buffer the run keeps (see _TorchRun)."""
    import torch
    import torch.distributed as dist

    if len(values) not in run.buffers:
        device = "cuda" if torch.cuda.is_available() else "cpu"  # nccl reduces GPU tensors only
        run.buffers[len(values)] = torch.zeros(len(values), dtype=torch.float64, device=device)
    buffer = run.buffers[len(values)]
    buffer.copy_(torch.as_tensor(values, dtype=torch.float64))
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    return buffer.cpu().numpy().copy()


# --- simulated devices and the scaling benchmark ---------------------------------------------


def simulate_cpu_devices(count: int) -> None:
    """Split this process's CPU into ``count`` devices (JAX, TensorFlow), for tests and benchmarks.

    Call it before the backend runs anything. The devices share the same cores: a functional
    check of data parallelism, never a speed-up. PyTorch has no such devices; start ``count``
    processes with ``torchrun --nproc-per-node=count`` instead.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        jax.config.update("jax_num_cpu_devices", count)
    elif backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    else:
        raise ValueError(f"The {backend} backend has no simulated devices; use torchrun.")


@dataclass(frozen=True)
class ScalingSettings:
    """One scaling measurement: the same global batches on 1, 2, 4 … simulated CPU devices."""

    device_counts: tuple[int, ...] = (1, 2, 4)
    batch_size: int = 32  # global: divisible by every device count
    steps: int = 4  # optimizer steps per epoch
    rounds: int = 2  # timed epochs after one warm-up epoch; the fastest counts
    model: ModelConfig = field(default_factory=lambda: ModelConfig(dropout_rate=0.0))

    def __post_init__(self) -> None:
        for count in self.device_counts:
            ReplicaLayout(strategy="data-parallel", replicas=count).per_replica_batch_size(
                self.batch_size
            )


@dataclass(frozen=True)
class ScalingPoint:
    """Training throughput on ``devices`` replicas, against one replica of the same engine."""

    devices: int
    samples_per_second: float
    speedup: float  # throughput / throughput on one device
    efficiency: float  # speedup / devices: 1.0 is perfect strong scaling


def measure_scaling(settings: ScalingSettings = ScalingSettings()) -> list[ScalingPoint]:
    """Time data-parallel training of the current backend at each device count, each in its own
    process (simulated devices must exist before the backend starts). On a CPU-only machine
    the devices share the cores, so expect efficiency near 1 / devices: a functional check.
    """
    import keras

    backend = keras.backend.backend()  # also when keras.json, not KERAS_BACKEND, chose it
    counts = settings.device_counts
    throughputs = [_time_in_subprocess(backend, count, settings) for count in counts]
    # Relative to the first count (normally 1): strong scaling, the global batch stays fixed.
    speedups = [throughput / throughputs[0] for throughput in throughputs]
    return [
        ScalingPoint(count, throughput, speedup, speedup * counts[0] / count)
        for count, throughput, speedup in zip(counts, throughputs, speedups, strict=True)
    ]


def _time_in_subprocess(backend: str, devices: int, settings: ScalingSettings) -> float:
    worker = ["-m", "seqnet.distributed", "--devices", str(devices)]
    worker += ["--batch-size", str(settings.batch_size), "--steps", str(settings.steps)]
    worker += ["--rounds", str(settings.rounds)]
    worker += ["--model", json.dumps(asdict(settings.model))]
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if backend == "torch":
        # One process per device; they share the cores, so give each its fair share of threads.
        environment["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // devices))
        worker = ["-m", "torch.distributed.run", *torch_launch_options(devices), *worker]
    completed = subprocess.run(
        [sys.executable, *worker], env=environment, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"scaling worker on {devices} devices failed:\n{completed.stderr[-3000:]}"
        )
    return float(json.loads(completed.stdout.strip().splitlines()[-1])["samples_per_second"])


def torch_launch_options(processes: int) -> list[str]:
    """``torchrun`` options for ``processes`` workers on this host, on the loopback interface."""
    return [
        f"--nproc-per-node={processes}",
        "--nnodes=1",
        "--node-rank=0",
        "--master-addr=127.0.0.1",
        f"--master-port={free_local_port()}",
    ]


def free_local_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _timed_training(devices: int, settings: ScalingSettings) -> float:
    """Samples per second of the fastest timed epoch, after a warm-up: the worker's job."""
    import keras

    from seqnet.data import make_synthetic
    from seqnet.model import build_model
    from seqnet.train import EpochTimer  # not at the top: seqnet.train imports this module

    if keras.backend.backend() != "torch":
        simulate_cpu_devices(devices)
    samples = settings.batch_size * settings.steps
    data = make_synthetic(
        num_words=settings.model.vocabulary_size,
        maxlen=settings.model.sequence_length,
        samples=samples,
    )
    keras.utils.set_random_seed(0)
    timer = EpochTimer()
    with open_replicas("data-parallel") as replicas:
        with replicas.scope():
            model = build_model(settings.model)
        replicas.fit(
            model,
            data.x_train,
            data.y_train,
            batch_size=settings.batch_size,
            epochs=1 + settings.rounds,
            callbacks=[timer],
            verbose=0,
        )
    # The second epoch can still compile (JAX re-lays out the optimizer state): take the best.
    fastest = min(timer.epoch_seconds[1:])
    return samples / fastest if replicas.layout.is_chief else float("nan")


def main(argv: list[str] | None = None) -> int:
    """The scaling benchmark's worker: ``python -m seqnet.distributed --devices N …``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m seqnet.distributed")
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=ScalingSettings.batch_size)
    parser.add_argument("--steps", type=int, default=ScalingSettings.steps)
    parser.add_argument("--rounds", type=int, default=ScalingSettings.rounds)
    parser.add_argument("--model", default="{}", help="ModelConfig fields as JSON")
    args = parser.parse_args(argv)
    settings = ScalingSettings(
        device_counts=(args.devices,),
        batch_size=args.batch_size,
        steps=args.steps,
        rounds=args.rounds,
        model=ModelConfig(**json.loads(args.model)),
    )
    throughput = _timed_training(args.devices, settings)
    if throughput == throughput:  # NaN on the non-chief torch processes: only the chief reports
        print(json.dumps({"devices": args.devices, "samples_per_second": throughput}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
