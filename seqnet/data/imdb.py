"""IMDB as padded int32 arrays, from Keras, the official archive, an .npz file or synthetic data.

NumPy and Keras utilities only: importing this module never imports TensorFlow.
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import sys
import tarfile
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import keras
import numpy as np

from seqnet import archive, corpus
from seqnet.config import (
    DATA_SOURCES_HELP,
    OOV_ID,
    RESERVED_IDS,
    START_ID,
    ModelConfig,
    TrainConfig,
)
from seqnet.files import write_atomically
from seqnet.progress import ProgressBar, notice
from seqnet.text import TOKENIZER_VERSION, Vocabulary, pad, tokenize

SPLITS = ("train", "test")
LABELS = {"neg": 0, "pos": 1}
# The longest official review is ~14 kB; anything far beyond that is not a review.
MAX_REVIEW_BYTES = 1 << 20
SHUFFLE_SEED = 113  # keras.datasets.imdb's seed, so splits come in the same kind of order
_CACHE_FORMAT = 2  # 2: token ids stored as uint16 when they fit
_REVIEW_PATH = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/([^/]+\.txt)$")


@dataclass(frozen=True)
class ImdbDataset:
    """Padded train and test arrays and the vocabulary that produced them.

    Attributes:
        x_train: Token ids, int32 of shape ``(reviews, maxlen)``.
        y_train: Labels, int32 of shape ``(reviews,)``: 1 positive, 0 negative.
        x_test: Token ids of the test split, like ``x_train``.
        y_test: Labels of the test split, like ``y_train``.
        vocabulary: The word -> id mapping, or None for .npz data that carries none.
        source: The source the arrays were read from, e.g. ``"synthetic"`` or a path.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    vocabulary: Vocabulary | None
    source: str

    def splits(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """The arrays as ``(x_train, y_train), (x_test, y_test)``, as ``load_imdb`` returns them."""
        return (self.x_train, self.y_train), (self.x_test, self.y_test)

    def checked(self, vocabulary_size: int, sequence_length: int) -> ImdbDataset:
        """The same data with every array checked to fit a model of these sizes.

        Raises:
            ValueError: As [`check_token_ids`][seqnet.data.check_token_ids] and
                [`check_labels`][seqnet.data.check_labels] do, naming the split.
        """
        x_train = check_token_ids(self.x_train, vocabulary_size, sequence_length, name="x_train")
        x_test = check_token_ids(self.x_test, vocabulary_size, sequence_length, name="x_test")
        return dataclasses.replace(
            self,
            x_train=x_train,
            y_train=check_labels(self.y_train, len(x_train), name="y_train"),
            x_test=x_test,
            y_test=check_labels(self.y_test, len(x_test), name="y_test"),
        )


def load_imdb(
    source: str | os.PathLike = "keras",
    *,
    num_words: int = ModelConfig.vocabulary_size,
    maxlen: int = ModelConfig.sequence_length,
    synthetic_samples: int = TrainConfig.synthetic_samples,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = True,
):
    """Load IMDB as ``(x_train, y_train), (x_test, y_test)``, padded like ``pad_sequences``.

    Args:
        source: ``"keras"`` (``keras.datasets.imdb``, downloads once), ``"synthetic"`` (built
            in, offline), a path to ``aclImdb_v1.tar.gz`` or an extracted ``aclImdb/`` folder,
            or a path to an ``.npz`` file with integer arrays ``x_train``, ``y_train``,
            ``x_test`` and ``y_test``.
        num_words: Keep word ids below this (Keras' ``num_words``); rarer words become id 2.
        maxlen: Tokens per review: shorter reviews are padded with 0 in front, longer ones
            keep their last ``maxlen`` tokens.
        synthetic_samples: Reviews per split for ``source="synthetic"``.
        cache_dir: Where tokenized archives are cached; defaults to ``$SEQNET_CACHE_DIR`` or
            ``~/.cache/seqnet``.
        verbose: Show a progress bar while reading raw text.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: token ids as int32 arrays of shape
        ``(reviews, maxlen)`` and labels as int32 vectors, 1 for a positive review.

    Raises:
        FileNotFoundError: If ``source`` is a path that does not exist.
        ConnectionError: If ``source="keras"`` cannot download the data set.
        ValueError: If a size is not a positive integer or a file is not a usable data set.

    Examples:
        >>> (x_train, y_train), (x_test, y_test) = load_imdb("synthetic", maxlen=100)
        >>> x_train.shape, x_train.dtype.name
        ((2000, 100), 'int32')
    """
    dataset = read_dataset(
        source,
        num_words=num_words,
        maxlen=maxlen,
        synthetic_samples=synthetic_samples,
        cache_dir=cache_dir,
        verbose=verbose,
    )
    return dataset.splits()


def read_dataset(
    source: str | os.PathLike = "keras",
    *,
    num_words: int = ModelConfig.vocabulary_size,
    maxlen: int = ModelConfig.sequence_length,
    synthetic_samples: int = TrainConfig.synthetic_samples,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = True,
) -> ImdbDataset:
    """Like [`load_imdb`][seqnet.data.load_imdb], but keeps the vocabulary with the arrays.

    Args:
        source: The data source, as for [`load_imdb`][seqnet.data.load_imdb].
        num_words: Keep word ids below this; rarer words become id 2.
        maxlen: Tokens per review after padding or truncation.
        synthetic_samples: Reviews per split for ``source="synthetic"``.
        cache_dir: Where tokenized archives are cached; defaults to
            [`default_cache_dir()`][seqnet.data.default_cache_dir].
        verbose: Show a progress bar while reading raw text.

    Returns:
        The arrays, the vocabulary that encoded them (None for .npz data) and the source.
    """
    _check_sizes(num_words=num_words, maxlen=maxlen, synthetic_samples=synthetic_samples)
    if source == "keras":
        return _read_keras(num_words, maxlen)
    if source == "synthetic":
        return make_synthetic(num_words=num_words, maxlen=maxlen, samples=synthetic_samples)
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"Data source {str(source)!r} does not exist. Use {DATA_SOURCES_HELP}."
        )
    if path.suffix == ".npz":
        return _read_npz(path, num_words, maxlen)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return _read_raw_text_cached(path, num_words, maxlen, cache, verbose)


def default_cache_dir() -> Path:
    """``$SEQNET_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/seqnet`` or ``~/.cache/seqnet``."""
    if "SEQNET_CACHE_DIR" in os.environ:
        return Path(os.environ["SEQNET_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqnet"


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if sizes["num_words"] <= RESERVED_IDS + 1:
        raise ValueError(
            f"num_words must exceed {RESERVED_IDS + 1} so at least one word fits beside the "
            f"reserved ids 0-{RESERVED_IDS}; got {sizes['num_words']}."
        )


# --- keras.datasets.imdb ---------------------------------------------------------------------


def _read_keras(num_words: int, maxlen: int) -> ImdbDataset:
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=num_words)
        word_index = keras.datasets.imdb.get_word_index()
    except Exception as error:  # Keras raises a bare Exception for a failed download.
        raise ConnectionError(
            f"Could not load keras.datasets.imdb ({error}). It downloads on first use; when "
            f"offline use another source: 'synthetic', a path to aclImdb_v1.tar.gz or aclImdb/, "
            f"or an .npz file."
        ) from None
    return ImdbDataset(
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
) -> ImdbDataset:
    cache_file = cache_dir / f"imdb-{_cache_key(path, num_words, maxlen)}.npz"
    cached = _load_cache(cache_file, str(path))
    if cached is not None:
        return cached
    dataset = _read_raw_text(path, num_words, maxlen, verbose)
    _save_cache(cache_file, dataset)
    return dataset


def _read_raw_text(path: Path, num_words: int, maxlen: int, verbose: bool) -> ImdbDataset:
    if path.is_dir():
        records = _folder_reviews(path, verbose)
    elif _is_tar_archive(path):
        records = _archive_reviews(path, verbose)
    else:
        raise ValueError(
            f"{path} is neither a tar archive, an aclImdb/ folder nor an .npz file. "
            f"Use {DATA_SOURCES_HELP}."
        )
    reviews = _decode_reviews(records, str(path))
    texts = {split: split_texts for split, (split_texts, _) in reviews.items()}
    vocabulary, encoded = _encode_splits(texts, num_words, maxlen, verbose)
    arrays = {}
    shuffler = np.random.default_rng(SHUFFLE_SEED)
    for split, (_, labels) in reviews.items():
        order = shuffler.permutation(len(encoded[split]))
        arrays[split] = (encoded[split][order], np.asarray(labels, dtype=np.int32)[order])
    return ImdbDataset(*arrays["train"], *arrays["test"], vocabulary=vocabulary, source=str(path))


def _encode_splits(
    texts: dict[str, list[str]], num_words: int, maxlen: int, verbose: bool
) -> tuple[Vocabulary, dict[str, np.ndarray]]:
    """The train split's vocabulary and every split padded and encoded through it.

    NumPy does the per-token work ([`seqnet.corpus`][seqnet.corpus]); the ids are those of
    ``_encode_splits_reference``, which runs instead in the one case the fast path cannot
    vouch for (two long words sharing a 64-bit hash).
    """
    if verbose:
        notice("Tokenizing the train split and the test split")
    try:
        return corpus.encode_splits(texts, num_words, maxlen)
    except corpus.HashCollision:
        return _encode_splits_reference(texts, num_words, maxlen, verbose)


def _encode_splits_reference(
    texts: dict[str, list[str]], num_words: int, maxlen: int, verbose: bool
) -> tuple[Vocabulary, dict[str, np.ndarray]]:
    """``_encode_splits`` with Python's ``re``, review by review: the reference for the ids."""
    tokens = {
        split: _tokenize_all(split_texts, split, verbose) for split, split_texts in texts.items()
    }
    vocabulary = Vocabulary.from_token_lists(tokens["train"], num_words)  # train split only
    # Padding keeps a review's last maxlen ids, so only its last maxlen tokens are looked up.
    encoded = {
        split: pad([vocabulary.encode_tokens(review[-maxlen:]) for review in reviews], maxlen)
        for split, reviews in tokens.items()
    }
    return vocabulary, encoded


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


def _is_tar_archive(path: Path) -> bool:
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
        warnings.warn(f"Skipped {links} links in {source}: links are never followed.", stacklevel=3)


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
        warnings.warn(
            f"{len(undecodable)} reviews in {source} had bytes that are not UTF-8; they were "
            f"replaced with U+FFFD (first: {', '.join(undecodable[:3])}).",
            stacklevel=3,
        )
    return {
        split: ([text for _, _, text in reviews], [label for label, _, _ in reviews])
        for split, reviews in by_split.items()
    }


def _tokenize_all(texts: list[str], split: str, verbose: bool) -> list[list[str]]:
    if verbose:
        notice(f"Tokenizing the {split} split")
    progress = ProgressBar(len(texts), "reviews", sys.stdout, shown=verbose)
    with contextlib.closing(progress):
        tokens = []
        for start in range(0, len(texts), 1000):
            tokens.extend(tokenize(text) for text in texts[start : start + 1000])
            progress.advance_to(len(tokens))
    return tokens


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


def _save_cache(cache_file: Path, dataset: ImdbDataset) -> None:
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
        warnings.warn(f"Could not cache tokenized IMDB at {cache_file}: {error}.", stacklevel=4)


def _load_cache(cache_file: Path, source: str) -> ImdbDataset | None:
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as arrays:
            vocabulary = Vocabulary.from_json(json.loads(str(arrays["vocabulary"])))
            splits = [
                arrays[name].astype(np.int32) for name in ("x_train", "y_train", "x_test", "y_test")
            ]
    except (OSError, ValueError, KeyError, zlib.error) as error:
        warnings.warn(f"Ignoring unreadable cache {cache_file} ({error}).", stacklevel=4)
        return None
    return ImdbDataset(*splits, vocabulary=vocabulary, source=source)


# --- user-supplied .npz ----------------------------------------------------------------------

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(path: Path, num_words: int, maxlen: int) -> ImdbDataset:
    """Read pre-tokenized arrays without pickle: an .npz file can never run code."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise ValueError(
                    f"{path} lacks the arrays {missing}; an .npz source needs integer arrays "
                    f"named {', '.join(NPZ_KEYS)}."
                )
            arrays = {key: archive[key] for key in NPZ_KEYS}
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise
        raise ValueError(
            f"{path} holds object arrays, which seqnet never unpickles. Pad the sequences and "
            f"save integer arrays instead, e.g. np.savez(path, x_train=keras.utils."
            f"pad_sequences(x_train, maxlen={maxlen}).astype('int32'), "
            f"y_train=np.asarray(y_train, 'int32'), ...)."
        ) from None
    except (OSError, zlib.error, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npz file ({error}).") from None
    splits = {}
    for split in SPLITS:
        x = check_token_ids(arrays[f"x_{split}"], num_words, name=f"x_{split} in {path}")
        y = check_labels(arrays[f"y_{split}"], len(x), name=f"y_{split} in {path}")
        splits[split] = (_fit_length(x, maxlen), y)
    return ImdbDataset(*splits["train"], *splits["test"], vocabulary=None, source=str(path))


def _fit_length(x: np.ndarray, maxlen: int) -> np.ndarray:
    """Pad in front or keep the last ``maxlen`` columns, as pad_sequences would."""
    if x.shape[1] >= maxlen:
        return np.ascontiguousarray(x[:, x.shape[1] - maxlen :])
    return np.pad(x, ((0, 0), (maxlen - x.shape[1], 0)))


# --- input checks: nothing out of range reaches a backend ------------------------------------


def check_token_ids(
    x, vocabulary_size: int, sequence_length: int | None = None, *, name: str = "token ids"
) -> np.ndarray:
    """Return ``x`` as an int32 ``(batch, length)`` array, or raise ``ValueError`` saying why.

    Backends fail silently on bad ids (JAX returns NaN rows, XLA clamps), so seqnet checks
    dtype, shape and range before any array reaches a model.

    Args:
        x: Token ids, anything ``np.asarray`` turns into a 2-D integer array.
        vocabulary_size: Ids must lie in ``[0, vocabulary_size)``.
        sequence_length: The tokens per review the model expects, or None to accept any.
        name: What ``x`` is called in error messages.

    Returns:
        ``x`` as an int32 array of shape ``(batch, length)``.

    Raises:
        ValueError: If ``x`` is ragged, not integral, not 2-D, empty, of the wrong length or
            holds an id outside the vocabulary.
    """
    try:
        array = np.asarray(x)
    except ValueError:
        raise ValueError(
            f"{name} are ragged; pad them to one length, e.g. keras.utils.pad_sequences(x, "
            f"maxlen={sequence_length or 400})."
        ) from None
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be integers, got dtype {array.dtype}. Token ids come from "
            f"Vocabulary.encode_batch or load_imdb; cast integral values with x.astype('int32')."
        )
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (batch, sequence_length) with batch >= 1, got shape "
            f"{array.shape}; for one review use x[None, :]."
        )
    if sequence_length is not None and array.shape[1] != sequence_length:
        raise ValueError(
            f"{name} have {array.shape[1]} tokens per review, the model expects "
            f"{sequence_length}; pad or truncate with keras.utils.pad_sequences(x, "
            f"maxlen={sequence_length})."
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= vocabulary_size:
        bad = low if low < 0 else high
        raise ValueError(
            f"{name} must lie in [0, {vocabulary_size}) for a vocabulary of {vocabulary_size} "
            f"words, found {bad}. Encode text with the model's own vocabulary, or map rare "
            f"words to the out-of-vocabulary id {OOV_ID}."
        )
    return array.astype(np.int32, copy=False)


def check_labels(y, count: int, *, name: str = "labels") -> np.ndarray:
    """Return labels as an int32 vector of ``count`` zeros and ones, or raise ``ValueError``.

    Args:
        y: Labels, shape ``(count,)`` or ``(count, 1)``, numbers or booleans.
        count: How many labels there must be (the number of reviews).
        name: What ``y`` is called in error messages.

    Returns:
        An int32 array of shape ``(count,)``: 1 positive, 0 negative.

    Raises:
        ValueError: If the shape is wrong or a label is not 0 or 1.
    """
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or len(array) != count:
        raise ValueError(f"{name} must be a vector of {count} labels, got shape {array.shape}.")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must be numbers 0 or 1, got dtype {array.dtype}.")
    outside = ~np.isin(array, (0, 1))
    if outside.any():
        raise ValueError(
            f"{name} must be 0 (negative) or 1 (positive); found {array[outside][0]!r} at "
            f"index {int(np.flatnonzero(outside)[0])}."
        )
    return array.astype(np.int32)


# --- synthetic IMDB-shaped data --------------------------------------------------------------


def make_synthetic(
    *,
    num_words: int = ModelConfig.vocabulary_size,
    maxlen: int = ModelConfig.sequence_length,
    samples: int = TrainConfig.synthetic_samples,
    seed: int = 0,
) -> ImdbDataset:
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
    _check_sizes(num_words=num_words, maxlen=maxlen, synthetic_samples=samples)
    words = _synthetic_words(num_words)
    vocabulary = Vocabulary(words=words, num_words=num_words)
    train = _synthetic_split(np.random.default_rng([seed, 0]), num_words, maxlen, samples)
    test = _synthetic_split(np.random.default_rng([seed, 1]), num_words, maxlen, samples)
    return ImdbDataset(*train, *test, vocabulary=vocabulary, source="synthetic")


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
