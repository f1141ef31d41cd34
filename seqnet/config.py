"""The one home of seqnet's settings: frozen dataclasses whose defaults are written once, here.

``ModelConfig`` is the network (the lecture's by default); ``TrainConfig`` is one training run,
by default seqnet's fast recipe, with the lecture's recipe one call away
([`TrainConfig.from_recipe("lecture")`][seqnet.config.TrainConfig.from_recipe]). Configs are
never mutated; derive a variant with ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

# Token ids reserved by keras.datasets.imdb; real words start at RESERVED_IDS.
PADDING_ID = 0
START_ID = 1
OOV_ID = 2
RESERVED_IDS = 3  # Keras' `index_from`: word id = frequency rank + 3 (rank 1 is the commonest word)

# What `data` / `--data` / `read_dataset(source)` accept, for help texts and error messages.
DATA_SOURCES_HELP = (
    "a labelled .csv, .tsv or .jsonl file, a folder with one sub-folder of .txt files per class, "
    "'synthetic' (built in, offline), 'keras' (keras.datasets.imdb, downloads once), a path to "
    "aclImdb_v1.tar.gz or to an extracted aclImdb/ folder, or a path to an .npz file with "
    "integer arrays x_train, y_train, x_test, y_test"
)
# The ModelConfig fields a user's own texts may set (TrainConfig.fit_to_data): the IMDB sources
# keep the lecture's sizes.
FITTABLE_SIZES = ("vocabulary_size", "sequence_length")

# "constant": the lecture's Adam. "cosine": from the peak down to 0 over the run.
# "warmup-cosine": a linear rise to the peak over `warmup_epochs`, then cosine to 0.
LEARNING_RATE_SCHEDULES = ("constant", "cosine", "warmup-cosine")
# Reviews per forward pass when scoring (evaluate, predict, serve): large enough to keep the
# device busy, small enough for a (256, 398, 250) float32 activation of ~100 MB.
INFERENCE_BATCH_SIZE = 256
# The probability from which a review is labelled positive, unless a caller asks otherwise.
DECISION_THRESHOLD = 0.5
# "none": one device; "data-parallel": each global batch split over all devices (seqnet.parallel)
DISTRIBUTE_STRATEGIES = ("none", "data-parallel")


def require_positive(owner: str, **values: float) -> None:
    """Raise a ValueError naming ``owner.name`` for each value that is not a number > 0."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{owner}.{name} must be a positive number, got {value!r}.")


def require_choice(owner: str, name: str, value: str, choices: Collection[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{owner}.{name} must be one of {', '.join(choices)}; got {value!r}.")
    return value


def check_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float, or raise if it cannot split probabilities into labels.

    Args:
        threshold: The probability from which a review counts as positive.

    Returns:
        ``threshold`` as a float.

    Raises:
        ValueError: If ``threshold`` is not a number strictly between 0 and 1.
    """
    # 0 or 1 would give every review the same label, which is never what a caller meant.
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"threshold must be a number between 0 and 1, got {threshold!r}.")
    if not 0.0 < threshold < 1.0:
        raise ValueError(
            f"threshold must lie strictly between 0 and 1, got {threshold}; "
            f"{DECISION_THRESHOLD} labels a review positive when the model says it is more "
            "likely positive than not."
        )
    return float(threshold)


@dataclass(frozen=True)
class ModelConfig:
    """The IMDB CNN's architecture; the defaults build the lecture's network exactly.

    Attributes:
        vocabulary_size: Rows of the embedding table, the reserved ids 0-2 included.
        sequence_length: Tokens per review after padding or truncation.
        embedding_dim: Width of each token's embedding vector.
        filters: Output channels of the convolution.
        kernel_size: Tokens each convolution window spans; the convolution's output has
            ``sequence_length - kernel_size + 1`` steps.
        hidden_units: Width of the hidden dense layer.
        dropout_rate: Fraction dropped after the embedding and after the hidden layer.
        batch_normalization: Add BatchNormalization after the convolution and the hidden layer.
        num_classes: Classes the head chooses between: 2 gives the lecture's one sigmoid unit,
            more a softmax over ``num_classes`` units on the same body.
        architecture: The body, by its registered name
            ([`register_architecture`][seqnet.model.register_architecture]); ``"cnn"`` is the
            lecture's, which the other fields describe.
    """

    vocabulary_size: int = 5000  # Embedding rows; the reserved ids 0-2 included
    sequence_length: int = 400  # tokens per review after padding/truncation
    embedding_dim: int = 50
    filters: int = 250  # Conv1D output channels
    kernel_size: int = 3  # (batch, 400, 50) -> (batch, 398, 250) with "valid" padding
    hidden_units: int = 250
    dropout_rate: float = 0.2  # after the embedding and after the hidden layer
    batch_normalization: bool = False  # the lecture's BatchNorm after conv and hidden layer
    num_classes: int = 2  # 2: Dense(1, sigmoid), the lecture's; more: Dense(num_classes, softmax)
    architecture: str = "cnn"  # the lecture's body; others via seqnet.model.register_architecture

    def __post_init__(self) -> None:
        require_positive(
            "ModelConfig",
            vocabulary_size=self.vocabulary_size,
            sequence_length=self.sequence_length,
            embedding_dim=self.embedding_dim,
            filters=self.filters,
            kernel_size=self.kernel_size,
            hidden_units=self.hidden_units,
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
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise ValueError(
                f"ModelConfig.num_classes must be an integer, got {self.num_classes!r}."
            )
        if self.num_classes < 2:
            raise ValueError(
                f"ModelConfig.num_classes must be at least 2 (a classifier needs two classes to "
                f"choose between), got {self.num_classes}."
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(
                f"ModelConfig.dropout_rate must be in [0, 1), got {self.dropout_rate}."
            )

    @property
    def fuse_pooling(self) -> bool:
        """Whether training applies the convolution's bias and ReLU after max-pooling.

        They commute with the max, so the outputs are the same and the (batch, 398, 250)
        tensor is only reduced; impossible with batch normalization, which sits in between.
        """
        return not self.batch_normalization


@dataclass(frozen=True)
class DataOptions:
    """Where a table file or class folder keeps its texts and labels, and how to split it.

    The IMDB sources ignore it.

    Attributes:
        text_columns: CSV/TSV columns or JSON Lines keys whose values, joined with one space,
            make a row's text (e.g. a title and a description).
        label_column: The column or key holding each row's label.
        test_data: A separate labelled test file or folder, in a form ``read_dataset`` reads;
            None holds out ``test_share`` of the training rows instead.
        class_names: A classes.txt (one name per line) naming integer labels.
        test_share: Share of each class held out (seeded) as test rows when there is no test
            data.
        validation_share: Share of each class of the remaining training rows scored after
            each epoch to follow progress, so the test rows are looked at only once, at the
            end; 0 holds none out.
    """

    text_columns: tuple[str, ...] = ("text",)
    label_column: str = "label"
    test_data: str | None = None
    class_names: str | None = None
    test_share: float = 0.2
    # Only followed, never selected on: a small share keeps most rows for training.
    validation_share: float = 0.05

    def __post_init__(self) -> None:
        if isinstance(self.text_columns, str) or not self.text_columns:
            raise ValueError(
                f"DataOptions.text_columns must be a non-empty tuple of column names, got "
                f"{self.text_columns!r}; e.g. ('title', 'description')."
            )
        object.__setattr__(self, "text_columns", tuple(self.text_columns))  # JSON gives a list
        if not self.label_column:
            raise ValueError("DataOptions.label_column must name a column.")
        for name, share, low_ok in (
            ("test_share", self.test_share, False),
            ("validation_share", self.validation_share, True),
        ):
            if isinstance(share, bool) or not isinstance(share, int | float):
                raise ValueError(f"DataOptions.{name} must be a number, got {share!r}.")
            if not (0 <= share < 1 if low_ok else 0 < share < 1):
                interval = "[0, 1)" if low_ok else "(0, 1)"
                raise ValueError(f"DataOptions.{name} must lie in {interval}, got {share}.")


# What the lecture trains with (batch 32, constant Adam 1e-3, 2 epochs): the fields of
# TrainConfig that differ from seqnet's fast recipe.
LECTURE_RECIPE = {
    "epochs": 2,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "learning_rate_schedule": "constant",
    "warmup_epochs": 0.0,
    "validation_samples": None,
}
# The lecture's layers, larger where IMDB's test accuracy gained (docs/benchmarks.md has the
# sweep): windows of 5 tokens, 20,000 words, 800 tokens (the lecture's 400 cut 13 % of the
# reviews), and a third epoch; a fourth overfitted. About twice the fast recipe's time.
ACCURATE_RECIPE = {
    "epochs": 3,
    "model": {"kernel_size": 5, "vocabulary_size": 20000, "sequence_length": 800},
}
# Each recipe as the TrainConfig fields it changes ("model": the ModelConfig fields it
# changes); "fast" is TrainConfig's own defaults.
RECIPES: dict[str, dict[str, Any]] = {
    "fast": {},
    "lecture": LECTURE_RECIPE,
    "accurate": ACCURATE_RECIPE,
}


@dataclass(frozen=True)
class TrainConfig:
    """One training run: data, recipe and network. seqnet's fast recipe is the default.

    Attributes:
        data: A labelled table (.csv, .tsv, .jsonl) or class folder, ``"keras"``,
            ``"synthetic"``, or a path to aclImdb_v1.tar.gz, aclImdb/ or an .npz file (see
            [`read_dataset`][seqnet.data.read_dataset]).
        epochs: Passes over the training split.
        batch_size: Reviews per gradient step, in total over all replicas (the global batch).
        learning_rate: Adam's step size; its peak under a schedule.
        learning_rate_schedule: One of ``LEARNING_RATE_SCHEDULES``: ``"constant"`` (the
            lecture's), ``"cosine"`` (anneals to 0 over the run) or ``"warmup-cosine"`` (rises
            linearly over ``warmup_epochs``, then anneals to 0).
        warmup_epochs: Length of the warm-up of ``"warmup-cosine"``, in epochs.
        seed: Seeds weights, dropout and shuffling.
        validation_samples: Test reviews (a fixed sample) scored after each epoch; None
            scores the whole test split every epoch. The final test accuracy is always
            computed on the whole split.
        synthetic_samples: Reviews per split when ``data="synthetic"``.
        model: The network's architecture.
        distribute: ``"none"`` (one device) or ``"data-parallel"`` (every global batch split
            evenly over all devices; see [`seqnet.parallel`][seqnet.parallel]).
        data_options: How to read a user's labelled texts (columns, test data, shares).
        fit_to_data: The ``model`` sizes (of ``FITTABLE_SIZES``) that a user's own texts set,
            replacing the config's: a vocabulary of the words seen, a length covering most
            texts. The saved config holds the sizes chosen and an empty ``fit_to_data``.
    """

    data: str = "synthetic"  # a .csv/.tsv/.jsonl or class folder, "keras", "synthetic", aclImdb
    # The fast recipe: reaches 0.885+ test accuracy on IMDB in fewer reviews than the lecture's
    # (docs/benchmarks.md has the sweep behind these values).
    epochs: int = 2
    # Batch 32: on a CPU, trimmed batches of 32 train more reviews per second than of 64.
    batch_size: int = 32
    learning_rate: float = 2e-3  # Adam's peak
    learning_rate_schedule: str = "warmup-cosine"
    warmup_epochs: float = 0.1
    seed: int = 0  # weights, dropout and shuffling all derive from it
    # Test reviews scored after each epoch to follow progress: a fixed sample keeps that pass
    # under a tenth of the epoch; the whole test split is scored once, at the end.
    # None: the whole split after every epoch, as the lecture does.
    validation_samples: int | None = 5000
    synthetic_samples: int = 2000  # reviews per split when data="synthetic"
    model: ModelConfig = field(default_factory=ModelConfig)
    distribute: str = "none"  # one of DISTRIBUTE_STRATEGIES
    data_options: DataOptions = field(default_factory=DataOptions)
    fit_to_data: tuple[str, ...] = FITTABLE_SIZES  # sizes a user's texts choose; IMDB keeps its

    def __post_init__(self) -> None:
        object.__setattr__(self, "fit_to_data", tuple(self.fit_to_data))
        unknown = set(self.fit_to_data) - set(FITTABLE_SIZES)
        if unknown:
            raise ValueError(
                f"TrainConfig.fit_to_data takes {', '.join(FITTABLE_SIZES)}; got {sorted(unknown)}."
            )
        require_positive(
            "TrainConfig",
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            synthetic_samples=self.synthetic_samples,
        )
        if self.validation_samples is not None:
            require_positive("TrainConfig", validation_samples=self.validation_samples)
        for name in ("epochs", "batch_size", "seed", "synthetic_samples"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"TrainConfig.{name} must be an integer, got {getattr(self, name)!r}."
                )
        require_choice(
            "TrainConfig",
            "learning_rate_schedule",
            self.learning_rate_schedule,
            LEARNING_RATE_SCHEDULES,
        )
        require_choice("TrainConfig", "distribute", self.distribute, DISTRIBUTE_STRATEGIES)
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"TrainConfig.warmup_epochs must be in [0, epochs={self.epochs}), "
                f"got {self.warmup_epochs}."
            )
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"TrainConfig.model must be a ModelConfig, got {self.model!r}.")

    @classmethod
    def from_recipe(cls, recipe: str = "fast", **overrides: Any) -> TrainConfig:
        """A config for a named recipe (one of ``RECIPES``), with ``overrides`` on top.

        Examples:
            >>> TrainConfig.from_recipe("lecture").batch_size
            32
        """
        require_choice("TrainConfig.from_recipe", "recipe", recipe, RECIPES)
        fields = dict(RECIPES[recipe])
        fields["model"] = ModelConfig(**fields.get("model", {}))
        return cls(**{**fields, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """The config as nested plain dicts, ready for JSON (as saved in metrics.json)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from [`to_dict`][seqnet.config.TrainConfig.to_dict]'s output.

        Also reads the configs of seqnet 0.1, which kept the learning rate and the pooling
        formulation in the model's config.
        """
        values = dict(values)
        model = dict(values.get("model", {}))
        for retired in ("fuse_pooling", "matmul_convolution"):
            model.pop(retired, None)
        if "learning_rate" in model:
            values.setdefault("learning_rate", model.pop("learning_rate"))
            values.setdefault("warmup_epochs", 0.0)  # 0.1 had no warm-up
            values.setdefault("validation_samples", None)  # and scored the whole split
        values["model"] = ModelConfig(**model)
        values["data_options"] = DataOptions(**values.get("data_options", {}))
        # Configs saved before fit_to_data existed were trained at the sizes they name.
        values.setdefault("fit_to_data", ())
        return cls(**values)


# Host names `seqnet serve` answers to unless told more with --allowed-host: a page on another
# site that rebinds its own name to 127.0.0.1 (DNS rebinding) sends its own name, and is refused.
SERVE_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServeLimits:
    """What ``seqnet serve`` accepts from one client, and how long it waits for it.

    Attributes:
        max_body_bytes: Bytes of one request body; more gets 413. 256 long reviews fit.
        max_texts: Texts in one request; more gets 413, so clients split them up.
        max_header_bytes: Bytes of the request line and headers together; more gets 431 and
            the connection is closed after reading at most one more network chunk.
        header_timeout: Seconds from a connection's (or a request's) first byte until its
            headers are complete; a slower client gets 408 and is disconnected.
        body_timeout: Seconds from the end of the headers until the whole body arrived.
        max_queue_texts: Texts waiting for the model, summed over the queued requests; a
            request that would exceed it gets 503 with ``Retry-After`` at once rather than
            a slow answer later.
        retry_after: Seconds a refused client is told to wait (the ``Retry-After`` header).
    """

    max_body_bytes: int = 2 * 1024 * 1024
    max_texts: int = 256
    max_header_bytes: int = 64 * 1024  # browsers send < 8 KiB; cookies of other local apps add up
    header_timeout: float = 10.0
    body_timeout: float = 10.0  # 2 MiB in 10 s needs 1.7 Mbit/s; raise it for slower links
    max_queue_texts: int = 1024  # four full model calls: ~1.3 s of work on 2 CPU cores
    retry_after: int = 1

    def __post_init__(self) -> None:
        require_positive(
            "ServeLimits",
            max_body_bytes=self.max_body_bytes,
            max_texts=self.max_texts,
            max_header_bytes=self.max_header_bytes,
            header_timeout=self.header_timeout,
            body_timeout=self.body_timeout,
            max_queue_texts=self.max_queue_texts,
            retry_after=self.retry_after,
        )
        if self.max_queue_texts < self.max_texts:  # else a full-size request could never run
            raise ValueError(
                f"ServeLimits.max_queue_texts ({self.max_queue_texts}) must be at least "
                f"max_texts ({self.max_texts})."
            )
