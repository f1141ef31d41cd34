"""A built-in IMDB look-alike with a learnable signal, so everything runs offline."""

from __future__ import annotations

import numpy as np

from seqnet.config import OOV_ID, RESERVED_IDS, START_ID, ModelConfig, TrainConfig
from seqnet.data.dataset import Dataset
from seqnet.data.sizes import check_sizes
from seqnet.text import Vocabulary


def make_synthetic(
    *,
    num_words: int = ModelConfig.vocabulary_size,
    maxlen: int = ModelConfig.sequence_length,
    samples: int = TrainConfig.synthetic_samples,
    seed: int = 0,
) -> Dataset:
    """A deterministic IMDB look-alike with a learnable signal, built in so everything runs offline.

    Reviews are filler words drawn with Zipf-like frequencies, of varied length, padded like
    IMDB. Each positive review carries one to three words from a small "positive" set, each
    negative review words from a "negative" set; a model must find them anywhere in the review.

    Args:
        num_words: Vocabulary size: ids lie in ``[0, num_words)``.
        maxlen: Tokens per review after padding.
        samples: Reviews in each split.
        seed: The same seed always gives the same reviews.

    Returns:
        Train and test splits of ``samples`` reviews each, with the vocabulary of made-up words
        (``good0``, ``bad0``, ``word0``, ...).
    """
    check_sizes(num_words=num_words, maxlen=maxlen, synthetic_samples=samples)
    words = _synthetic_words(num_words)
    vocabulary = Vocabulary(words=words, num_words=num_words)
    train = _synthetic_split(np.random.default_rng([seed, 0]), num_words, maxlen, samples)
    test = _synthetic_split(np.random.default_rng([seed, 1]), num_words, maxlen, samples)
    return Dataset(*train, *test, vocabulary=vocabulary, source="synthetic")


def _sentiment_ids(num_words: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the positive and negative marker words: up to 10 each, after the reserved ids."""
    per_class = max(1, min(10, (num_words - RESERVED_IDS - 1) // 4))
    first = RESERVED_IDS + 1
    return np.arange(first, first + per_class), np.arange(first + per_class, first + 2 * per_class)


def _synthetic_words(num_words: int) -> tuple[str, ...]:
    positive, negative = _sentiment_ids(num_words)
    filler = num_words - RESERVED_IDS - 1 - len(positive) - len(negative)
    return (
        *(f"good{i}" for i in range(len(positive))),
        *(f"bad{i}" for i in range(len(negative))),
        *(f"word{i}" for i in range(filler)),
    )


def _synthetic_split(rng: np.random.Generator, num_words: int, maxlen: int, samples: int):
    positive, negative = _sentiment_ids(num_words)
    first_filler = int(negative[-1]) + 1
    labels = rng.integers(0, 2, size=samples).astype(np.int32)
    lengths = rng.integers(max(2, maxlen // 4), maxlen + 1, size=samples)
    x = np.zeros((samples, maxlen), dtype=np.int32)
    for row, (label, length) in enumerate(zip(labels, lengths, strict=True)):
        body = _zipf_filler(rng, first_filler, num_words, length - 1)
        markers = rng.choice(positive if label else negative, size=rng.integers(1, 4))
        positions = rng.choice(len(body), size=min(len(markers), len(body)), replace=False)
        body[positions] = markers[: len(positions)]
        x[row, maxlen - length :] = np.concatenate(([START_ID], body))
    return x, labels


def _zipf_filler(rng: np.random.Generator, low: int, high: int, size: int) -> np.ndarray:
    if low >= high:  # tiny vocabularies have no filler words: repeat the OOV id
        return np.full(size, OOV_ID, dtype=np.int32)
    ranks = rng.zipf(1.3, size=size)
    return (low + (ranks - 1) % (high - low)).astype(np.int32)
