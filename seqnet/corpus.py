"""Tokenize, count and encode a whole corpus at once, with NumPy doing the per-token work.

[`seqnet.text.tokenize`][seqnet.text.tokenize] runs a regular expression once per review and
makes one string per token: right for one review, but about 5 s for the 12 million tokens of
IMDB. Here the cleaned reviews are joined into one UTF-8 buffer and their tokens are found as
(start, end) offsets by array operations. A scan of bytes can follow the token pattern only in
ASCII, where it is ``[a-z0-9]+(?:'[a-z]+)*``; a piece of text between spaces that is not ASCII
once cleaned (few, in English corpora) goes into the buffer as its tokens found by the
reference, joined by spaces, and there every byte from 0x80 counts as a letter. A word is
keyed by its bytes packed into a uint64 (longer words by a 64-bit hash, checked for
collisions), counted with ``np.unique`` and looked up in a vectorized hash table. The work
goes in blocks of a few thousand reviews, on two threads (NumPy releases the GIL): small
blocks keep every temporary array in memory that is already mapped, where whole-corpus
arrays spent more time in page faults than computing.
The ids are the reference's, id for id: the tests compare both on tricky text, and a hash
collision (never seen; about 1 in 10^10 for IMDB's vocabulary) falls back to the reference.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from seqnet.config import OOV_ID, RESERVED_IDS, START_ID
from seqnet.text import Vocabulary, clean_text, non_ascii_pieces

BLOCK_TEXTS = 1000  # reviews per block: about 1.3 MB of text, 230,000 tokens
_APOSTROPHE = ord("'")
_NON_ASCII = 0x80  # bytes from here on are only in texts given as their tokens: letters
# 1 for the bytes words are made of: [a-z0-9], and any byte of a non-ASCII character.
_WORD_BYTES = bytes(
    int(b >= _NON_ASCII or chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789") for b in range(256)
)
_PACKED_BYTES = 7  # words up to this long are their own key; the top byte stays zero
# Masks keeping the first n bytes of a little-endian uint64, for n = 0..8.
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
_LONG = np.uint64(1 << 63)  # set in hashed keys; packed words never set it
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


class HashCollision(Exception):
    """Two different long words got the same 64-bit key."""


@dataclass(frozen=True)
class Corpus:
    """Cleaned texts as one buffer: each text's UTF-8 after a newline, then 8 zero bytes.

    A text that is not ASCII once cleaned is given as its tokens, joined by spaces.

    Attributes:
        joined: The buffer as bytes.
        buffer: The same memory as uint8.
        separators: Offset of the newline before each text, and of the final newline.
    """

    joined: bytes
    buffer: np.ndarray
    separators: np.ndarray

    @classmethod
    def of(cls, texts: Iterable[str]) -> Corpus:
        """Clean and join ``texts`` (``clean_text``, then UTF-8)."""
        pieces = [_scannable(clean_text(text)) for text in texts]
        joined = b"\n" + b"\n".join(pieces) + b"\n" + bytes(8)
        separators = np.cumsum([0] + [len(piece) + 1 for piece in pieces], dtype=np.int64)
        return cls(joined, np.frombuffer(joined, dtype=np.uint8), separators)

    def __len__(self) -> int:
        return len(self.separators) - 1

    def spell(self, starts: Iterable[int], lengths: Iterable[int]) -> list[str]:
        """The words at ``starts`` with ``lengths``."""
        raw = self.joined
        return [raw[s : s + n].decode() for s, n in zip(starts, lengths, strict=True)]


def _scannable(cleaned: str) -> bytes:
    """A cleaned text as the byte scan can tokenize it: the ASCII as it is, the pieces that
    are not ASCII (between spaces) as their tokens joined by spaces.

    Tokens hold no byte the scan splits at but apostrophes between letters, which it joins
    again, as the token pattern does.
    """
    if cleaned.isascii():
        return cleaned.encode("ascii")
    parts, start = [], 0
    for low, high, words in non_ascii_pieces(cleaned):
        parts += [cleaned[start:low], " ".join(words)]  # low and high are at spaces
        start = high
    parts.append(cleaned[start:])
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True)
class Tokens:
    """The tokens of texts ``first`` to ``first + len(per_text)`` of a corpus, in order.

    Attributes:
        first: Index of the first text.
        starts: Offset of each token's first byte in the corpus buffer.
        lengths: Bytes in each token.
        per_text: How many tokens each text has.
        keys: One uint64 per token, equal exactly when the words are equal: a word of up to 7
            bytes is its bytes, little-endian; a longer one a hash with the top bit set.
        long_words: The distinct hashed words, checked for collisions.
    """

    first: int
    starts: np.ndarray
    lengths: np.ndarray
    per_text: np.ndarray
    keys: np.ndarray
    long_words: LongWords

    def words(self, corpus: Corpus) -> list[str]:
        """The tokens as strings, as ``text.tokenize`` gives them."""
        return corpus.spell(self.starts.tolist(), self.lengths.tolist())


def find_tokens(corpus: Corpus, first: int = 0, stop: int | None = None) -> Tokens:
    """Tokenize texts ``first`` to ``stop`` exactly as ``text.tokenize`` would."""
    stop = len(corpus) if stop is None else stop
    low, high = int(corpus.separators[first]), int(corpus.separators[stop]) + 1
    word = np.frombuffer(corpus.joined[low:high].translate(_WORD_BYTES), dtype=np.bool_)
    # The block starts and ends with a newline, so run edges alternate start, end, start...
    edges = np.flatnonzero(word[1:] != word[:-1]) + (low + 1)
    starts, ends = _join_apostrophes(corpus.buffer, edges[0::2], edges[1::2])
    text_ends = np.searchsorted(starts, corpus.separators[first + 1 : stop + 1])
    lengths = ends - starts
    keys = _keys(corpus.buffer, starts, lengths)
    long = np.flatnonzero(lengths > _PACKED_BYTES)
    long_words = LongWords.checked(corpus, keys[long], starts[long], lengths[long])
    return Tokens(first, starts, lengths, np.diff(text_ends, prepend=0), keys, long_words)


def _is_letter(values: np.ndarray) -> np.ndarray:
    """[a-z], and bytes of non-ASCII characters: tokens' letters and marks, never digits."""
    return ((values - np.uint8(ord("a"))) < 26) | (values >= _NON_ASCII)  # uint8 wraps below a


def _join_apostrophes(
    buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Merge runs of [a-z0-9] joined by an apostrophe, as ``(?:'[a-z]+)*`` does ("don't").

    An apostrophe joins when a letter follows it; after one, only letters continue the token,
    so a digit there ends it and starts the next ("a'b9" gives "a'b" and "9").
    """
    gaps = np.flatnonzero(buffer[ends[:-1]] == _APOSTROPHE)
    gaps = gaps[(starts[gaps + 1] == ends[gaps] + 1) & _is_letter(buffer[ends[gaps] + 1])]
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


def _keys(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Pack each word of up to 7 bytes into a uint64; hash longer ones 8 bytes at a time."""
    chunks = _chunk_view(buffer)
    keys = _chunk(chunks, starts, lengths)
    long = np.flatnonzero(lengths > _PACKED_BYTES)
    hashes = _scramble(keys[long])  # scrambled first, else two chunks would hash as their xor
    active = np.arange(len(long))
    offset = 8
    while active.size:
        at = long[active]
        chunk = _chunk(chunks, starts[at] + offset, lengths[at] - offset)
        hashes[active] = _scramble(hashes[active] ^ chunk)
        offset += 8
        active = active[lengths[at] > offset]
    keys[long] = hashes | _LONG
    return keys


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


@dataclass(frozen=True)
class LongWords:
    """Every distinct long (hashed) key, sorted, with where one token of it is spelled."""

    keys: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def checked(cls, corpus: Corpus, keys, starts, lengths) -> LongWords:
        """Group words by key, checking that each equals the first word of its group.

        Raises:
            HashCollision: If two different words share a key.
        """
        order = np.argsort(keys)  # not stable: any word of a key can stand for it
        keys, starts, lengths = keys[order], starts[order], lengths[order]
        is_head = np.ones(len(keys), dtype=bool)
        is_head[1:] = keys[1:] != keys[:-1]
        heads = np.flatnonzero(is_head)
        head_of = heads[np.cumsum(is_head) - 1]
        if not _same_words(corpus, starts, starts[head_of], lengths, lengths[head_of]):
            raise HashCollision("two different words share a 64-bit key")
        return cls(keys[heads], starts[heads], lengths[heads])

    @classmethod
    def merged(cls, corpus: Corpus, parts: Sequence[LongWords]) -> LongWords:
        """The long words of all ``parts``, checked across them.

        Each block checks its own tokens where they lie close together in memory; across
        blocks only one word per key and block is compared.
        """
        fields = ("keys", "starts", "lengths")
        return cls.checked(corpus, *(_concatenate([getattr(p, f) for p in parts]) for f in fields))

    def spell(self, corpus: Corpus, keys: np.ndarray) -> list[str]:
        """The words of ``keys``, each a key of some token (short words unpack themselves)."""
        keys = np.asarray(keys, dtype="<u8")
        hashed = (keys & _LONG) != 0
        at = np.searchsorted(self.keys, keys[hashed])
        long = iter(corpus.spell(self.starts[at].tolist(), self.lengths[at].tolist()))
        packed = keys.view("S8").tolist()  # NumPy drops the zero bytes of short words
        return [next(long) if h else p.decode() for h, p in zip(hashed, packed, strict=True)]


def _same_words(corpus: Corpus, starts, other_starts, lengths, other_lengths) -> bool:
    """Whether each word equals the other word, compared 8 bytes at a time."""
    chunks = _chunk_view(corpus.buffer)
    equal = lengths == other_lengths
    active = np.flatnonzero(equal)
    offset = 0
    while active.size:
        left = lengths[active] - offset
        mine = _chunk(chunks, starts[active] + offset, left)
        equal[active] = mine == _chunk(chunks, other_starts[active] + offset, left)
        offset += 8
        active = active[equal[active] & (left > 8)]
    return bool(equal.all())


def _concatenate(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def rank_words(
    corpus: Corpus, blocks: Sequence[Tokens], long_words: LongWords, count: int
) -> tuple[list[str], np.ndarray]:
    """The ``count`` commonest words of ``blocks`` and their keys, most common first.

    Ties are broken alphabetically, as [`Vocabulary`][seqnet.text.Vocabulary] ranks words.
    """
    parts = [np.unique(block.keys, return_counts=True) for block in blocks]
    unique, inverse = np.unique(_concatenate([keys for keys, _ in parts]), return_inverse=True)
    counts = np.bincount(inverse, weights=_concatenate([c for _, c in parts]), minlength=1)
    counts = counts[: len(unique)].astype(np.int64)
    if len(unique) > count:  # only words at least as common as the count-th can rank
        threshold = np.partition(counts, len(counts) - count)[len(counts) - count]
        chosen = counts >= threshold
        unique, counts = unique[chosen], counts[chosen]
    words = long_words.spell(corpus, unique)
    ranked = sorted(zip((-counts).tolist(), words, unique.tolist(), strict=True))[:count]
    return [word for _, word, _ in ranked], np.array([key for *_, key in ranked], np.uint64)


def encode(tokens: Tokens, table: KeyTable, maxlen: int, out: np.ndarray) -> None:
    """Encode and pad the texts of ``tokens`` into ``out``, as ``Vocabulary.encode_batch``.

    Args:
        tokens: The texts' tokens.
        table: The vocabulary's ids.
        maxlen: Columns of ``out``.
        out: int32 zeros of shape ``(len(tokens.per_text), maxlen)``: filled with the start id
            then each text's ids, truncated in front to ``maxlen`` columns.
    """
    per_text = tokens.per_text
    short = np.flatnonzero(per_text < maxlen)
    out[short, maxlen - 1 - per_text[short]] = START_ID
    # Each text keeps its last `kept` tokens, in the last `kept` columns of its row: one run
    # of consecutive tokens and one of consecutive cells per text, each an arange plus a shift.
    kept = np.minimum(per_text, maxlen)
    before = np.cumsum(kept) - kept  # kept tokens of the texts before
    rows = np.arange(len(per_text))
    token_shift = np.repeat(np.cumsum(per_text) - kept - before, kept)
    cell_shift = np.repeat((rows + 1) * maxlen - kept - before, kept)
    step = np.arange(len(token_shift))
    out.ravel()[step + cell_shift] = table.lookup(tokens.keys[step + token_shift])


class KeyTable:
    """Word key -> id: ``keys[i]`` gets id ``i + 4``, any other key the out-of-vocabulary id.

    A hash table with linear probing, probed for all keys at once; a quarter full, so almost
    every key is settled by its first slot (``np.searchsorted`` was 4x slower).
    """

    def __init__(self, keys: np.ndarray) -> None:
        bits = max(4, (4 * len(keys)).bit_length())
        self._shift = np.uint64(64 - bits)
        # Probing runs on past the last slot instead of wrapping, into room for every key.
        self._keys = np.zeros((1 << bits) + len(keys) + 1, dtype=np.uint64)  # 0: empty
        self._ids = np.full(len(self._keys), OOV_ID, dtype=np.int32)
        homes = (_scramble(np.asarray(keys, np.uint64)) >> self._shift).tolist()
        for word_id, (key, slot) in enumerate(zip(keys.tolist(), homes, strict=True)):
            while self._keys[slot]:
                slot += 1
            self._keys[slot], self._ids[slot] = key, word_id + RESERVED_IDS + 1

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """The int32 id of every key."""
        slots = (_scramble(keys) >> self._shift).astype(np.intp)
        found = self._keys[slots]
        ids = self._ids[slots]  # right where the slot holds the key, or is empty (OOV_ID)
        pending = np.flatnonzero((found != keys) & (found != 0))
        while pending.size:  # the slot holds another key: try the next one
            slots[pending] += 1
            found = self._keys[slots[pending]]
            ids[pending] = self._ids[slots[pending]]
            pending = pending[(found != keys[pending]) & (found != 0)]
        return ids


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
    corpus = Corpus.of(text for name in names for text in texts[name])
    bounds = np.cumsum([0, *(len(texts[name]) for name in names)]).tolist()
    spans = [
        (first, min(first + BLOCK_TEXTS, stop))
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
        for first in range(start, stop, BLOCK_TEXTS)
    ]
    blocks = _parallel(lambda span: find_tokens(corpus, *span), spans)
    long_words = LongWords.merged(corpus, [block.long_words for block in blocks])
    train = [block for block in blocks if block.first < bounds[1]]
    words, word_keys = rank_words(corpus, train, long_words, num_words - RESERVED_IDS - 1)
    table = KeyTable(word_keys)
    x = np.zeros((len(corpus), maxlen), dtype=np.int32)
    _parallel(lambda b: encode(b, table, maxlen, x[b.first : b.first + len(b.per_text)]), blocks)
    encoded = {name: x[bounds[i] : bounds[i + 1]] for i, name in enumerate(names)}
    return Vocabulary(words=tuple(words), num_words=num_words), encoded


def _parallel(function: Callable, items: Sequence) -> list:
    """``[function(item) for item in items]`` on up to two threads (NumPy releases the GIL)."""
    workers = min(2, os.cpu_count() or 1, len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, items))
