"""IMDB: keras.datasets.imdb, or the official aclImdb_v1.tar.gz or its extracted folder.

Reviews are read without extracting anything, tokenized once and cached as arrays, keyed by the
source's size and time stamps and every setting. NumPy and Keras utilities only: importing this
module never imports TensorFlow.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import sys
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import keras
import numpy as np

import seqnet.data.encoding as encoding  # the module itself, not the package: no cycle
from seqnet import archive
from seqnet.config import DATA_SOURCES_HELP
from seqnet.data.dataset import Dataset
from seqnet.files import write_atomically
from seqnet.progress import ProgressBar
from seqnet.text import TOKENIZER_VERSION, Vocabulary, pad
from seqnet.user_warnings import warn

SPLITS = ("train", "test")
LABELS = {"neg": 0, "pos": 1}
# The longest official review is ~14 kB; anything far beyond that is not a review.
MAX_REVIEW_BYTES = 1 << 20
SHUFFLE_SEED = 113  # keras.datasets.imdb's seed, so splits come in the same kind of order
_CACHE_FORMAT = 2  # 2: token ids stored as uint16 when they fit
_REVIEW_PATH = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/([^/]+\.txt)$")


def read_imdb_raw(
    path: Path, num_words: int, maxlen: int, cache_dir: Path, verbose: bool
) -> Dataset:
    """IMDB from aclImdb_v1.tar.gz or an extracted aclImdb/ folder, tokenized or from the cache.

    Args:
        path: The archive, the aclImdb/ folder or the folder holding it.
        num_words: Keep the ``num_words - 4`` commonest training words; rarer ones get id 2.
        maxlen: Tokens per review after padding or truncation.
        cache_dir: Where the tokenized arrays are cached.
        verbose: Show progress while reading and tokenizing.

    Returns:
        The train and test splits, shuffled as keras.datasets.imdb shuffles them.
    """
    return _read_raw_text_cached(path, num_words, maxlen, cache_dir, verbose)


def is_imdb_folder(path: Path) -> bool:
    """Whether ``path`` (or its ``aclImdb/``) has exactly IMDB's class folders, pos and neg.

    train/ may also hold ``unsup/`` (the official archive's unlabelled reviews, never read);
    any other class folder makes it a class-folder data set instead.
    """
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    classes = {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            return False
        classes[split] = {entry.name for entry in os.scandir(folder) if entry.is_dir()}
    return classes["train"] - {"unsup"} == set(LABELS) and classes["test"] == set(LABELS)


# --- keras.datasets.imdb ---------------------------------------------------------------------


def read_keras(num_words: int, maxlen: int) -> Dataset:
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=num_words)
        word_index = keras.datasets.imdb.get_word_index()
    except Exception as error:  # Keras raises a bare Exception for a failed download.
        raise ConnectionError(
            f"Could not load keras.datasets.imdb ({error}). It downloads on first use; when "
            f"offline use another source: 'synthetic', a path to aclImdb_v1.tar.gz or aclImdb/, "
            f"or an .npz file."
        ) from None
    return Dataset(
        x_train=pad(x_train, maxlen),
        y_train=np.asarray(y_train, dtype=np.int32),
        x_test=pad(x_test, maxlen),
        y_test=np.asarray(y_test, dtype=np.int32),
        vocabulary=Vocabulary.from_word_index(word_index, num_words),
        source="keras",
    )


# --- the official aclImdb archive or folder --------------------------------------------------


def _read_raw_text_cached(
    path: Path, num_words: int, maxlen: int, cache_dir: Path, verbose: bool
) -> Dataset:
    cache_file = cache_dir / f"imdb-{_cache_key(path, num_words, maxlen)}.npz"
    cached = _load_cache(cache_file, str(path))
    if cached is not None:
        return cached
    dataset = _read_raw_text(path, num_words, maxlen, verbose)
    _save_cache(cache_file, dataset)
    return dataset


def read_imdb_texts(path: Path, *, verbose: bool = False) -> dict[str, tuple[list, list]]:
    """The reviews of aclImdb_v1.tar.gz or an aclImdb/ folder as text, untokenized.

    Args:
        path: The archive, the aclImdb/ folder or the folder holding it.
        verbose: Show progress while reading.

    Returns:
        ``{"train": (texts, labels), "test": (texts, labels)}``, sorted by file name within
        each label (labels: 0 negative, 1 positive).
    """
    if path.is_dir():
        records = _folder_reviews(path, verbose)
    elif is_tar_archive(path):
        records = _archive_reviews(path, verbose)
    else:
        raise ValueError(
            f"{path} is neither a tar archive, an aclImdb/ folder nor an .npz file. "
            f"Use {DATA_SOURCES_HELP}."
        )
    return _decode_reviews(records, str(path))


def _read_raw_text(path: Path, num_words: int, maxlen: int, verbose: bool) -> Dataset:
    reviews = read_imdb_texts(path, verbose=verbose)
    texts = {split: split_texts for split, (split_texts, _) in reviews.items()}
    vocabulary, encoded = encoding.encode_splits(texts, num_words, maxlen, verbose)
    arrays = {}
    shuffler = np.random.default_rng(SHUFFLE_SEED)
    for split, (_, labels) in reviews.items():
        order = shuffler.permutation(len(encoded[split]))
        arrays[split] = (encoded[split][order], np.asarray(labels, dtype=np.int32)[order])
    return Dataset(*arrays["train"], *arrays["test"], vocabulary=vocabulary, source=str(path))


Review = tuple[str, int, str, bytes]  # (split, label, file name, raw bytes)


def _archive_reviews(path: Path, verbose: bool) -> Iterator[Review]:
    """Reviews of a .tar.gz, read in memory; nothing is written to disk, links are skipped.

    A plain gzip tar is inflated in one call and indexed by
    [`seqnet.archive`][seqnet.archive]; anything else, or unusual, is streamed by tarfile.
    """
    data = archive.inflate(path)
    found = archive.members(data) if data is not None else None
    if found is None:
        yield from _stream_archive_reviews(path, verbose)
        return
    links = 0
    for member in found:
        match = _REVIEW_PATH.match(member.name)
        if match is None:
            continue
        if not member.is_file:
            links += 1
            continue
        _check_review_size(member.name, member.size, path)
        content = data[member.offset : member.offset + member.size]
        yield match[1], LABELS[match[2]], match[3], content
    _warn_links(links, path)


def _stream_archive_reviews(path: Path, verbose: bool) -> Iterator[Review]:
    """Stream reviews straight out of the archive with tarfile: one pass, bounded memory."""
    progress = ProgressBar(path.stat().st_size, "bytes read", sys.stdout, shown=verbose)
    links = reviews = 0
    try:
        with open(path, "rb") as raw, _decompressed(raw) as stream:
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for member in archive:
                    match = _REVIEW_PATH.match(member.name)
                    if match is None:
                        continue
                    if not member.isfile():  # never follow symbolic or hard links
                        links += 1
                        continue
                    _check_review_size(member.name, member.size, path)
                    yield match[1], LABELS[match[2]], match[3], archive.extractfile(member).read()
                    reviews += 1
                    if reviews % 500 == 0:
                        progress.advance_to(raw.tell())
            # tarfile stops quietly at a cut-off stream; draining it makes the decompressor
            # notice the missing end-of-stream marker, so a truncated download is an error.
            while stream.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as error:
        raise ValueError(
            f"Could not read {path}: the archive is corrupt or truncated ({error}). "
            f"Download aclImdb_v1.tar.gz again."
        ) from None
    finally:
        progress.close()
    _warn_links(links, path)


def is_tar_archive(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as error:  # compressed, then cut off
        raise ValueError(
            f"Could not read {path}: the archive is corrupt or truncated ({error}). "
            f"Download aclImdb_v1.tar.gz again."
        ) from None


def _decompressed(raw: BinaryIO) -> BinaryIO:
    """A reader that decompresses gzip, bzip2 or xz by their magic bytes, else reads as is."""
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw, mode="rb")
    if magic.startswith(b"\xfd7zXZ"):
        return lzma.LZMAFile(raw, mode="rb")
    return contextlib.nullcontext(raw)


def _folder_reviews(path: Path, verbose: bool) -> Iterator[Review]:
    root = path if (path / "train").is_dir() else path / "aclImdb"
    progress = ProgressBar(None, "reviews read", sys.stdout, shown=verbose)
    with contextlib.closing(progress):  # ends the count's line, even if reading fails
        yield from _folder_split_reviews(path, root, progress)


def _folder_split_reviews(path: Path, root: Path, progress: ProgressBar) -> Iterator[Review]:
    links = 0
    for split in SPLITS:
        for label_name, label in LABELS.items():
            folder = root / split / label_name
            if not folder.is_dir():
                raise ValueError(
                    f"{path} does not have the aclImdb layout: {folder} is missing. Expected "
                    f"aclImdb/{{train,test}}/{{pos,neg}}/*.txt, as in aclImdb_v1.tar.gz."
                )
            for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
                if not entry.name.endswith(".txt"):
                    continue
                if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                    links += 1
                    continue
                _check_review_size(entry.path, entry.stat().st_size, path)
                yield split, label, entry.name, Path(entry.path).read_bytes()
                progress.update(1)
    _warn_links(links, path)


def _check_review_size(name: str, size: int, source: Path) -> None:
    if size > MAX_REVIEW_BYTES:
        raise ValueError(
            f"{name} in {source} is {size:,} bytes, more than the {MAX_REVIEW_BYTES:,} a review "
            f"can be: this is not the IMDB data set."
        )


def _warn_links(links: int, source: Path) -> None:
    if links:
        warn(f"Skipped {links} links in {source}: links are never followed.")


def _decode_reviews(records: Iterator[Review], source: str) -> dict[str, tuple[list, list]]:
    """Decode UTF-8, replacing bad bytes; sort by file name so any file order gives one result."""
    by_split: dict[str, list[tuple[int, str, str]]] = {split: [] for split in SPLITS}
    undecodable = []
    for split, label, name, data in records:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            undecodable.append(f"{split}/{name}")
        by_split[split].append((label, name, text))
    for split, reviews in by_split.items():
        if {label for label, _, _ in reviews} != set(LABELS.values()):
            raise ValueError(
                f"{source} does not have the aclImdb layout: no positive and negative reviews "
                f"under aclImdb/{split}/{{pos,neg}}/*.txt."
            )
        reviews.sort()
    if undecodable:
        warn(
            f"{len(undecodable)} reviews in {source} had bytes that are not UTF-8; they were "
            f"replaced with U+FFFD (first: {', '.join(undecodable[:3])})."
        )
    return {
        split: ([text for _, _, text in reviews], [label for label, _, _ in reviews])
        for split, reviews in by_split.items()
    }


# --- the tokenized-array cache ---------------------------------------------------------------


def _cache_key(path: Path, num_words: int, maxlen: int) -> str:
    """Identify a source by path, size and modification time, plus every setting."""
    path = path.resolve()
    stamped = [path] + ([path / s / lab for s in SPLITS for lab in LABELS] if path.is_dir() else [])
    stamps = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in stamped if p.exists()]
    settings = {
        "stamps": stamps,
        "num_words": num_words,
        "maxlen": maxlen,
        "tokenizer": TOKENIZER_VERSION,
        "format": _CACHE_FORMAT,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]


def _save_cache(cache_file: Path, dataset: Dataset) -> None:
    # uint16 ids halve the file: its write on a cold load, its read on every warm one.
    ids = np.uint16 if dataset.vocabulary.num_words <= 1 << 16 else np.int32
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=dataset.x_train.astype(ids),
        y_train=dataset.y_train,
        x_test=dataset.x_test.astype(ids),
        y_test=dataset.y_test,
        vocabulary=np.array(json.dumps(dataset.vocabulary.to_json())),
    )
    try:
        write_atomically(cache_file, buffer.getvalue())
    except OSError as error:  # a read-only or full disk only costs the next load some time
        warn(f"Could not cache tokenized IMDB at {cache_file}: {error}.")


def _load_cache(cache_file: Path, source: str) -> Dataset | None:
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as arrays:
            vocabulary = Vocabulary.from_json(json.loads(str(arrays["vocabulary"])))
            splits = [
                arrays[name].astype(np.int32) for name in ("x_train", "y_train", "x_test", "y_test")
            ]
    except (OSError, ValueError, KeyError, zlib.error) as error:
        warn(f"Ignoring unreadable cache {cache_file} ({error}).")
        return None
    return Dataset(*splits, vocabulary=vocabulary, source=source)
