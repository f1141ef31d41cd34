"""Data-parallel training through each backend's own engine.

``open_replicas("data-parallel")`` sets up the backend's data-parallel machinery and yields a
[`Replicas`][seqnet.parallel.Replicas]: build or load the model inside ``replicas.scope()``,
then train it with ``replicas.fit`` (the arguments of ``keras.Model.fit``):

- JAX ([`jax_engine`][seqnet.parallel.jax_engine]): ``keras.distribution.DataParallel`` over
  ``keras.distribution.list_devices()``; on several hosts ``jax.distributed.initialize`` first.
- TensorFlow ([`tensorflow_engine`][seqnet.parallel.tensorflow_engine]):
  ``tf.distribute.MirroredStrategy`` over this host's GPUs (or its logical CPUs), or
  ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names several workers.
- PyTorch ([`torch_engine`][seqnet.parallel.torch_engine]): ``DistributedDataParallel``, one
  process per device started by ``torchrun``, each fed a ``DistributedSampler`` share.

Batch semantics, the same for every backend: ``batch_size`` is the *global* batch, the reviews of
one optimizer step summed over all replicas; each replica gets ``batch_size / replicas`` of them,
so ``batch_size`` must be a multiple of the replica count. Each epoch uses the largest multiple
of the replica count not above the number of training samples (at most ``replicas - 1`` are left
out), so every replica's share of every step is equally large and the averaged gradient is
exactly the gradient of the mean loss over the global batch, as on one device.

Every process passes the same, already shuffled arrays; each takes its own share. This package
is imported by ``seqnet.train`` and never imports it; frameworks are imported only inside the
engine that needs them.
"""

from seqnet.parallel.launch import free_local_port, simulate_cpu_devices, torch_launch_options
from seqnet.parallel.replicas import ReplicaLayout, Replicas, keras_fit, open_replicas

__all__ = [
    "ReplicaLayout",
    "Replicas",
    "free_local_port",
    "keras_fit",
    "open_replicas",
    "simulate_cpu_devices",
    "torch_launch_options",
]
