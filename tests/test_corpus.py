"""The vectorized tokenizer and encoder against the reference, review by review, id for id."""

from __future__ import annotations

import tarfile
import unicodedata

import numpy as np
import pytest
from conftest import write_tiny_archive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqnet import archive, corpus, data
from seqnet.text import Vocabulary, tokenize

TRICKY = [
    "",
    "   ",
    "I DON'T like the director's cut, 10/10",
    "a'b9'c 5'a a'5 a'' ''a 'tis rock'n'roll o'reilly's 90's",
    "Great!<br /><br />Fun &amp; <i>Smart</i> &lt;b&gt;bold&lt;/b&gt; &#39;quoted&#39;",
    "&eacute;t&eacute; &amp &#x41;&#65;B &notin; &#0; &#x110000;",
    "<br/>x<BR >y<br\t/>z < not a tag > a < b",
    "\u212a\u0130 Stra\u00dfe caf\u00e9 na\u00efve \u00c9COLE \u03a3\u039f\u03a3",
    "\u00bd \u2460 \uff21\uff22 \u0131 \u017f",
    "numbers 1,000,000 3.14 42nd 007 mp3 b4 x86_64",
    "emoji \U0001f600 and \ud800 lone surrogate and \x00 nul",
    "supercalifragilisticexpialidocious antidisestablishmentarianism " * 3,
    "abcdefgh abcdefghi abcdefghijklmnop abcdefghijklmnopq",
    "it's it’s itʼs it`s",  # ’ and ʼ are read as ', ` is not
    # Other scripts: their pieces reach the byte scan as tokens.
    "Der Film war großartig und schön! Фильм ужасный 这部电影很好看 ΣΊΣΥΦΟΣ",
    "l'été l’été c'est-à-dire aujourd'hui d'œuvre x'é5 é'x 5'é",
    "abcdefé abcdeé abcdefgé ééé éééé abcdefghé éabcdefg",  # keys of 7, 8, 9 bytes
    "a b　cd e​f 😀‍😀 ❤️❤ 👍🏽",  # white space, joiners
    "mixed漢字and日本語text 2024年 abc'日本 ภาษาไทยdef ١٢٣abc",
    "́x ี ️ ー ーa aー",  # a mark or a selector alone; the prolonged sound mark
]

# Text built from the pieces that exercise the tokenizer: words, apostrophes, digits, tags,
# entities, case, non-ASCII letters that lower-case to ASCII, and arbitrary characters.
_PIECES = st.sampled_from(
    [
        "a",
        "z",
        "K",
        "0",
        "9",
        "'",
        "''",
        " ",
        "<br />",
        "<i>",
        "<",
        ">",
        "&amp;",
        "&#39;",
        "&eacute;",
        "\u212a",
        "\u0130",
        "\u00e9",
        "\u00df",
        "\n",
        ".",
        "-",
        "abcdefghij",
        "\u2019",
        "ä",
        "ß",
        "ф",
        "Σ",
        "漢",
        "カ",
        "ー",
        "ก",
        "\u0e35",
        "\u0301",
        "😀",
        "\ufe0f",
        "١",
        "\u00a0",
        "\u3000",
        "\x85",
        "\u200b",
        "\t",
    ]
)
texts = st.lists(_PIECES, max_size=40).map("".join) | st.text(max_size=60)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _tokens(texts_: list[str]) -> tuple[list[str], list[int]]:
    built = corpus.Corpus.of(texts_)
    tokens = corpus.find_tokens(built)
    return tokens.words(built), tokens.per_text.tolist()


def _reference(texts_: list[str]) -> tuple[list[str], list[int]]:
    tokenized = [tokenize(text) for text in texts_]
    return [word for words in tokenized for word in words], [len(words) for words in tokenized]


def test_tricky_text_gives_the_reference_tokens():
    assert _tokens(TRICKY) == _reference(TRICKY)


def test_every_character_gives_the_reference_tokens():
    # Each assigned character of the Basic Multilingual Plane alone, in words, after an
    # apostrophe, by ASCII digits and beside Han, 256 characters to a text.
    assigned = (chr(code) for code in range(0x10000))
    characters = [c for c in assigned if unicodedata.category(c) not in ("Cn", "Cs")]
    texts_ = [
        " ".join(f"{c} a{c}b a'{c} 9{c}9 {c}漢" for c in characters[start : start + 256])
        for start in range(0, len(characters), 256)
    ]
    assert _tokens(texts_) == _reference(texts_)


@FUZZ
@given(st.lists(texts, min_size=1, max_size=6))
def test_random_text_gives_the_reference_tokens(texts_):
    assert _tokens(texts_) == _reference(texts_)


def _reference_splits(splits, num_words, maxlen):
    vocabulary = Vocabulary.from_texts(splits["train"], num_words)
    return vocabulary, {name: vocabulary.encode_batch(t, maxlen) for name, t in splits.items()}


@FUZZ
@given(
    train=st.lists(texts, min_size=1, max_size=8),
    test=st.lists(texts, min_size=1, max_size=4),
    num_words=st.integers(5, 40),
    maxlen=st.integers(1, 12),
)
def test_vocabulary_and_ids_equal_the_reference(train, test, num_words, maxlen):
    splits = {"train": train, "test": test}
    vocabulary, encoded = corpus.encode_splits(splits, num_words, maxlen)
    expected_vocabulary, expected = _reference_splits(splits, num_words, maxlen)
    assert vocabulary == expected_vocabulary
    for name in splits:
        np.testing.assert_array_equal(encoded[name], expected[name])
        assert encoded[name].dtype == np.int32


def test_blocks_and_threads_change_nothing(monkeypatch):
    splits = {"train": TRICKY * 5, "test": TRICKY[::-1] * 3}
    expected_vocabulary, expected = _reference_splits(splits, 30, 9)
    monkeypatch.setattr(corpus, "BLOCK_TEXTS", 7)  # many blocks, on two threads
    vocabulary, encoded = corpus.encode_splits(splits, 30, 9)
    assert vocabulary == expected_vocabulary
    for name in splits:
        np.testing.assert_array_equal(encoded[name], expected[name])


def test_a_hash_collision_falls_back_to_the_reference(monkeypatch):
    splits = {"train": ["abcdefghijk abcdefghijz abcdefghijk"], "test": ["abcdefghijz"]}
    expected_vocabulary, expected = _reference_splits(splits, 10, 5)
    monkeypatch.setattr(corpus, "_scramble", lambda values: values & np.uint64(0))
    with pytest.raises(corpus.HashCollision):
        corpus.encode_splits(splits, 10, 5)
    vocabulary, encoded = data._encode_splits(splits, 10, 5, verbose=False)
    assert vocabulary == expected_vocabulary
    np.testing.assert_array_equal(encoded["test"], expected["test"])


def test_archive_in_memory_equals_tarfile_streaming(tiny_archive, monkeypatch):
    fast = data.read_dataset(tiny_archive, num_words=30, maxlen=8, verbose=False, cache_dir=None)
    monkeypatch.setattr(archive, "inflate", lambda path: None)  # force tarfile's stream
    monkeypatch.setattr(data, "_encode_splits", data._encode_splits_reference)
    monkeypatch.setenv("SEQNET_CACHE_DIR", str(tiny_archive.parent / "other-cache"))
    slow = data.read_dataset(tiny_archive, num_words=30, maxlen=8, verbose=False)
    assert fast.vocabulary == slow.vocabulary
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))


def test_member_index_matches_tarfile(tmp_path):
    folder = tarfile.TarInfo("aclImdb/train/pos")
    folder.type = tarfile.DIRTYPE
    path = write_tiny_archive(tmp_path / "a.tar.gz", extra=[(folder, None)])
    inflated = archive.inflate(path)
    found = archive.members(inflated)
    with tarfile.open(path) as reference:
        expected = [(m.name, m.isfile(), m.size if m.isfile() else 0) for m in reference]
        contents = [reference.extractfile(m).read() for m in reference if m.isfile()]
    assert [(m.name, m.is_file, m.size if m.is_file else 0) for m in found] == expected
    assert [inflated[m.offset : m.offset + m.size] for m in found if m.is_file] == contents


@pytest.mark.parametrize("kind", ["pax long name", "symlink", "truncated", "trailing garbage"])
def test_unusual_archives_are_left_to_tarfile(tmp_path, kind):
    path = tmp_path / "a.tar.gz"
    if kind == "pax long name":
        long = tarfile.TarInfo("aclImdb/train/pos/" + "x" * 120 + "_7.txt")
        long.size = 4
        write_tiny_archive(path, extra=[(long, b"good")])
    elif kind == "symlink":
        link = tarfile.TarInfo("aclImdb/train/pos/link_7.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        write_tiny_archive(path, extra=[(link, None)])
    else:
        whole = write_tiny_archive(tmp_path / "whole.tar.gz").read_bytes()
        path.write_bytes(whole[:-20] if kind == "truncated" else whole + b"junk")
    inflated = archive.inflate(path)
    assert inflated is None or archive.members(inflated) is None
