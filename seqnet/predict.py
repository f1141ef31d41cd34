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
        return "positive" if self.probability >= 0.5 else "negative"

    def to_json(self) -> dict:
        return {"text": self.text, "probability": self.probability, "label": self.label}


class Classifier:
    """A trained model plus its vocabulary: raw text in, probabilities out.

    Args:
        model: A model built by :func:`seqnet.build_imdb_cnn` (trained).
        vocabulary: The vocabulary the model was trained with.

    Example:
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
        """Load ``model.keras`` and ``vocabulary.json`` written by ``seqnet train``."""
        workdir = Path(workdir)
        return cls(load_model(workdir / MODEL_FILE), Vocabulary.load(workdir / VOCABULARY_FILE))

    def predict(self, texts: Sequence[str], *, batch_size: int = 256) -> list[Prediction]:
        """Classify raw reviews."""
        probabilities = self.predict_probabilities(texts, batch_size=batch_size)
        return [Prediction(t, float(p)) for t, p in zip(texts, probabilities, strict=True)]

    def predict_probabilities(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Probability that each review is positive, shape ``(len(texts),)``."""
        if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
            raise ValueError("texts must be a sequence of strings, e.g. ['a great film'].")
        token_ids = self.vocabulary.encode_batch(list(texts), self.sequence_length)
        return self.predict_token_ids(token_ids, batch_size=batch_size)

    def predict_token_ids(self, token_ids, *, batch_size: int = 256) -> np.ndarray:
        """Probabilities for already encoded, padded token ids of shape ``(batch, length)``."""
        x = check_token_ids(token_ids, self.vocabulary_size, self.sequence_length)
        chunks = [
            keras.ops.convert_to_numpy(self.model(x[start : start + batch_size], training=False))
            for start in range(0, len(x), batch_size)
        ]
        return np.concatenate(chunks)[:, 0].astype(np.float64)
