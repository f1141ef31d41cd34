"""Raw text -> tokens -> ids, following keras.datasets.imdb's id conventions.

Tokens (tokenizer ``seqnet-words-v2``) are read in every script. After the HTML is stripped
and its entities decoded, text is normalized as a person reads it: NFKC (full-width and
compatibility forms become plain ones), full case folding (``str.casefold``: "Straße" and
"STRASSE" are both "strasse"; "İ" folds to a plain "i"), NFKC again, typographic apostrophes
(’ U+2019, ʼ U+02BC) become "'" and emoji presentation selectors (U+FE0E, U+FE0F) are dropped.
A token is then either

- a **word**: a letter or digit of any script, then letters, combining marks and digits,
  with inner apostrophes joining letters ("don't", "l'été"); or
- a **character** of a script written without spaces between words (Han, Hiragana,
  Katakana with its prolonged sound mark ー, Thai, Lao, Khmer, Myanmar) or an emoji
  (Extended_Pictographic), with the combining marks that follow it: "这部电影" is 4 tokens.

Which characters are letters, marks, digits or of a script is Unicode's data as the
``regex`` module (Python) and the JavaScript engine (the exported page) know it: they agree
on every character Python's ``unicodedata`` knows (tested against Node's engine), so only
characters newer than that can differ between them.

Ids 0, 1 and 2 are padding, start and out-of-vocabulary; id 3 is unused; a word's id is its
frequency rank in the training split plus 3, so the commonest word gets id 4. Only words with
ids below ``num_words`` are kept, exactly as ``keras.datasets.imdb.load_data(num_words=...)``.
"""

from __future__ import annotations

import functools
import html
import itertools
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import regex

from seqnet.config import OOV_ID, PADDING_ID, RESERVED_IDS, START_ID
from seqnet.files import write_atomically

# Bump when tokenization changes: it invalidates cached arrays and saved vocabularies.
TOKENIZER_VERSION = "seqnet-words-v2"
# The patterns below are the one source of both the code and tokenizer_spec()'s JSON, which
# lets other languages reproduce the tokenization; they use no Python-only regex syntax (the
# token pattern is read by Python's `regex` module and by JavaScript with the "u" flag).
LINE_BREAK_PATTERN = r"<br\s*/?>"  # matched case-insensitively
HTML_TAG_PATTERN = r"<[^>]{0,200}>"
NORMALIZATION = "NFKC"
APOSTROPHES = "\u2019\u02bc"  # ’ and ʼ, replaced by '
PRESENTATION_SELECTORS = "\ufe0e\ufe0f"  # the text or emoji style of a symbol: dropped
# Scripts written without spaces between words: each of their characters is a token.
UNSPACED_SCRIPTS = ("Han", "Hiragana", "Katakana", "Thai", "Lao", "Khmer", "Myanmar")
# ー (U+30FC) is in Script=Common but written only in kana; emoji are tokens of their own.
_UNSPACED = "".join(rf"\p{{Script={name}}}" for name in UNSPACED_SCRIPTS) + (
    r"\u30fc\p{Extended_Pictographic}"
)


# Every character is in one general category: letters (L), marks (M), numbers (N) or
# punctuation, symbols, separators and others (P, S, Z, C). So "a letter or number not of an
# unspaced script" is a negated class, "[^\p{C}\p{M}\p{P}\p{S}\p{Z}...]", read by both
# engines and fast in both (class subtraction is not in JavaScript's "u" mode; a lookahead
# before each character made Python's regex five times slower).
def _others(*categories: str) -> str:
    """A class of the characters in none of ``categories`` nor of the unspaced scripts."""
    return "[^" + "".join(rf"\p{{{c}}}" for c in categories) + _UNSPACED + "]"


# One character of an unspaced script or an emoji, not a mark, with the marks after it.
_CHARACTER = rf"(?!\p{{M}})[{_UNSPACED}]\p{{M}}*"
# A letter or number, then letters, marks and numbers, then any "'letters" parts ("don't").
_WORD = (
    _others("C", "M", "P", "S", "Z")
    + _others("C", "P", "S", "Z")
    + "*(?:'"
    + _others("C", "M", "N", "P", "S", "Z")
    + _others("C", "N", "P", "S", "Z")
    + "*)*"
)
TOKEN_PATTERN = f"{_CHARACTER}|{_WORD}"
# What TOKEN_PATTERN matches in ASCII text (tested): the fast path for mostly English text.
ASCII_TOKEN_PATTERN = r"[a-z0-9]+(?:'[a-z]+)*"
# pad()'s sides, Keras' defaults: zeros go in front, a long review keeps its last tokens.
PADDING_SIDE = TRUNCATING_SIDE = "pre"
_LINE_BREAK = re.compile(LINE_BREAK_PATTERN, re.IGNORECASE)
_HTML_TAG = re.compile(HTML_TAG_PATTERN)
_TOKEN = regex.compile(TOKEN_PATTERN)
_ASCII_TOKEN = re.compile(ASCII_TOKEN_PATTERN)
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_DOTTED_CAPITAL_I = "\u0130"  # casefold() gives "i" + U+0307; a reader expects a plain "i"
_JSON_KINDS = {
    bool: "a JSON boolean",
    int: "a JSON number",
    float: "a JSON number",
    str: "a JSON string",
    list: "a JSON array",
    dict: "a JSON object",
}


def clean_text(text: str) -> str:
    """Strip the HTML (``<br />``, tags, entities) and normalize: NFKC, case fold, NFKC.

    Typographic apostrophes become "'", emoji presentation selectors are dropped.
    """
    text = _LINE_BREAK.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = html.unescape(text)
    if text.isascii():  # NFKC leaves ASCII as it is, and folding it is lower-casing it
        return text.lower()
    text = unicodedata.normalize(NORMALIZATION, text)
    text = unicodedata.normalize(NORMALIZATION, case_fold(text))
    for apostrophe in APOSTROPHES:  # str.replace: several times faster than a regex
        text = text.replace(apostrophe, "'")
    for selector in PRESENTATION_SELECTORS:
        text = text.replace(selector, "")
    return text


def case_fold(text: str) -> str:
    """Full case folding (``str.casefold``), except that "İ" becomes "i" without a dot mark."""
    return text.replace(_DOTTED_CAPITAL_I, "i").casefold()


@functools.cache
def case_fold_table() -> dict[str, str]:
    """Every character [`case_fold`][seqnet.text.case_fold] changes, and what it becomes.

    Folding has no context, so folding a text is folding each of its characters: this table
    is the fold for a language without ``casefold`` (JavaScript's ``toLowerCase`` differs).
    """
    characters = (chr(code) for code in range(0x110000) if not 0xD800 <= code < 0xE000)
    return {c: folded for c in characters if (folded := case_fold(c)) != c}


def tokenize(text: str) -> list[str]:
    """Split a raw text into the word tokens the vocabulary is built from."""
    return split_words(clean_text(text))


def split_words(cleaned: str) -> list[str]:
    """The tokens of text already through [`clean_text`][seqnet.text.clean_text]."""
    if cleaned.isascii():
        return _ASCII_TOKEN.findall(cleaned)
    words, start = [], 0
    for low, high, piece_words in non_ascii_pieces(cleaned):
        words += _ASCII_TOKEN.findall(cleaned, start, low)
        words += piece_words
        start = high
    words += _ASCII_TOKEN.findall(cleaned, start)
    return words


def non_ascii_pieces(cleaned: str) -> list[tuple[int, int, list[str]]]:
    """Pieces of a cleaned text between spaces holding all its non-ASCII characters.

    No token holds a space, so the pieces can be read apart from the rest of the text, which
    is ASCII: the token pattern reads them, its ASCII form the rest, several times faster
    (IMDB's non-ASCII reviews are ASCII but for a few words).

    Returns:
        ``(start, end, tokens)`` of each piece, in order.
    """
    pieces, end = [], 0
    for run in _NON_ASCII.finditer(cleaned):
        if run.start() < end:  # in the piece before (a piece ends at a space, which is ASCII)
            continue
        start = cleaned.rfind(" ", 0, run.start()) + 1
        end = cleaned.find(" ", run.end())
        end = len(cleaned) if end == -1 else end
        pieces.append((start, end, _TOKEN.findall(cleaned, start, end)))
    return pieces


def pad(sequences: Sequence[Sequence[int]], maxlen: int) -> np.ndarray:
    """Pad and truncate with Keras' defaults: zeros in front, keep each review's last tokens.

    Args:
        sequences: Token id lists, of any lengths.
        maxlen: Tokens per row of the result.

    Returns:
        int32 array of shape ``(len(sequences), maxlen)``.
    """
    if not len(sequences):
        return np.zeros((0, maxlen), dtype=np.int32)
    return keras.utils.pad_sequences(
        sequences,
        maxlen=maxlen,
        dtype="int32",
        padding=PADDING_SIDE,
        truncating=TRUNCATING_SIDE,
        value=PADDING_ID,
    )


def tokenizer_spec(num_words: int, sequence_length: int) -> dict:
    """The tokenization as a JSON-ready dict, for reimplementing it in another language.

    It describes [`clean_text`][seqnet.text.clean_text], [`tokenize`][seqnet.text.tokenize],
    [`Vocabulary.encode`][seqnet.text.Vocabulary.encode] and [`pad`][seqnet.text.pad] from
    the constants they use, so the description cannot drift from the code.

    Args:
        num_words: The vocabulary's id bound; words ranked past it are out of vocabulary.
        sequence_length: Token ids per review after padding or truncation.

    Returns:
        A dict with the steps in order, the token pattern, the reserved ids and the padding.
        Its patterns are for a regular expression engine that knows Unicode properties
        (``\\p{L}``, ``\\p{Script=Han}``), as JavaScript's with the "u" flag.
    """
    return {
        "format": "seqnet.tokenizer",
        "tokenizer": TOKENIZER_VERSION,
        "steps": [
            {"replace": LINE_BREAK_PATTERN, "ignore_case": True, "with": " "},
            {"replace": HTML_TAG_PATTERN, "ignore_case": False, "with": " "},
            {"unescape_html_entities": "HTML5 character references, as Python's html.unescape"},
            {"normalize": NORMALIZATION},
            {
                "case_fold": case_fold_table(),
                "how": "replace each character (code point) found in the table by its value",
            },
            {"normalize": NORMALIZATION},
            {"replace": _any_of(APOSTROPHES), "ignore_case": False, "with": "'"},
            {"replace": _any_of(PRESENTATION_SELECTORS), "ignore_case": False, "with": ""},
            {"find_all": TOKEN_PATTERN, "ignore_case": False},
        ],
        "unspaced_scripts": list(UNSPACED_SCRIPTS),
        "token_pattern": TOKEN_PATTERN,
        "ids": {
            "padding": PADDING_ID,
            "start": START_ID,
            "out_of_vocabulary": OOV_ID,
            "unused": RESERVED_IDS,
            # Keras' convention: id = 1-based frequency rank + 3, so the commonest word is 4.
            "word": f"index in vocabulary.json's words + {RESERVED_IDS + 1}",
            "first_word_id": RESERVED_IDS + 1,
            "unknown_word": "out_of_vocabulary (every listed word's id is below num_words)",
        },
        "num_words": num_words,
        "start_token_prepended": True,  # before truncation, so a long review loses it
        "sequence_length": sequence_length,
        "padding": PADDING_SIDE,
        "truncating": TRUNCATING_SIDE,
        "dtype": "int32",
    }


def _any_of(characters: str) -> str:
    """A pattern matching any of ``characters``, written as escapes: "[\\u2019\\u02bc]"."""
    return "[" + "".join(f"\\u{ord(character):04x}" for character in characters) + "]"


@dataclass(frozen=True)
class Vocabulary:
    """The word -> id mapping of a trained model, saved beside it so text is encoded identically.

    Args:
        words: Words by frequency rank; ``words[0]`` gets id 4 (``RESERVED_IDS + 1``).
        num_words: Ids are kept below this bound; rarer words map to the out-of-vocabulary id.

    Examples:
        >>> vocabulary = Vocabulary.from_texts(["a good film", "a bad film"], num_words=10)
        >>> vocabulary.encode("A good, good film!")
        [1, 4, 7, 7, 5]
    """

    words: tuple[str, ...]
    num_words: int
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.num_words <= RESERVED_IDS:
            raise ValueError(f"num_words must exceed {RESERVED_IDS}, got {self.num_words}.")
        kept = self.words[: self.num_words - RESERVED_IDS - 1]
        object.__setattr__(self, "words", tuple(kept))
        ids = {word: rank + RESERVED_IDS + 1 for rank, word in enumerate(kept)}
        object.__setattr__(self, "_ids", ids)

    @classmethod
    def from_texts(cls, texts: Iterable[str], num_words: int) -> Vocabulary:
        """Count words in ``texts`` (the training split only) and keep the commonest."""
        return cls.from_token_lists((tokenize(text) for text in texts), num_words)

    @classmethod
    def from_token_lists(cls, token_lists: Iterable[list[str]], num_words: int) -> Vocabulary:
        """Like [`from_texts`][seqnet.text.Vocabulary.from_texts], for already tokenized texts."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        # Ties broken alphabetically so the same corpus always gives the same ids.
        ranked = sorted(counts, key=lambda word: (-counts[word], word))
        return cls(words=tuple(ranked), num_words=num_words)

    @classmethod
    def from_word_index(cls, word_index: Mapping[str, int], num_words: int) -> Vocabulary:
        """Adopt ``keras.datasets.imdb.get_word_index()`` (word -> rank, rank 1 commonest)."""
        ranked = sorted(word_index, key=word_index.__getitem__)
        return cls(words=tuple(ranked), num_words=num_words)

    def __len__(self) -> int:
        return len(self.words)

    def encode_tokens(self, tokens: Iterable[str]) -> list[int]:
        """Ids of tokens, after the start id; unknown or rare words get the out-of-vocabulary id."""
        return [START_ID, *map(self._ids.get, tokens, itertools.repeat(OOV_ID))]

    def encode(self, text: str) -> list[int]:
        """Token ids of one raw review, starting with the start id, unpadded."""
        return self.encode_tokens(tokenize(text))

    def encode_batch(self, texts: Sequence[str], maxlen: int) -> np.ndarray:
        """Encode and pad raw reviews to an int32 array of shape ``(len(texts), maxlen)``."""
        return pad([self.encode(text) for text in texts], maxlen)

    def decode(self, ids: Iterable[int]) -> str:
        """Words of a sequence of ids; padding dropped, other reserved ids shown as markers."""
        markers = {START_ID: "<start>", OOV_ID: "<oov>", RESERVED_IDS: "<unused>"}
        words = []
        for token_id in (int(i) for i in ids):
            if token_id == PADDING_ID:
                continue
            if token_id in markers:
                words.append(markers[token_id])
            else:
                words.append(self.words[token_id - RESERVED_IDS - 1])
        return " ".join(words)

    def to_json(self) -> dict:
        """The vocabulary as a JSON-ready dict, tagged with the tokenizer version."""
        return {
            "format": "seqnet.vocabulary",
            "tokenizer": TOKENIZER_VERSION,
            "num_words": self.num_words,
            "words": list(self.words),
        }

    @classmethod
    def from_json(cls, payload: Mapping) -> Vocabulary:
        """Rebuild a vocabulary from [`to_json`][seqnet.text.Vocabulary.to_json]'s dict.

        Args:
            payload: The parsed JSON, checked before use: it may come from any file.

        Raises:
            ValueError: If ``payload`` is not a seqnet vocabulary, comes from another
                tokenizer, or has a malformed ``num_words`` or ``words``.
        """
        if not isinstance(payload, Mapping):
            raise ValueError(
                f"Not a seqnet vocabulary: expected a JSON object, got {_json_kind(payload)}."
            )
        if payload.get("format") != "seqnet.vocabulary":
            raise ValueError("Not a seqnet vocabulary file (missing format 'seqnet.vocabulary').")
        if payload.get("tokenizer") != TOKENIZER_VERSION:
            raise ValueError(
                f"Vocabulary was made by tokenizer {payload.get('tokenizer')!r}; this seqnet "
                f"tokenizes with {TOKENIZER_VERSION!r}, which gives other ids. Retrain the "
                "model with this seqnet (seqnet train), or use the seqnet that trained it."
            )
        return cls(words=_checked_words(payload), num_words=_checked_num_words(payload))

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON, atomically (a crash never leaves half a file)."""
        write_atomically(Path(path), json.dumps(self.to_json(), ensure_ascii=False).encode())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary written by [`save`][seqnet.text.Vocabulary.save], checking it.

        Args:
            path: The ``vocabulary.json`` file.

        Raises:
            FileNotFoundError: If there is no file at ``path``.
            ValueError: If the file is not a well-formed seqnet vocabulary in JSON; the
                message starts with the path and says what is wrong.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No vocabulary file at {path}.")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
        except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
            reason = "nested too deeply" if isinstance(error, RecursionError) else error
            raise ValueError(f"{path}: not valid JSON ({reason}).") from None
        except OSError as error:
            raise ValueError(f"{path}: cannot read it ({error.strerror or error}).") from None
        try:
            return cls.from_json(payload)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def _no_constant(name: str):
    """``json.loads``' hook for ``Infinity``, ``-Infinity`` and ``NaN``, which JSON lacks."""
    raise ValueError(f"{name} is no JSON value; write a number")


def _json_kind(value) -> str:
    """What JSON calls a parsed value's type: 'a JSON array', 'null', ..."""
    return "null" if value is None else _JSON_KINDS.get(type(value), type(value).__name__)


def _checked_num_words(payload: Mapping) -> int:
    """``payload["num_words"]``, refused unless a whole number above the reserved ids."""
    if "num_words" not in payload:
        raise ValueError("The vocabulary has no 'num_words'.")
    num_words = payload["num_words"]
    if type(num_words) is not int:  # bool is an int subclass, but true is no word count
        raise ValueError(f"'num_words' is {_json_kind(num_words)}, not a whole number.")
    if num_words <= RESERVED_IDS:
        raise ValueError(f"'num_words' must exceed {RESERVED_IDS}, got {num_words}.")
    return num_words


def _checked_words(payload: Mapping) -> tuple[str, ...]:
    """``payload["words"]``, refused unless a list of distinct, non-empty strings."""
    if "words" not in payload:
        raise ValueError("The vocabulary has no 'words'.")
    words = payload["words"]
    if not isinstance(words, list):  # a string would pass as a list of its characters
        raise ValueError(f"'words' is {_json_kind(words)}, not a list of words.")
    first: dict[str, int] = {}
    for index, word in enumerate(words):
        if not isinstance(word, str):
            raise ValueError(f"words[{index}] is {_json_kind(word)}, not a string.")
        if not word:
            raise ValueError(f"words[{index}] is empty.")
        if word in first:  # a repeated word would get two ids, one never used
            raise ValueError(
                f"The vocabulary repeats the word {word!r} (words[{first[word]}] and "
                f"words[{index}])."
            )
        first[word] = index
    return tuple(words)
