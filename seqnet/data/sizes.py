"""Model sizes fitted to a user's training texts: how many words to keep, how long a text is.

IMDB keeps the lecture's 5,000 words and 400 tokens; a data set of short news titles or long
posts is better served by sizes taken from its own training texts, by the rules below.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from seqnet.config import RESERVED_IDS

# The ModelConfig fields `read_dataset(fit=...)` can fit to the data.
FITTABLE = ("vocabulary_size", "sequence_length")
# A word seen once in the training texts is mostly a typo or a name: its embedding would be
# trained on a single example. Twice is the least evidence worth an embedding row.
MIN_WORD_COUNT = 2
# Beyond 20,000 words the embedding grows (20,000 x 50 floats: 4 MB) for words too rare to
# learn; IMDB's lecture setting is 5,000.
MAX_FITTED_WORDS = 20_000
# Every training text whole, up to this length. A long text costs only its own batch's time
# (training batches and inference trim to their longest text, seqnet.buckets), while cutting
# it (truncation keeps the end) drops words the max-pool could pick: on RuSentiment, covering
# 95 % of the posts (48 tokens) instead of all (151) lost 0.6 points of macro-F1. The cap
# bounds the padded arrays (4 KB a text) and one batch's activations for corpora of books.
MAX_FITTED_LENGTH = 1_000
# Below 8 tokens the convolution (kernel 3) has almost nothing to slide over.
MIN_SEQUENCE_LENGTH = 8
# Words get ids from RESERVED_IDS + 1 on: padding 0, start 1, out-of-vocabulary 2, unused 3.
FIRST_WORD_ID = RESERVED_IDS + 1

VOCABULARY_RULE = (
    f"words seen at least {MIN_WORD_COUNT} times in the training texts, at most "
    f"{MAX_FITTED_WORDS:,}, plus the {FIRST_WORD_ID} reserved ids"
)
LENGTH_RULE = (
    f"the longest training text's tokens plus the start token, at most {MAX_FITTED_LENGTH:,}, "
    f"at least {MIN_SEQUENCE_LENGTH}"
)


def check_sizes(**sizes: int) -> None:
    """Raise a ValueError for any size that is not a positive integer, or too few words."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if sizes["num_words"] <= FIRST_WORD_ID:
        raise ValueError(
            f"num_words must exceed {FIRST_WORD_ID} so at least one word fits beside the "
            f"reserved ids 0-{RESERVED_IDS}; got {sizes['num_words']}."
        )


def check_fit(fit: Collection[str]) -> frozenset[str]:
    """``fit`` as a frozenset, or a ValueError naming a field that cannot be fitted."""
    unknown = sorted(set(fit) - set(FITTABLE))
    if isinstance(fit, str) or unknown:
        raise ValueError(
            f"cannot fit {unknown or fit!r} to the data; fit names ModelConfig fields among "
            f"{', '.join(FITTABLE)}."
        )
    return frozenset(fit)


def fitted_vocabulary_size(word_counts: Sequence[int]) -> int:
    """Embedding rows for the words seen at least ``MIN_WORD_COUNT`` times (one at least).

    Args:
        word_counts: How often each distinct word occurs in the training texts.
    """
    frequent = int(np.count_nonzero(np.asarray(word_counts) >= MIN_WORD_COUNT))
    return min(max(frequent, 1), MAX_FITTED_WORDS) + FIRST_WORD_ID


def fitted_sequence_length(token_counts: Sequence[int]) -> int:
    """Columns holding every text whole, start token included, within the rule's bounds.

    Args:
        token_counts: Tokens of each training text.
    """
    longest = int(np.max(token_counts, initial=0)) + 1  # the start token
    return min(max(longest, MIN_SEQUENCE_LENGTH), MAX_FITTED_LENGTH)


def fitted_sizes(
    token_counts: Sequence[int],
    word_counts: Sequence[int],
    fit: Collection[str],
    *,
    num_words: int,
    maxlen: int,
) -> tuple[int, int, dict]:
    """The vocabulary size and sequence length to use, and a JSON-ready account of them.

    Args:
        token_counts: Tokens of each training text.
        word_counts: How often each distinct word occurs in the training texts.
        fit: The fields to fit (among ``FITTABLE``); the others keep the given value.
        num_words: The vocabulary size asked for, kept unless fitted.
        maxlen: The sequence length asked for, kept unless fitted.

    Returns:
        ``(num_words, maxlen, report)``: ``report[field]`` has ``value``, ``fitted`` and
        ``rule``.
    """
    fit = check_fit(fit)
    sizes = {
        "vocabulary_size": (
            num_words,
            lambda: fitted_vocabulary_size(word_counts),
            VOCABULARY_RULE,
        ),
        "sequence_length": (maxlen, lambda: fitted_sequence_length(token_counts), LENGTH_RULE),
    }
    report = {}
    for name, (given, fitted, rule) in sizes.items():
        value = fitted() if name in fit else given
        report[name] = {
            "value": value,
            "fitted": name in fit,
            "rule": rule if name in fit else "given",
        }
    return report["vocabulary_size"]["value"], report["sequence_length"]["value"], report
