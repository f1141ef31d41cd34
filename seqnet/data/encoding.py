"""Texts -> padded token ids: the training rows' vocabulary, every split encoded through it."""

from __future__ import annotations

import contextlib
import sys

import numpy as np

from seqnet import corpus
from seqnet.progress import ProgressBar, notice
from seqnet.text import Vocabulary, pad, tokenize


def encode_splits(
    texts: dict[str, list[str]], num_words: int, maxlen: int, verbose: bool
) -> tuple[Vocabulary, dict[str, np.ndarray]]:
    """The vocabulary of ``texts["train"]`` and every split padded and encoded through it.

    NumPy does the per-token work ([`seqnet.corpus`][seqnet.corpus]); the ids are those of
    [`encode_splits_reference`][seqnet.data.encoding.encode_splits_reference], which runs
    instead in the one case the fast path cannot vouch for (two long words sharing a hash).
    """
    if verbose:
        notice(f"Tokenizing the {' split and the '.join(texts)} split")
    try:
        return corpus.encode_splits(texts, num_words, maxlen)
    except corpus.HashCollision:
        return encode_splits_reference(texts, num_words, maxlen, verbose)


def encode_splits_reference(
    texts: dict[str, list[str]], num_words: int, maxlen: int, verbose: bool
) -> tuple[Vocabulary, dict[str, np.ndarray]]:
    """``encode_splits`` with [`seqnet.text.tokenize`][seqnet.text.tokenize], text by text."""
    tokens = {
        split: tokenize_all(split_texts, split, verbose) for split, split_texts in texts.items()
    }
    vocabulary = Vocabulary.from_token_lists(tokens["train"], num_words)  # train split only
    # Padding keeps a text's last maxlen ids, so only its last maxlen tokens are looked up.
    encoded = {
        split: pad([vocabulary.encode_tokens(text[-maxlen:]) for text in split_tokens], maxlen)
        for split, split_tokens in tokens.items()
    }
    return vocabulary, encoded


def tokenize_all(texts: list[str], split: str, verbose: bool) -> list[list[str]]:
    """Every text's tokens, with a progress bar over blocks of a thousand texts."""
    if verbose:
        notice(f"Tokenizing the {split} split")
    progress = ProgressBar(len(texts), "texts", sys.stdout, shown=verbose)
    with contextlib.closing(progress):
        tokens = []
        for start in range(0, len(texts), 1000):
            tokens.extend(tokenize(text) for text in texts[start : start + 1000])
            progress.advance_to(len(tokens))
    return tokens
