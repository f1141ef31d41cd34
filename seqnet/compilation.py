"""Pay for XLA compilation once per machine: JAX's persistent compilation cache.

Under JAX every new process traces and compiles the training and evaluation steps again,
seconds before the first batch. With the cache on, compiled executables are written to disk
and a later process with the same shapes, model and JAX version loads them instead.

TensorFlow and PyTorch have nothing comparable to switch on for seqnet's models: TensorFlow
persists no ``tf.function`` graphs that are not XLA-compiled, and PyTorch runs eagerly unless
``torch.compile`` is used. [`enable_compilation_cache`][seqnet.compilation.enable_compilation_cache]
does nothing there.
"""

from __future__ import annotations

from pathlib import Path

from seqnet.data import default_cache_dir


def default_compilation_cache_dir() -> Path:
    """``default_cache_dir() / "jax-compilation"``: beside seqnet's tokenized-data cache."""
    return default_cache_dir() / "jax-compilation"


def enable_compilation_cache(cache_dir: Path | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache; a no-op under TensorFlow and PyTorch.

    Call it once Keras is imported and before the first model is compiled or trained; calling
    it again is harmless. It reads the backend Keras chose and never sets ``KERAS_BACKEND``.

    The cache is trusted code: whoever can write into ``cache_dir`` can make this process run
    code. Keep it private to the user, as the default under ``~/.cache/seqnet`` is.

    Args:
        cache_dir: Where compiled executables go; defaults to
            [`default_compilation_cache_dir()`][seqnet.compilation.default_compilation_cache_dir].

    Returns:
        The cache directory, or None when the backend is not JAX.
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    path = Path(cache_dir if cache_dir is not None else default_compilation_cache_dir())
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    previous = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(path))
    # seqnet's steps compile in well under JAX's default 1 s threshold on CPU: cache them all.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size limit
    if previous not in (None, str(path)):
        compilation_cache.reset_cache()  # JAX opens its cache once; reopen it at the new path
    return path


def compilation_notice(train_shapes: int, validation_shapes: int) -> str | None:
    """The line to show before a first ``fit`` whose first steps wait for compilation.

    JAX compiles the training step for every new batch shape, and the evaluation step for
    every validation shape, before running it: seconds in which the first epoch's bar stands
    still at seconds per step. PyTorch compiles nothing, and TensorFlow traces its steps in
    well under a second for seqnet's open-length datasets, so there is nothing to say there.

    Args:
        train_shapes: Distinct ``(batch, length)`` shapes of the training batches.
        validation_shapes: Distinct shapes of the validation batches.

    Returns:
        The line under JAX, else None.
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    cache = jax.config.jax_compilation_cache_dir
    where = (
        f"or loads it from its cache in {cache} if an earlier run compiled it"
        if cache
        else "once per process (the compilation cache is off)"
    )
    return (
        f"Compiling the training step for {_shapes(train_shapes)} and the validation step "
        f"for {_shapes(validation_shapes)}: JAX compiles each shape before its first step, {where}."
    )


def _shapes(count: int) -> str:
    return f"{count} batch shape{'s' if count != 1 else ''}"
