"""What the benchmarks need to know about a device: its name, its peak memory, which exist."""

from __future__ import annotations

import platform
from pathlib import Path


def device_name(backend: str, device: str) -> str:
    """A human name for a Keras device string such as ``"cpu:0"`` or ``"gpu:0"``."""
    if device.startswith("cpu"):
        return _cpu_name()
    index = int(device.split(":")[1])
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(index)
    if backend == "jax":
        import jax

        return jax.devices("gpu")[index].device_kind
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.config.experimental.get_device_details(gpus[index]).get("device_name", device)


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_peak_memory_bytes(backend: str, device: str) -> int | None:
    """Peak memory the backend allocated on an accelerator, or None where it does not say."""
    if device.startswith("cpu"):
        return None
    index = int(device.split(":")[1])
    if backend == "torch":
        import torch

        return int(torch.cuda.max_memory_allocated(index))
    if backend == "jax":
        import jax

        stats = jax.devices("gpu")[index].memory_stats() or {}
        return stats.get("peak_bytes_in_use")
    import tensorflow as tf

    return int(tf.config.experimental.get_memory_info(f"GPU:{index}")["peak"])


def visible_devices(backend: str) -> list[str]:
    """Keras device strings to benchmark: the CPU, then each accelerator the backend sees."""
    if backend == "torch":
        import torch

        accelerators = torch.cuda.device_count()
    elif backend == "jax":
        import jax

        accelerators = len([d for d in jax.devices() if d.platform == "gpu"])
    else:
        import tensorflow as tf

        accelerators = len(tf.config.list_logical_devices("GPU"))
    return ["cpu:0", *(f"gpu:{index}" for index in range(accelerators))]
