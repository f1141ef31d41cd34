"""The random state training draws from that a ``.keras`` file leaves out, to resume exactly.

A ``.keras`` file holds a model's weights and its optimizer, but not where its random number
streams stand, so a resumed run would draw other dropout masks than an uninterrupted one:

- every ``keras.random.SeedGenerator`` in the model (JAX and TensorFlow draw each Dropout mask
  from its layer's generator, whose state counts the draws) restarts at its initial state;
- PyTorch draws the masks of a Dropout without an explicit seed from torch's own global
  generator, which ``keras.utils.set_random_seed`` restarts from the seed.

[`random_state`][seqnet.random_state.random_state] captures both as plain arrays;
[`RestoreRandomState`][seqnet.random_state.RestoreRandomState] puts them back when training
starts, after the set-up of the first ``fit`` on a loaded model, which draws from torch's
generator once more than a later ``fit`` does (its one-off build iterates a torch DataLoader,
which draws a base seed).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import keras
import numpy as np

_VARIABLE = "variable/"  # + its index among the model's unsaved variables
_TORCH_CPU = "torch/cpu"
_TORCH_CUDA = "torch/cuda/"  # + the device index


def unsaved_variables(model: keras.Model) -> list[keras.Variable]:
    """The model's state that its ``.keras`` file omits: variables that are not weights.

    Keras lists every ``SeedGenerator`` state among ``model.variables`` but not among
    ``model.weights``, which are what a ``.keras`` file saves; whatever else a future Keras
    adds there is training state as well, so it is kept too rather than picked by name.
    """
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def random_state(model: keras.Model) -> dict[str, np.ndarray]:
    """Where every random stream training ``model`` draws from stands, as named arrays."""
    state = {
        f"{_VARIABLE}{index}": keras.ops.convert_to_numpy(variable)
        for index, variable in enumerate(unsaved_variables(model))
    }
    if keras.backend.backend() == "torch":
        state.update(_torch_state())
    return state


class RestoreRandomState(keras.callbacks.Callback):
    """Restore a captured random state as the next ``fit`` begins to train, then never again.

    In an uninterrupted run nothing draws between one epoch's end and the next epoch's
    ``on_train_begin``; after loading, ``fit``'s one-off build does, so restoring at load
    time would leave torch one draw ahead. Restoring here makes the two runs meet.
    """

    def __init__(self, model: keras.Model, state: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        self._variables = _matching_variables(model, state)  # refuses a misfit now, not later
        self._state: Mapping[str, np.ndarray] | None = state

    def on_train_begin(self, logs=None):
        if self._state is None:
            return
        for variable, key in self._variables:
            variable.assign(self._state[key])
        if keras.backend.backend() == "torch":
            _restore_torch_state(self._state)
        self._state = None


def _matching_variables(
    model: keras.Model, state: Mapping[str, np.ndarray]
) -> list[tuple[keras.Variable, str]]:
    """Pair each of ``model``'s unsaved variables with its key in ``state``.

    Raises:
        ValueError: If ``state`` was captured from a model with other unsaved variables.
    """
    variables = unsaved_variables(model)
    keys = sorted(
        (key for key in state if key.startswith(_VARIABLE)),
        key=lambda key: int(key[len(_VARIABLE) :]),
    )
    shapes = [tuple(variable.shape) for variable in variables]
    if [tuple(state[key].shape) for key in keys] != shapes:
        raise ValueError(
            f"The saved random state does not fit this model: it holds {len(keys)} "
            f"variables of other shapes than the model's {len(variables)} {shapes}."
        )
    return list(zip(variables, keys, strict=True))


def _torch_state() -> dict[str, np.ndarray]:
    """torch's global generators, CPU and each GPU, which unseeded torch dropout draws from."""
    import torch

    state = {_TORCH_CPU: torch.get_rng_state().numpy()}
    if torch.cuda.is_available():
        for device, device_state in enumerate(torch.cuda.get_rng_state_all()):
            state[f"{_TORCH_CUDA}{device}"] = device_state.numpy()
    return state


def _restore_torch_state(state: Mapping[str, np.ndarray]) -> None:
    """Restore torch's global generators; GPUs the saving process had but this one lacks are
    skipped, as their streams could not be drawn from here anyway."""
    import torch

    if _TORCH_CPU in state:
        torch.set_rng_state(torch.from_numpy(np.asarray(state[_TORCH_CPU])))
    if not torch.cuda.is_available():
        return
    for device in range(torch.cuda.device_count()):
        key = f"{_TORCH_CUDA}{device}"
        if key in state:
            torch.cuda.set_rng_state(torch.from_numpy(np.asarray(state[key])), device=device)


def to_bytes(state: Mapping[str, np.ndarray]) -> bytes:
    """``state`` as the bytes of an ``.npz`` file, to write atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    return buffer.getvalue()


def from_bytes(data: bytes) -> dict[str, np.ndarray]:
    """The state in ``.npz`` bytes from [`to_bytes`][seqnet.random_state.to_bytes]; no pickles."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}
