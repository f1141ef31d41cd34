"""Classify raw review text with a trained model and the vocabulary saved beside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from seqnet.data import check_token_ids
from seqnet.model import input_limits
from seqnet.saving import MODEL_FILE, VOCABULARY_FILE, load_model
from seqnet.text import Vocabulary


@dataclass(frozen=True)
class Prediction:
    """One review's probability of being positive, and the label it implies."""

    text: str
    probability: float

    @property
    def label(self) -> str:
        """``"positive"`` if the probability is at least 0.5, else ``"negative"``."""
        return "positive" if self.probability >= 0.5 else "negative"

    def to_json(self) -> dict:
        """Text, probability and label, as ``seqnet predict --json`` prints them."""
        return {"text": self.text, "probability": self.probability, "label": self.label}


class Classifier:
    """A trained model plus its vocabulary: raw text in, probabilities out.

    Args:
        model: A trained model built by [`build_imdb_cnn`][seqnet.model.build_imdb_cnn].
        vocabulary: The vocabulary the model was trained with.

    Examples:
        >>> classifier = Classifier.load("runs/imdb-cnn")  # doctest: +SKIP
        >>> classifier.predict(["A wonderful, moving film."])[0].label  # doctest: +SKIP
        'positive'
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

    def predict(self, texts: Sequence[str], *, batch_size: int = 256) -> list[Prediction]:
        """Classify raw reviews.

        Args:
            texts: Raw review texts; HTML such as ``<br />`` is cleaned away.
            batch_size: Reviews per forward pass.

        Returns:
            One [`Prediction`][seqnet.predict.Prediction] per text, in order.
        """
        probabilities = self.predict_probabilities(texts, batch_size=batch_size)
        return [Prediction(t, float(p)) for t, p in zip(texts, probabilities, strict=True)]

    def predict_probabilities(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Probability that each review is positive.

        Args:
            texts: Raw review texts.
            batch_size: Reviews per forward pass.

        Returns:
            float64 array of shape ``(len(texts),)``.

        Raises:
            ValueError: If ``texts`` is a single string or holds something else than strings.
        """
        if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
            raise ValueError("texts must be a sequence of strings, e.g. ['a great film'].")
        token_ids = self.vocabulary.encode_batch(list(texts), self.sequence_length)
        return self.predict_token_ids(token_ids, batch_size=batch_size)

    def predict_token_ids(self, token_ids, *, batch_size: int = 256) -> np.ndarray:
        """Probabilities for already encoded, padded token ids.

        Args:
            token_ids: Integer ids of shape ``(batch, sequence_length)``, as made by
                [`Vocabulary.encode_batch`][seqnet.text.Vocabulary.encode_batch].
            batch_size: Reviews per forward pass.

        Returns:
            float64 array of shape ``(batch,)``.

        Raises:
            ValueError: If the ids do not fit the model (see
                [`check_token_ids`][seqnet.data.check_token_ids]).
        """
        x = check_token_ids(token_ids, self.vocabulary_size, self.sequence_length)
        chunks = [
            self._forward(x[start : start + batch_size], batch_size)
            for start in range(0, len(x), batch_size)
        ]
        return np.concatenate(chunks)[:, 0].astype(np.float64)

    def _forward(self, token_ids: np.ndarray, batch_size: int) -> np.ndarray:
        """Probabilities of one chunk, through Keras' compiled predict function.

        ``predict_on_batch`` skips ``predict``'s per-call set-up (data adapter, callbacks,
        progress), which dominates at batch 1. A short chunk is padded up to the next power
        of two (at most ``batch_size``), so that JAX and TensorFlow compile a handful of
        shapes once instead of one per chunk length.
        """
        rows = len(token_ids)
        bucket = min(batch_size, 1 << (rows - 1).bit_length())  # (bucket, 400)
        padded = np.pad(token_ids, ((0, max(bucket - rows, 0)), (0, 0)))
        return np.asarray(self.model.predict_on_batch(padded))[:rows]  # (rows, 1)
