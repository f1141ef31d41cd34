"""seqnet: text classification with the lecture's CNN, a backend-agnostic Keras 3 library.

Choose the backend with ``KERAS_BACKEND`` before the first import of keras; seqnet never sets
it. Names are imported on first use, so ``import seqnet`` alone does not load keras.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING

__version__ = "0.3.0.dev0"  # the one place; pyproject.toml reads it from here

_EXPORTS = {
    "DataOptions": "seqnet.config",
    "ModelConfig": "seqnet.config",
    "TrainConfig": "seqnet.config",
    "Task": "seqnet.task",
    "Dataset": "seqnet.data",
    "ImdbDataset": "seqnet.data",
    "load_imdb": "seqnet.data",
    "read_dataset": "seqnet.data",
    "build_imdb_cnn": "seqnet.model",
    "Classifier": "seqnet.predict",
    "Vocabulary": "seqnet.text",
    "train_and_evaluate": "seqnet.train",
}
__all__ = [
    "Classifier",
    "DataOptions",
    "Dataset",
    "Task",
    "ImdbDataset",
    "ModelConfig",
    "TrainConfig",
    "Vocabulary",
    "build_imdb_cnn",
    "load_imdb",
    "read_dataset",
    "train_and_evaluate",
]

if TYPE_CHECKING:
    from seqnet.config import DataOptions, ModelConfig, TrainConfig
    from seqnet.data import Dataset, ImdbDataset, load_imdb, read_dataset
    from seqnet.model import build_imdb_cnn
    from seqnet.predict import Classifier
    from seqnet.task import Task
    from seqnet.text import Vocabulary
    from seqnet.train import train_and_evaluate


# Names seqnet 0.1 exported here, and where they live now (see CHANGELOG.md).
_MOVED = {"closed_form_slope": "seqnet.regression", "fit_slope": "seqnet.regression"}


def __getattr__(name: str):
    if name in _MOVED:
        warnings.warn(
            f"seqnet.{name} moved to {_MOVED[name]}.{name}; import it from there.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seqnet' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
