"""Frozen hyperparameter dataclasses: the lecture's settings are the defaults.

Configs are never mutated; derive a variant with ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Token ids reserved by keras.datasets.imdb; real words start at RESERVED_IDS.
PADDING_ID = 0
START_ID = 1
OOV_ID = 2
RESERVED_IDS = 3  # Keras' `index_from`: word id = frequency rank + 3 (rank 1 is the commonest word)


LEARNING_RATE_SCHEDULES = ("constant", "cosine")
# "none": one device; "data-parallel": each global batch split over all devices (seqnet.distributed)
DISTRIBUTE_STRATEGIES = ("none", "data-parallel")


def _require_positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{owner}.{name} must be a positive number, got {value!r}.")


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of the IMDB CNN; the defaults build the lecture's network exactly.

    Attributes:
        vocabulary_size: Rows of the embedding table, the reserved ids 0-2 included.
        sequence_length: Tokens per review after padding or truncation.
        embedding_dim: Width of each token's embedding vector.
        filters: Output channels of the convolution.
        kernel_size: Tokens each convolution window spans; the convolution's output has
            ``sequence_length - kernel_size + 1`` steps.
        hidden_units: Width of the hidden dense layer.
        dropout_rate: Fraction dropped after the embedding and after the hidden layer.
        learning_rate: Adam's step size.
        batch_normalization: Add BatchNormalization after the convolution and the hidden layer.
        fuse_pooling: Apply the convolution's bias and ReLU after max-pooling (same outputs,
            less memory traffic); not with batch_normalization, which sits in between.
        matmul_convolution: Compute the convolution as one matrix multiply over the shifted
            windows instead of the backend's conv op.
    """

    vocabulary_size: int = 5000  # Embedding rows; the reserved ids 0-2 included
    sequence_length: int = 400  # tokens per review after padding/truncation
    embedding_dim: int = 50
    filters: int = 250  # Conv1D output channels
    kernel_size: int = 3  # (batch, 400, 50) -> (batch, 398, 250) with "valid" padding
    hidden_units: int = 250
    dropout_rate: float = 0.2  # after the embedding and after the hidden layer
    learning_rate: float = 1e-3  # Adam
    batch_normalization: bool = False  # the lecture's BatchNorm after conv and hidden layer
    # Faster formulations, same outputs (tested): ReLU and bias after max-pooling, which they
    # commute with, so the (batch, 398, 250) tensor is only reduced; and the convolution as
    # one matrix multiply over the shifted windows.
    fuse_pooling: bool = False
    matmul_convolution: bool = False

    def __post_init__(self) -> None:
        _require_positive(
            "ModelConfig",
            vocabulary_size=self.vocabulary_size,
            sequence_length=self.sequence_length,
            embedding_dim=self.embedding_dim,
            filters=self.filters,
            kernel_size=self.kernel_size,
            hidden_units=self.hidden_units,
            learning_rate=self.learning_rate,
        )
        if self.vocabulary_size <= RESERVED_IDS:
            raise ValueError(
                f"ModelConfig.vocabulary_size must exceed the {RESERVED_IDS} reserved ids "
                f"(padding, start, out-of-vocabulary), got {self.vocabulary_size}."
            )
        if self.kernel_size > self.sequence_length:
            raise ValueError(
                f"ModelConfig.kernel_size ({self.kernel_size}) cannot exceed "
                f"sequence_length ({self.sequence_length})."
            )
        if self.fuse_pooling and self.batch_normalization:
            raise ValueError(
                "ModelConfig.fuse_pooling cannot be combined with batch_normalization: the "
                "BatchNormalization layer sits between the convolution and the pooling."
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(
                f"ModelConfig.dropout_rate must be in [0, 1), got {self.dropout_rate}."
            )


@dataclass(frozen=True)
class TrainConfig:
    """One training run: data, schedule and model. The lecture's recipe is the default.

    Attributes:
        data: ``"keras"``, ``"synthetic"``, or a path to aclImdb_v1.tar.gz, aclImdb/ or an .npz
            file (see [`load_imdb`][seqnet.data.load_imdb]).
        epochs: Passes over the training split.
        batch_size: Reviews per gradient step, in total over all replicas (the global batch).
        seed: Seeds weights, dropout and shuffling.
        synthetic_samples: Reviews per split when ``data="synthetic"``.
        learning_rate_schedule: ``"constant"`` (the lecture's) or ``"cosine"``, which anneals
            the step size to 0 over the run.
        model: The network's hyperparameters; by default the lecture's, with ``fuse_pooling``
            (the same outputs, computed faster).
        distribute: ``"none"`` (one device) or ``"data-parallel"`` (every global batch split
            evenly over all devices; see [`seqnet.distributed`][seqnet.distributed]).
    """

    data: str = (
        "synthetic"  # "keras", "synthetic", or a path to aclImdb_v1.tar.gz, aclImdb/ or .npz
    )
    epochs: int = 2
    batch_size: int = 32
    seed: int = 0  # weights, dropout and shuffling all derive from it
    synthetic_samples: int = 2000  # reviews per split when data="synthetic"
    # "constant" is the lecture's Adam; "cosine" anneals the rate to 0 by the last step.
    learning_rate_schedule: str = "constant"
    # The lecture's network in its faster, numerically equal formulation (see ModelConfig).
    model: ModelConfig = field(default_factory=lambda: ModelConfig(fuse_pooling=True))
    distribute: str = "none"  # one of DISTRIBUTE_STRATEGIES

    def __post_init__(self) -> None:
        _require_positive(
            "TrainConfig",
            epochs=self.epochs,
            batch_size=self.batch_size,
            synthetic_samples=self.synthetic_samples,
        )
        if self.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
            raise ValueError(
                f"TrainConfig.learning_rate_schedule must be one of {LEARNING_RATE_SCHEDULES}, "
                f"got {self.learning_rate_schedule!r}."
            )
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"TrainConfig.model must be a ModelConfig, got {self.model!r}.")
        if self.distribute not in DISTRIBUTE_STRATEGIES:
            raise ValueError(
                f"TrainConfig.distribute must be one of {', '.join(DISTRIBUTE_STRATEGIES)}, "
                f"got {self.distribute!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """The config as nested plain dicts, ready for JSON (as saved in metrics.json)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from [`to_dict`][seqnet.config.TrainConfig.to_dict]'s output."""
        values = dict(values)
        values["model"] = ModelConfig(**values.get("model", {}))
        return cls(**values)
