"""TensorFlow's data-parallel engine: ``tf.distribute.MirroredStrategy`` over this host's GPUs
(or its logical CPUs), or ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names several
workers. One host trains through Keras' own ``fit``; several through seqnet's loop
([`seqnet.parallel.loop`][seqnet.parallel.loop]), as Keras 3's ``fit`` fails there.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from seqnet.parallel.loop import correct_predictions, run_epochs, step_through
from seqnet.parallel.replicas import ReplicaLayout, Replicas, keras_fit, trimmed


@contextlib.contextmanager
def open_engine() -> Iterator[Replicas]:
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
    fit = functools.partial(_tensorflow_fit, strategy=strategy, steps=weakref.WeakKeyDictionary())
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


def _tensorflow_fit(layout: ReplicaLayout, model, x, y, *, strategy, steps, **options):
    # tf.distribute splits each global batch over the replicas itself; trimming keeps the last
    # batch evenly divisible, so no replica's share is smaller than another's and the averaged
    # gradient matches one device's.
    x, y = trimmed(layout, x, y)
    if layout.processes == 1:
        return keras_fit(layout, model, x, y, **options)
    if model not in steps:  # trace the steps once per model, not once per epoch
        steps[model] = _TensorFlowSteps.create(strategy, model, x[:1], y[:1])
    return _tensorflow_multi_worker_fit(strategy, steps[model], model, x, y, **options)


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
        return step_through(train_batches, steps.train, callback_list, model)

    def evaluate() -> dict:
        batches = _tensorflow_global_batches(strategy, *validation_data, batch_size)
        logs = step_through(batches, steps.evaluate, None, model)
        return {f"val_{name}": value for name, value in logs.items()}

    evaluation = evaluate if validation_data is not None else None
    return run_epochs(model, -(-len(x) // batch_size), train_epoch, evaluation, **options)


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
        correct = tf.reduce_sum(correct_predictions(y, predictions))
        return tf.stack([tf.math.multiply_no_nan(mean_loss, count), correct, count])

    @tf.function
    def step(batch):
        sums = strategy.run(replica_step, args=batch)
        return strategy.reduce("SUM", sums, axis=None)

    return lambda batch: step(batch).numpy()
