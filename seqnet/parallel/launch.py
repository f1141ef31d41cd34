"""Starting several replicas on one machine: simulated CPU devices and ``torchrun`` options,
for tests, benchmarks and trying data parallelism without accelerators.
"""

from __future__ import annotations

import socket


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
