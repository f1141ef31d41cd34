"""One-parameter regression f(x) = αx, the tutorial's first model, solved two ways.

Minimizing the squared error E(α) = Σ (αxᵢ - yᵢ)² has the closed form α = Σxᵢyᵢ / Σxᵢ²
(``closed_form_slope``). ``fit_slope`` finds the same α the way every network in seqnet is
trained: a Keras layer, a loss, an optimizer and ``fit``.
"""

from __future__ import annotations

import keras
import numpy as np
from numpy.typing import ArrayLike


def closed_form_slope(x: ArrayLike, y: ArrayLike) -> float:
    """The least-squares slope α = Σxᵢyᵢ / Σxᵢ² of a line through the origin.

    Setting dE/dα = 2 Σ xᵢ(αxᵢ - yᵢ) to zero gives this α, the unique minimum of
    E(α) = Σ (αxᵢ - yᵢ)².

    Args:
        x: Inputs, a 1-D sequence of numbers, not all zero.
        y: Targets, a 1-D sequence of numbers as long as ``x``.

    Returns:
        The slope α as a Python float.

    Raises:
        ValueError: If ``x`` and ``y`` are empty, differ in length, are not 1-D and finite,
            or if every ``x`` is zero (then every α fits equally well).

    Examples:
        >>> closed_form_slope([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
        2.0
    """
    x, y = _as_vectors(x, y)
    return float(np.dot(x, y) / np.dot(x, x))


def fit_slope(
    x: ArrayLike, y: ArrayLike, *, epochs: int = 100, learning_rate: float = 0.1
) -> float:
    """Learn α by gradient descent: a bias-free ``Dense(1)`` trained with ``fit``.

    Each epoch is one full-batch step of SGD on the mean squared error, starting from α = 0:
    α ← α - learning_rate · (2/n) Σ xᵢ(αxᵢ - yᵢ). The step shrinks the distance to the
    closed-form α by the factor |1 - 2 · learning_rate · mean(x²)|, so it converges only
    when ``learning_rate < 1 / mean(x²)``.

    Args:
        x: Inputs, a 1-D sequence of numbers, not all zero.
        y: Targets, a 1-D sequence of numbers as long as ``x``.
        epochs: Gradient steps (one per epoch, each over all points).
        learning_rate: SGD's step size.

    Returns:
        The learned weight α as a Python float.

    Raises:
        ValueError: For the inputs ``closed_form_slope`` rejects, for ``epochs < 1``, or for
            a ``learning_rate`` at which gradient descent cannot converge.

    Examples:
        >>> round(fit_slope([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], learning_rate=0.1), 4)
        2.0
    """
    x, y = _as_vectors(x, y)
    _check_schedule(x, epochs=epochs, learning_rate=learning_rate)
    layer = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")
    model = keras.Sequential([keras.Input(shape=(1,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    columns = x[:, None].astype("float32"), y[:, None].astype("float32")
    # One batch of all points: each epoch is then exactly one gradient-descent step.
    model.fit(*columns, batch_size=len(x), epochs=epochs, shuffle=False, verbose=0)
    return float(keras.ops.convert_to_numpy(layer.kernel)[0, 0])


def _as_vectors(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as float arrays of one length, or a ``ValueError`` saying what is wrong."""
    try:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("x and y must be 1-D sequences of numbers.") from None
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"x and y must be 1-D, got shapes {x.shape} and {y.shape}.")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}.")
    if len(x) == 0:
        raise ValueError("x and y are empty; a slope needs at least one point.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite (no NaN or infinity).")
    if not x.any():
        raise ValueError("every x is 0, so every slope fits equally well; α is undefined.")
    return x, y


def _check_schedule(x: np.ndarray, *, epochs: int, learning_rate: float) -> None:
    """Reject settings under which full-batch gradient descent on ``x`` cannot converge."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    limit = 1.0 / float(np.mean(x * x))
    if not 0.0 < learning_rate < limit:
        raise ValueError(
            f"learning_rate must lie in (0, {limit:.4g}) = (0, 1 / mean(x²)) for gradient "
            f"descent to converge on these x, got {learning_rate}."
        )
