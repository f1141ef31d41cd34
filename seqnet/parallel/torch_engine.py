"""PyTorch's data-parallel engine: ``DistributedDataParallel``, one process per device started
by ``torchrun`` (gloo on CPU, nccl on GPU), each process fed a ``DistributedSampler`` share and
trained by seqnet's loop ([`seqnet.parallel.loop`][seqnet.parallel.loop]) around Keras' own
loss and optimizer. Without ``torchrun`` it is an ordinary one-process ``fit``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqnet.parallel.loop import correct_predictions, run_epochs, step_through
from seqnet.parallel.replicas import ReplicaLayout, Replicas, environment_integer, keras_fit


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
        rank=environment_integer("RANK") or 0,
        local_rank=environment_integer("LOCAL_RANK") or 0,
        world_size=environment_integer("WORLD_SIZE") or 1,
        launched=True,
    )


@dataclass
class _TorchRun:
    """What one torchrun job keeps between fit calls; torn down in a safe order at the end."""

    # One DDP wrapper per model: a second one would hook the same parameters twice.
    wrappers: dict[Any, Any] = field(default_factory=dict)
    # Reduction buffers that Python keeps alive until the process group is gone: a gloo worker
    # thread that drops the last reference to a Python-owned tensor needs the GIL, and waiting
    # for it while the group is being destroyed can deadlock at exit.
    buffers: dict[int, Any] = field(default_factory=dict)


@contextlib.contextmanager
def open_engine() -> Iterator[Replicas]:
    process = torch_process()
    if not process.launched:
        # DDP needs one process per device; without torchrun there is only this one.
        layout = ReplicaLayout(
            strategy="data-parallel",
            engine="keras.Model.fit (one process: start with torchrun for more replicas)",
            devices=(_torch_device_name(process),),
        )
        yield Replicas(layout, keras_fit)
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

    if model not in run.wrappers:
        # Broadcasts process 0's weights, so every replica starts equal.
        run.wrappers[model] = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[torch.cuda.current_device()] if torch.cuda.is_available() else None
        )
    parallel_model = run.wrappers[model]
    share = layout.per_replica_batch_size(batch_size)
    sampler = _torch_sampler(layout, len(x))
    validation_data = options.pop("validation_data")

    def train_step(indices) -> np.ndarray:
        sums = _torch_train_step(parallel_model, model, x[indices], y[indices])
        return _sum_over_replicas(sums, run)

    def train_epoch(epoch: int, callback_list) -> dict:
        indices = np.asarray(list(sampler))
        batches = [indices[start : start + share] for start in range(0, len(indices), share)]
        return step_through(batches, train_step, callback_list, model)

    def evaluate() -> dict:
        return _torch_evaluate(layout, run, model, *validation_data, batch_size=share)

    evaluation = evaluate if validation_data is not None else None
    return run_epochs(model, -(-len(sampler) // share), train_epoch, evaluation, **options)


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
    correct = float(correct_predictions(y, predictions.detach()).sum())
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
