"""Classify raw text with a trained model and the vocabulary and classes saved beside it."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import keras
import numpy as np

from seqnet.buckets import BUCKET_STEP, bucket_sizes, review_lengths, trimmed_length
from seqnet.config import (
    DECISION_THRESHOLD,
    INFERENCE_BATCH_SIZE,
    RESERVED_IDS,
    ModelConfig,
    check_threshold,
)
from seqnet.data import check_token_ids
from seqnet.model import architecture_of, portable_model
from seqnet.saving import MODEL_FILE, VOCABULARY_FILE, load_model, load_run_config
from seqnet.task import CLASSES_FILE, IMDB_CLASSES, Task, decide_one
from seqnet.text import Vocabulary
from seqnet.user_warnings import warn

# The task of runs that name no classes: IMDB's (seqnet 0.2 wrote no classes.json).
IMDB_TASK = Task()


def check_batch_size(batch_size: int) -> int:
    """Return ``batch_size`` as an int, or raise if it is not a positive integer.

    Args:
        batch_size: Reviews per forward pass.

    Returns:
        ``batch_size`` as an int.

    Raises:
        ValueError: If ``batch_size`` is not an integer of at least 1.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    return int(batch_size)


@dataclass(frozen=True)
class Prediction:
    """One text's class probabilities, and the label and score they imply.

    Args:
        text: The text as given.
        probabilities: The model's probability of each class, in ``classes``' order.
        classes: The class names, in index order; IMDB's by default.
        threshold: For two classes: the probability of the second class (IMDB: positive)
            from which a text gets it. More classes take the most probable one.
        known_words: Words of the text the model read that its vocabulary knows; 0 means
            the model saw nothing but unknown words, so the probabilities say nothing about
            the text. None where not counted.

    Examples:
        >>> Prediction("Superb.", (0.2, 0.8)).label
        'positive'
        >>> Prediction("Goal!", (0.1, 0.7, 0.2), ("World", "Sports", "Business")).score
        0.7
    """

    text: str
    probabilities: tuple[float, ...]
    classes: tuple[str, ...] = IMDB_CLASSES
    threshold: float = DECISION_THRESHOLD
    known_words: int | None = None

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        object.__setattr__(self, "probabilities", tuple(float(p) for p in self.probabilities))
        object.__setattr__(self, "classes", tuple(self.classes))
        if len(self.probabilities) != len(self.classes):
            raise ValueError(
                f"{len(self.probabilities)} probabilities for {len(self.classes)} classes."
            )
        if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in self.probabilities):
            raise ValueError(f"probabilities must lie in [0, 1], got {self.probabilities}.")

    @property
    def index(self) -> int:
        """The index of the label among ``classes``."""
        return decide_one(self.probabilities, self.threshold)

    @property
    def label(self) -> str:
        """The name of the class the text is given."""
        return self.classes[self.index]

    @property
    def score(self) -> float:
        """Confidence in the label: its probability."""
        return self.probabilities[self.index]

    @property
    def probability(self) -> float:
        """For two classes, the probability of the second (IMDB: of a positive review), as
        seqnet 0.2 reported it; for more, the label's."""
        return self.probabilities[1] if len(self.classes) == 2 else self.score

    def to_json(self, *, all_probabilities: bool = False) -> dict:
        """Text, label, score (two classes: and ``probability``), the known words (where
        counted) and, if asked, every class's probability, as ``seqnet predict --json``
        prints them."""
        row = {"text": self.text, "label": self.label, "score": self.score}
        if len(self.classes) == 2:
            row["probability"] = self.probability
        if self.known_words is not None:
            row["known_words"] = self.known_words
        if all_probabilities:
            row["probabilities"] = dict(zip(self.classes, self.probabilities, strict=True))
        return row


class Classifier:
    """A trained model with its vocabulary and classes: raw text in, probabilities out.

    Args:
        model: The portable network of ``config`` (as ``seqnet train`` saves it, or from
            [`portable_model`][seqnet.model.portable_model]).
        vocabulary: The vocabulary the model was trained with; None for a scorer of token
            ids only (data read as ids, such as an .npz file).
        config: The network's config, from the run's saved config.
        task: The classes; IMDB's by default.

    Examples:
        >>> classifier = Classifier.load("runs/imdb-cnn")  # doctest: +SKIP
        >>> classifier.predict("A wonderful, moving film.").label  # doctest: +SKIP
        'positive'
        >>> [p.label for p in classifier.predict(["Superb.", "Dull."])]  # doctest: +SKIP
        ['positive', 'negative']
    """

    def __init__(
        self,
        model: keras.Model,
        vocabulary: Vocabulary | None,
        config: ModelConfig,
        task: Task = IMDB_TASK,
    ) -> None:
        self.model, self.vocabulary, self.config, self.task = model, vocabulary, config, task
        self.vocabulary_size, self.sequence_length = config.vocabulary_size, config.sequence_length
        _check_parts(model, vocabulary, config, task)
        # The same weights for texts of any length: each forward pass runs only the positions
        # its longest text needs, with the same outputs (see seqnet.buckets).
        architecture = architecture_of(config)
        self._window = architecture.trim_window(config)
        self._any_length = (
            model
            if self._window is None
            else portable_model(model, config, from_training=False, variable_length=True)
        )
        # For a few texts at a time, an architecture's faster exact form where it has one
        # (the lecture CNN's tables, seqnet.table_form); larger chunks run the Keras network.
        inference_form = getattr(architecture, "inference_form", None)
        self._inference_form = inference_form(config, model) if inference_form else None

    @classmethod
    def load(cls, workdir: str | Path) -> Classifier:
        """Load the model, vocabulary, config and classes ``seqnet train`` wrote.

        Args:
            workdir: The run folder.

        Returns:
            A classifier for raw text.

        Raises:
            FileNotFoundError: If the model, the vocabulary or the config is missing.
            ValueError: If a file is not a safe, valid model, vocabulary or classes file.
        """
        workdir = Path(workdir)
        return cls(
            load_model(workdir / MODEL_FILE),
            Vocabulary.load(workdir / VOCABULARY_FILE),
            load_run_config(workdir).model,
            Task.load(workdir / CLASSES_FILE),
        )

    @overload
    def predict(
        self,
        texts: str,
        *,
        threshold: float = ...,
        batch_size: int = ...,
        progress: Callable[[int], None] | None = ...,
    ) -> Prediction: ...

    @overload
    def predict(
        self,
        texts: Sequence[str],
        *,
        threshold: float = ...,
        batch_size: int = ...,
        progress: Callable[[int], None] | None = ...,
    ) -> list[Prediction]: ...

    def predict(
        self, texts, *, threshold=DECISION_THRESHOLD, batch_size=INFERENCE_BATCH_SIZE, progress=None
    ):
        """Classify one raw review or several.

        Args:
            texts: One review, or a sequence of them; HTML such as ``<br />`` is cleaned away.
            threshold: For two classes, the probability of the second (IMDB: positive) from
                which a text gets it; more classes take the most probable one.
            batch_size: Reviews per forward pass.
            progress: Called after each batch with the number of reviews it held.

        Returns:
            A [`Prediction`][seqnet.predict.Prediction] for one string, else a list of
            them, one per text, in order. Warns with ``UnknownWordsWarning`` if a review has
            no word the vocabulary knows.

        Raises:
            ValueError: If ``texts`` holds something else than strings, ``threshold`` is not
                in ``(0, 1)`` or ``batch_size`` is not a positive integer.
        """
        threshold = self.task.checked_threshold(threshold)  # before the model runs, not after
        if isinstance(texts, str):
            return self.predict([texts], threshold=threshold, batch_size=batch_size)[0]
        probabilities, known = self._probabilities_and_known_words(texts, batch_size, progress)
        warn_if_unknown(known, self.vocabulary.num_words)
        classes = self.task.class_names
        return [
            Prediction(text, tuple(row), classes, threshold, int(count))
            for text, row, count in zip(texts, probabilities.tolist(), known, strict=True)
        ]

    def predict_probabilities(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = INFERENCE_BATCH_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """The probability of each class for each text.

        Texts are encoded one batch at a time, so a large file never holds all its token ids
        in memory at once.

        Args:
            texts: Raw review texts.
            batch_size: Reviews per forward pass.
            progress: Called after each batch with the number of reviews it held.

        Returns:
            float64 array of shape ``(len(texts), num_classes)``.

        Raises:
            ValueError: If ``texts`` is a single string or holds something else than strings,
                or ``batch_size`` is not a positive integer.
        """
        return self._probabilities_and_known_words(texts, batch_size, progress)[0]

    def _probabilities_and_known_words(
        self, texts: Sequence[str], batch_size: int, progress: Callable[[int], None] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``predict_probabilities``' answer, and each review's count of known word ids."""
        if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
            raise ValueError("texts must be a sequence of strings, e.g. ['a great film'].")
        if self.vocabulary is None:
            raise ValueError("This classifier has no vocabulary; it scores token ids only.")
        check_batch_size(batch_size)
        chunks = [np.zeros((0, self.task.num_classes))]  # no texts: empty arrays
        known = [np.zeros(0, dtype=np.int64)]
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            token_ids = self.vocabulary.encode_batch(batch, self.sequence_length)
            chunks.append(self.predict_token_ids(token_ids, batch_size=batch_size))
            known.append(np.count_nonzero(token_ids > RESERVED_IDS, axis=1))  # words' ids only
            if progress is not None:
                progress(len(batch))
        return np.concatenate(chunks), np.concatenate(known)

    def predict_token_ids(self, token_ids, *, batch_size: int = INFERENCE_BATCH_SIZE) -> np.ndarray:
        """Probabilities for already encoded, padded token ids.

        Args:
            token_ids: Integer ids of shape ``(batch, sequence_length)``, as made by
                [`Vocabulary.encode_batch`][seqnet.text.Vocabulary.encode_batch].
            batch_size: Reviews per forward pass.

        Returns:
            float64 array of shape ``(batch, num_classes)``: each class's probability.

        Raises:
            ValueError: If the ids do not fit the model (see
                [`check_token_ids`][seqnet.data.check_token_ids]), or ``batch_size`` is not a
                positive integer.
        """
        check_batch_size(batch_size)
        x = check_token_ids(token_ids, self.vocabulary_size, self.sequence_length)
        order = np.argsort(review_lengths(x), kind="stable")  # similar lengths share a pass
        chunks = [
            self._forward(x[order[start : start + batch_size]], batch_size)
            for start in range(0, len(x), batch_size)
        ]
        outputs = np.empty((len(x), self.task.output_units), dtype=np.float64)
        outputs[order] = np.concatenate([np.zeros((0, self.task.output_units)), *chunks])
        return self.task.probabilities(outputs).astype(np.float64)

    def compiled_shapes(self, batch_size: int) -> list[tuple[int, int]]:
        """The ``(rows, tokens)`` inputs that forward passes of up to ``batch_size`` reviews
        give Keras' predict function, each compiled once by JAX and TensorFlow; none where
        the architecture's inference form takes every such pass."""
        lengths = bucket_sizes(self.sequence_length) if self._window else [self.sequence_length]
        keras_rows = {_padded_rows(rows, batch_size) for rows in range(1, batch_size + 1)}
        rows = sorted(keras_rows - set(range(1, self._inference_rows + 1)))
        return [(count, length) for count in rows for length in lengths]

    def compile_shapes(self, batch_size: int) -> None:
        """Run every input shape that forward passes of up to ``batch_size`` reviews use, so
        that JAX and TensorFlow compile them now rather than on a later call."""
        for shape in self.compiled_shapes(batch_size):
            self._any_length.predict_on_batch(np.zeros(shape, dtype=np.int32))

    @property
    def _inference_rows(self) -> int:
        """The largest chunk the architecture's inference form takes; 0 without one."""
        return self._inference_form.rows if self._inference_form is not None else 0

    def _forward(self, token_ids: np.ndarray, batch_size: int) -> np.ndarray:
        """The network's outputs for one chunk, trimmed to its longest review's length.

        Up to ``_inference_rows`` texts take the architecture's inference form; more, Keras'
        compiled predict function. ``predict_on_batch`` skips ``predict``'s per-call set-up
        (data adapter, callbacks, progress). Its chunk is padded up to the next power of two
        rows (at most ``batch_size``), so that JAX and TensorFlow compile a handful of shapes
        once, not one per chunk.
        """
        rows = len(token_ids)
        if rows <= self._inference_rows:
            # Nothing compiled per shape here: trimmed to the longest text itself.
            return self._inference_form(self._trimmed(token_ids, step=1))  # (rows, units)
        token_ids = self._trimmed(token_ids, step=BUCKET_STEP)
        padding = _padded_rows(rows, batch_size) - rows
        padded = np.pad(token_ids, ((0, padding), (0, 0)))  # (padded rows, length)
        return np.asarray(self._any_length.predict_on_batch(padded))[:rows]  # (rows, units)

    def _trimmed(self, token_ids: np.ndarray, *, step: int) -> np.ndarray:
        """``token_ids`` without the leading padding its outputs do not need (seqnet.buckets),
        to a multiple of ``step`` tokens; untouched where the architecture cannot trim."""
        if self._window is None:
            return token_ids
        return token_ids[:, -trimmed_length(token_ids, kernel_size=self._window, step=step) :]


def _check_parts(
    model: keras.Model, vocabulary: Vocabulary, config: ModelConfig, task: Task
) -> None:
    """Refuse a model, vocabulary, config and classes that do not belong together."""
    if vocabulary is not None and vocabulary.num_words > config.vocabulary_size:
        raise ValueError(
            f"The vocabulary has {vocabulary.num_words} ids but the model's embedding only "
            f"{config.vocabulary_size}; they do not belong together."
        )
    if task.num_classes != config.num_classes:
        raise ValueError(
            f"The run names {task.num_classes} classes but its model has "
            f"{config.num_classes}; they do not belong together."
        )
    if model.input_shape[1] not in (None, config.sequence_length):
        raise ValueError(
            f"The model reads {model.input_shape[1]} tokens but its config says "
            f"{config.sequence_length}; they do not belong together."
        )


class UnknownWordsWarning(UserWarning):
    """Reviews in which the model knows no word: their probabilities mean nothing."""


def warn_if_unknown(known_words: np.ndarray, vocabulary_words: int) -> None:
    """Warn with ``UnknownWordsWarning`` if any text has no known word.

    Args:
        known_words: Known word ids per text.
        vocabulary_words: The vocabulary's size, to say how small it may be.
    """
    unknown = np.flatnonzero(np.asarray(known_words) == 0)
    if not len(unknown):
        return
    first = ", ".join(str(index + 1) for index in unknown[:5])
    more = ", ..." if len(unknown) > 5 else ""
    warn(
        f"{len(unknown)} of {len(known_words)} texts (number {first}{more}) have no word the "
        f"model's {vocabulary_words:,}-id vocabulary knows, so their probabilities say nothing "
        "about them. Check that they are in the language the run was trained on, or train on "
        "more texts for a larger vocabulary.",
        UnknownWordsWarning,
    )


def _padded_rows(rows: int, batch_size: int) -> int:
    """Rows of a forward pass of ``rows`` reviews: the next power of two, at most
    ``batch_size`` (a chunk never holds more than ``batch_size`` reviews)."""
    return min(batch_size, 1 << (rows - 1).bit_length())
