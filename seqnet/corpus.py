"""Tokenize, count and encode a whole corpus at once, with NumPy doing the per-token work.

[`seqnet.text.tokenize`][seqnet.text.tokenize] runs Python's ``re`` once per review and makes
one string per token: right for one review, but about 5 s for the 12 million tokens of IMDB.
Here the cleaned reviews are joined into one UTF-8 buffer and the matches of ``text._TOKEN`` are
found as (start, end) offsets by array operations. A word is keyed by its bytes packed into a
uint64 (longer words by a 64-bit hash, checked for collisions), counted with ``np.unique`` and
looked up with ``np.searchsorted``. The ids are those of the reference, id for id: the tests
compare both on tricky text, and the rare hash collision falls back to the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seqnet.config import OOV_ID, RESERVED_IDS, START_ID
from seqnet.text import Vocabulary, clean_text

_APOSTROPHE = ord("'")
# 1 for the bytes of [a-z0-9], the characters words are made of; 0 for everything else.
_WORD_BYTES = bytes(
    int(chr(b).isascii() and chr(b).isalnum() and not chr(b).isupper()) for b in range(256)
)
# Masks keeping the first n bytes of a little-endian uint64, for n = 0..8.
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
_LONG = np.uint64(1 << 63)  # set in hashed keys; packed ASCII never sets it
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


class HashCollision(Exception):
    """Two different long words got the same 64-bit key (astronomically rare)."""


@dataclass(frozen=True)
class Tokens:
    """Every token of a list of texts, as spans of one buffer.

    Attributes:
        buffer: The cleaned texts as UTF-8, each after a newline, then 8 zero bytes.
        starts: Offset of each token's first byte, in text order.
        ends: Offset just past each token's last byte.
        per_text: How many tokens each text has.
    """

    buffer: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    per_text: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def words(self, indices: np.ndarray) -> list[str]:
        """The tokens at ``indices`` as strings."""
        raw = self.buffer
        return [
            raw[start:end].tobytes().decode("ascii")
            for start, end in zip(
                self.starts[indices].tolist(), self.ends[indices].tolist(), strict=True
            )
        ]


def find_tokens(texts: Sequence[str]) -> Tokens:
    """Clean and tokenize ``texts`` exactly as ``[tokenize(text) for text in texts]`` would."""
    # Surrogates (never in decoded files, possible in str) pass as non-ASCII bytes: no token.
    pieces = [clean_text(text).encode("utf-8", "surrogatepass") for text in texts]
    joined = b"\n" + b"\n".join(pieces) + b"\n" + bytes(8)
    buffer = np.frombuffer(joined, dtype=np.uint8)
    word = np.frombuffer(joined.translate(_WORD_BYTES), dtype=np.bool_)
    # The buffer starts and ends outside a word, so run edges alternate start, end, start...
    edges = np.flatnonzero(word[1:] != word[:-1]) + 1
    starts, ends = _join_apostrophes(buffer, edges[0::2], edges[1::2])
    text_ends = np.cumsum([len(piece) + 1 for piece in pieces], dtype=np.int64)
    per_text = np.diff(np.searchsorted(starts, text_ends), prepend=0)
    return Tokens(buffer, starts, ends, per_text)


def _is_letter(values: np.ndarray) -> np.ndarray:
    return (values - np.uint8(ord("a"))) < 26  # uint8 arithmetic wraps below "a"


def _join_apostrophes(
    buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Merge runs of [a-z0-9] joined by an apostrophe, as ``(?:'[a-z]+)*`` does ("don't").

    An apostrophe joins when a letter follows it; after one, only letters continue the token,
    so a digit there ends it and starts the next ("a'b9" gives "a'b" and "9").
    """
    gaps = np.flatnonzero((buffer[ends[:-1]] == _APOSTROPHE) & (starts[1:] == ends[:-1] + 1))
    gaps = gaps[_is_letter(buffer[starts[gaps + 1]])]
    if not gaps.size:
        return starts, ends
    after = _skip_letters(buffer, starts[gaps + 1])
    splits = after[after < ends[gaps + 1]]  # a digit inside the run after the apostrophe
    starts = np.delete(starts, gaps + 1)
    ends = np.delete(ends, gaps)
    starts = np.insert(starts, np.searchsorted(starts, splits), splits)
    ends = np.insert(ends, np.searchsorted(ends, splits), splits)
    return starts, ends


def _skip_letters(buffer: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The first non-letter at or after each position (the buffer ends in zero bytes)."""
    positions = positions.copy()
    active = np.flatnonzero(_is_letter(buffer[positions]))
    while active.size:
        positions[active] += 1
        active = active[_is_letter(buffer[positions[active]])]
    return positions


@dataclass(frozen=True)
class Keys:
    """One uint64 per token, equal exactly when the words are equal.

    Attributes:
        values: A word of up to 8 bytes is its bytes, little-endian; a longer one a hash of its
            8-byte chunks with the top bit set (ASCII never sets it).
        long_keys: The distinct hashed keys, sorted.
        long_tokens: For each of ``long_keys``, the index of one token with that key.
    """

    values: np.ndarray
    long_keys: np.ndarray
    long_tokens: np.ndarray

    def words(self, tokens: Tokens, keys: np.ndarray) -> list[str]:
        """The words whose keys are ``keys`` (each the key of some token)."""
        keys = np.asarray(keys, dtype="<u8")
        hashed = (keys & _LONG) != 0
        spelled = keys.view("S8").tolist()  # NumPy drops the zero bytes of short words
        long_words = tokens.words(self.long_tokens[np.searchsorted(self.long_keys, keys[hashed])])
        long_iter = iter(long_words)
        return [
            next(long_iter) if h else b.decode("ascii")
            for h, b in zip(hashed, spelled, strict=True)
        ]


def token_keys(tokens: Tokens) -> Keys:
    """Key every token by its word; see [`Keys`][seqnet.corpus.Keys].

    Raises:
        HashCollision: If two different long words share a hash.
    """
    lengths = tokens.ends - tokens.starts
    chunks = _chunk_view(tokens.buffer)
    values = _chunk(chunks, tokens.starts, lengths)
    long = np.flatnonzero(lengths > 8)
    hashes = _scramble(values[long])  # else two chunks would hash by their xor alone
    active = np.arange(len(long))
    offset = 8
    while active.size:
        at = long[active]
        chunk = _chunk(chunks, tokens.starts[at] + offset, lengths[at] - offset)
        hashes[active] = _scramble(hashes[active] ^ chunk)
        offset += 8
        active = active[lengths[at] > offset]
    values[long] = hashes | _LONG
    long_keys, long_tokens = _check_long_keys(chunks, tokens.starts, lengths, values, long)
    return Keys(values, long_keys, long_tokens)


def _scramble(values: np.ndarray) -> np.ndarray:
    """A bijection of uint64 that spreads every input bit over the output (multiply, xorshift)."""
    mixed = values * _MULTIPLIER
    return mixed ^ (mixed >> np.uint64(29))


def _chunk_view(buffer: np.ndarray) -> np.ndarray:
    """The 8 bytes at every offset of ``buffer`` as a little-endian uint64 (a view, no copy)."""
    return np.ndarray((len(buffer) - 7,), dtype="<u8", buffer=buffer, strides=(1,))


def _chunk(chunks: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The first ``min(length, 8)`` bytes at each start, zero-filled, as uint64."""
    return chunks[starts] & _MASKS[np.minimum(lengths, 8)]


def _check_long_keys(chunks, starts, lengths, values, long) -> tuple[np.ndarray, np.ndarray]:
    """Compare each long token with one token of the same key, chunk by chunk.

    Returns:
        The distinct long keys, sorted, and one token index for each.

    Raises:
        HashCollision: If a token differs from the one it was compared with.
    """
    order = long[np.argsort(values[long])]  # not stable: any token of a key will do
    ordered = values[order]
    is_head = np.ones(len(ordered), dtype=bool)
    is_head[1:] = ordered[1:] != ordered[:-1]
    heads = np.flatnonzero(is_head)
    same_as = order[heads][np.cumsum(is_head) - 1]  # the head token of each token's key
    equal = lengths[same_as] == lengths[order]
    active = np.flatnonzero(equal)
    offset = 0
    while active.size:
        mine, theirs = order[active], same_as[active]
        left = lengths[mine] - offset
        equal[active] = _chunk(chunks, starts[mine] + offset, left) == _chunk(
            chunks, starts[theirs] + offset, left
        )
        offset += 8
        active = active[equal[active] & (left > 8)]
    if not equal.all():
        raise HashCollision("two different words share a 64-bit key")
    return ordered[heads], order[heads]


def rank_words(tokens: Tokens, keys: Keys, count: int, upto: int) -> tuple[list[str], np.ndarray]:
    """The ``count`` commonest words among the first ``upto`` tokens, and their keys.

    Ties are broken alphabetically, as [`Vocabulary`][seqnet.text.Vocabulary] ranks words.
    """
    unique, counts = np.unique(keys.values[:upto], return_counts=True)
    if len(unique) > count:  # only words at least as common as the count-th can rank
        threshold = np.partition(counts, len(counts) - count)[len(counts) - count]
        chosen = counts >= threshold
        unique, counts = unique[chosen], counts[chosen]
    words = keys.words(tokens, unique)
    ranked = sorted(zip((-counts).tolist(), words, unique.tolist(), strict=True))[:count]
    return [word for _, word, _ in ranked], np.array([key for *_, key in ranked], np.uint64)


def encode(tokens: Tokens, keys: Keys, vocabulary_keys: np.ndarray, maxlen: int) -> np.ndarray:
    """Pad and encode every text like ``pad([vocabulary.encode(text) ...], maxlen)``.

    Args:
        tokens: The texts' tokens.
        keys: Their [`token_keys`][seqnet.corpus.token_keys].
        vocabulary_keys: The keys of the vocabulary's words, in id order.
        maxlen: Columns of the result.

    Returns:
        int32 array ``(texts, maxlen)``: the start id then each text's ids, zeros in front,
        truncated in front to ``maxlen`` columns.
    """
    per_text = tokens.per_text
    rows = len(per_text)
    x = np.zeros((rows, maxlen), dtype=np.int32)
    short = np.flatnonzero(per_text < maxlen)
    x[short, maxlen - 1 - per_text[short]] = START_ID
    # Token t of row r lands in column maxlen - from_end, from_end = 1 for r's last token.
    text_end = np.cumsum(per_text)
    from_end = np.repeat(text_end, per_text) - np.arange(len(tokens))
    window = np.flatnonzero(from_end <= maxlen)
    row_end = np.repeat(np.arange(1, rows + 1) * maxlen, per_text)
    x.ravel()[row_end[window] - from_end[window]] = _lookup(keys.values[window], vocabulary_keys)
    return x


def _lookup(keys: np.ndarray, vocabulary_keys: np.ndarray) -> np.ndarray:
    """Ids of ``keys``: ``vocabulary_keys[i]`` has id ``i + 4``; any other key gets OOV_ID.

    A hash table with linear probing, probed for all keys at once: a quarter full, so almost
    every key is settled by its first slot (``np.searchsorted`` is 4x slower here).
    """
    bits = max(4, (4 * len(vocabulary_keys)).bit_length())
    shift = np.uint64(64 - bits)
    # Probing runs past the last slot instead of wrapping, into room for every key.
    table = np.zeros((1 << bits) + len(vocabulary_keys) + 1, dtype=np.uint64)  # 0: empty
    ids = np.full(len(table), OOV_ID, dtype=np.int32)
    home = (_scramble(vocabulary_keys) >> shift).tolist()
    for word_id, (key, slot) in enumerate(zip(vocabulary_keys.tolist(), home, strict=True)):
        while table[slot]:
            slot += 1
        table[slot], ids[slot] = key, word_id + RESERVED_IDS + 1
    slots = (_scramble(keys) >> shift).astype(np.intp)
    found = table[slots]
    result = ids[slots]  # right where the slot holds the key, or is empty (OOV_ID)
    pending = np.flatnonzero((found != keys) & (found != 0))
    while pending.size:  # slot taken by another key: try the next one
        slots[pending] += 1
        found = table[slots[pending]]
        result[pending] = ids[slots[pending]]
        pending = pending[(found != keys[pending]) & (found != 0)]
    return result


def encode_splits(
    texts: dict[str, Sequence[str]], num_words: int, maxlen: int
) -> tuple[Vocabulary, dict[str, np.ndarray]]:
    """The vocabulary of ``texts["train"]`` and every split encoded and padded through it.

    Equal, id for id, to ``Vocabulary.from_texts(texts["train"], num_words)`` and
    ``vocabulary.encode_batch(texts[split], maxlen)``.

    Raises:
        HashCollision: If two different long words share a hash; use the reference then.
    """
    names = ["train", *(name for name in texts if name != "train")]
    tokens = find_tokens([text for name in names for text in texts[name]])
    keys = token_keys(tokens)
    train_tokens = int(tokens.per_text[: len(texts["train"])].sum())
    words, word_keys = rank_words(tokens, keys, num_words - RESERVED_IDS - 1, train_tokens)
    x = encode(tokens, keys, word_keys, maxlen)
    bounds = np.cumsum([0, *(len(texts[name]) for name in names)])
    encoded = {name: x[bounds[i] : bounds[i + 1]] for i, name in enumerate(names)}
    return Vocabulary(words=tuple(words), num_words=num_words), encoded
