"""Classify raw review text with a trained model and the vocabulary saved beside it."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import keras
import numpy as np

from seqnet.buckets import bucket_sizes, review_lengths, trimmed_length
from seqnet.config import DECISION_THRESHOLD, INFERENCE_BATCH_SIZE, RESERVED_IDS, check_threshold
from seqnet.data import check_token_ids
from seqnet.model import input_limits, model_config_of, portable_model
from seqnet.saving import MODEL_FILE, VOCABULARY_FILE, load_model
from seqnet.text import Vocabulary


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


def label_and_score(probability: float, threshold: float = DECISION_THRESHOLD) -> tuple[str, float]:
    """The label a probability implies, and the confidence in that label.

    This is the one mapping from the model's output to ``label`` and ``score``, shared by
    [`Prediction`][seqnet.predict.Prediction], ``seqnet predict`` and the serving code.

    Args:
        probability: The model's probability that the review is positive, in ``[0, 1]``.
        threshold: The probability from which a review is labelled positive, in ``(0, 1)``.

    Returns:
        ``("positive", probability)`` if ``probability >= threshold``, else
        ``("negative", 1 - probability)``.

    Raises:
        ValueError: If ``probability`` is not in ``[0, 1]`` or ``threshold`` not in ``(0, 1)``.

    Examples:
        >>> label_and_score(0.8)
        ('positive', 0.8)
        >>> label_and_score(0.25)
        ('negative', 0.75)
    """
    threshold = check_threshold(threshold)
    probability = float(probability)
    if not (math.isfinite(probability) and 0.0 <= probability <= 1.0):
        raise ValueError(f"probability must lie in [0, 1], got {probability}.")
    if probability >= threshold:
        return "positive", probability
    return "negative", 1.0 - probability


@dataclass(frozen=True)
class Prediction:
    """One review's probability of being positive, and the label and score it implies.

    Args:
        text: The review as given.
        probability: The model's probability that the review is positive.
        threshold: The probability from which the review is labelled positive.
        known_words: Words of the review the model read that its vocabulary knows; 0 means
            the model saw nothing but unknown words, so the probability says nothing about
            the review. None where not counted.
    """

    text: str
    probability: float
    threshold: float = DECISION_THRESHOLD
    known_words: int | None = None

    def __post_init__(self) -> None:
        check_threshold(self.threshold)

    @property
    def label(self) -> str:
        """``"positive"`` if the probability is at least the threshold, else ``"negative"``."""
        return label_and_score(self.probability, self.threshold)[0]

    @property
    def score(self) -> float:
        """Confidence in the label: the probability of it, so at least ``1 - threshold``."""
        return label_and_score(self.probability, self.threshold)[1]

    def to_json(self) -> dict:
        """Text, label, score, probability and the known words (where counted), as
        ``seqnet predict --json`` prints them."""
        counted = {} if self.known_words is None else {"known_words": self.known_words}
        return {
            "text": self.text,
            "label": self.label,
            "score": self.score,
            "probability": self.probability,
            **counted,
        }


class Classifier:
    """A trained model plus its vocabulary: raw text in, probabilities out.

    Args:
        model: A trained model built by [`build_imdb_cnn`][seqnet.model.build_imdb_cnn].
        vocabulary: The vocabulary the model was trained with.

    Examples:
        >>> classifier = Classifier.load("runs/imdb-cnn")  # doctest: +SKIP
        >>> classifier.predict("A wonderful, moving film.").label  # doctest: +SKIP
        'positive'
        >>> [p.label for p in classifier.predict(["Superb.", "Dull."])]  # doctest: +SKIP
        ['positive', 'negative']
    """

    def __init__(self, model: keras.Model, vocabulary: Vocabulary) -> None:
        self.model = model
        self.vocabulary = vocabulary
        self.vocabulary_size, self.sequence_length = input_limits(model)
        if vocabulary.num_words > self.vocabulary_size:
            raise ValueError(
                f"The vocabulary has {vocabulary.num_words} ids but the model's embedding only "
                f"{self.vocabulary_size}; they do not belong together."
            )
        # The same weights for reviews of any length: each forward pass convolves only the
        # positions its longest review needs, with the same outputs (see seqnet.buckets).
        self._any_length = portable_model(model, variable_length=True)
        self._kernel_size = model_config_of(model).kernel_size

    @classmethod
    def load(cls, workdir: str | Path) -> Classifier:
        """Load ``model.keras`` and ``vocabulary.json`` written by ``seqnet train``.

        Args:
            workdir: The run folder.

        Returns:
            A classifier for raw text.

        Raises:
            FileNotFoundError: If the model or the vocabulary is missing.
            ValueError: If a file is not a safe, valid model or vocabulary.
        """
        workdir = Path(workdir)
        return cls(load_model(workdir / MODEL_FILE), Vocabulary.load(workdir / VOCABULARY_FILE))

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
            threshold: The probability from which a review is labelled positive.
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
        threshold = check_threshold(threshold)  # before the model runs, not after
        if isinstance(texts, str):
            return self.predict([texts], threshold=threshold, batch_size=batch_size)[0]
        probabilities, known = self._probabilities_and_known_words(texts, batch_size, progress)
        warn_if_unknown(known, self.vocabulary.num_words)
        return [
            Prediction(text, float(probability), threshold, int(count))
            for text, probability, count in zip(texts, probabilities, known, strict=True)
        ]

    def predict_probabilities(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = INFERENCE_BATCH_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Probability that each review is positive.

        Texts are encoded one batch at a time, so a large file never holds all its token ids
        in memory at once.

        Args:
            texts: Raw review texts.
            batch_size: Reviews per forward pass.
            progress: Called after each batch with the number of reviews it held.

        Returns:
            float64 array of shape ``(len(texts),)``.

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
        check_batch_size(batch_size)
        chunks, known = [np.zeros(0)], [np.zeros(0, dtype=np.int64)]  # no texts: empty arrays
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
            float64 array of shape ``(batch,)``.

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
        probabilities = np.empty(len(x), dtype=np.float64)
        probabilities[order] = np.concatenate([np.zeros((0, 1)), *chunks])[:, 0]
        return probabilities

    def compile_shapes(self, batch_size: int) -> None:
        """Run every input shape that forward passes of up to ``batch_size`` reviews use, so
        that JAX and TensorFlow compile them now rather than on a later call."""
        for rows in sorted({_padded_rows(rows, batch_size) for rows in range(1, batch_size + 1)}):
            for length in bucket_sizes(self.sequence_length):
                self._any_length.predict_on_batch(np.zeros((rows, length), dtype=np.int32))

    def _forward(self, token_ids: np.ndarray, batch_size: int) -> np.ndarray:
        """Probabilities of one chunk, through Keras' compiled predict function.

        ``predict_on_batch`` skips ``predict``'s per-call set-up (data adapter, callbacks,
        progress), which dominates at batch 1. The chunk is trimmed to its longest review's
        bucket length and padded up to the next power of two rows (at most ``batch_size``),
        so that JAX and TensorFlow compile a handful of shapes once, not one per chunk.
        """
        rows = len(token_ids)
        trimmed = token_ids[:, -trimmed_length(token_ids, kernel_size=self._kernel_size) :]
        padding = _padded_rows(rows, batch_size) - rows
        padded = np.pad(trimmed, ((0, padding), (0, 0)))  # (padded rows, length)
        return np.asarray(self._any_length.predict_on_batch(padded))[:rows]  # (rows, 1)


class UnknownWordsWarning(UserWarning):
    """Reviews in which the model knows no word: their probabilities mean nothing."""


def warn_if_unknown(known_words: np.ndarray, vocabulary_words: int) -> None:
    """Warn with ``UnknownWordsWarning`` if any review has no known word.

    Args:
        known_words: Known word ids per review.
        vocabulary_words: The vocabulary's size, to say how small it may be.
    """
    unknown = np.flatnonzero(np.asarray(known_words) == 0)
    if not len(unknown):
        return
    first = ", ".join(str(index + 1) for index in unknown[:5])
    more = ", ..." if len(unknown) > 5 else ""
    warnings.warn(
        f"{len(unknown)} of {len(known_words)} reviews (number {first}{more}) have no word the "
        f"model's {vocabulary_words:,}-id vocabulary knows, so their probabilities say nothing "
        "about them. Check that they are in the language the run was trained on, or train on "
        "more reviews for a larger vocabulary.",
        UnknownWordsWarning,
        stacklevel=3,
    )


def _padded_rows(rows: int, batch_size: int) -> int:
    """Rows of a forward pass of ``rows`` reviews: the next power of two, at most
    ``batch_size`` (a chunk never holds more than ``batch_size`` reviews)."""
    return min(batch_size, 1 << (rows - 1).bit_length())
