import inspect
import os
import tarfile
import time

import keras
import numpy as np
import pytest
from conftest import TINY_REVIEWS, add_member, write_tiny_archive, write_tiny_folder

from seqnet.config import OOV_ID, PADDING_ID, START_ID
from seqnet.data import check_labels, check_token_ids, load_imdb, make_synthetic, read_dataset


def test_synthetic_is_deterministic_and_shaped_like_imdb():
    (x_train, y_train), (x_test, y_test) = load_imdb(
        "synthetic", num_words=300, maxlen=50, synthetic_samples=200
    )
    again = load_imdb("synthetic", num_words=300, maxlen=50, synthetic_samples=200)
    np.testing.assert_array_equal(x_train, again[0][0])
    assert x_train.shape == (200, 50) and x_test.shape == (200, 50)
    assert x_train.dtype == np.int32 and y_train.dtype == np.int32
    assert set(np.unique(y_train)) == {0, 1} and 0.35 < y_train.mean() < 0.65
    assert x_train.min() >= 0 and x_train.max() < 300
    assert not np.array_equal(x_train, x_test)


def test_synthetic_reviews_start_after_their_padding():
    dataset = make_synthetic(num_words=300, maxlen=50, samples=100)
    for row in dataset.x_train:
        start = np.flatnonzero(row == START_ID)[0]
        assert (row[:start] == PADDING_ID).all() and (row[start + 1 :] != PADDING_ID).all()


def test_archive_is_read_without_extracting(tiny_archive, tmp_path):
    before = set(tmp_path.iterdir())
    dataset = read_dataset(tiny_archive, num_words=30, maxlen=8, verbose=False)
    assert set(tmp_path.iterdir()) == before
    assert dataset.x_train.shape == (4, 8) and dataset.x_test.shape == (4, 8)
    assert sorted(dataset.y_train) == [0, 0, 1, 1]
    # Test reviews decode through the train vocabulary: words seen only in test are <oov>.
    decoded = {dataset.vocabulary.decode(row) for row in dataset.x_test}
    assert decoded == {
        "<start> loved <oov> great <oov>",
        "<start> great",
        "<start> boring and bad",
        "<start> terrible <oov> <oov>",
    }


def test_vocabulary_is_built_from_the_training_split_only(tiny_archive):
    vocabulary = read_dataset(tiny_archive, num_words=100, maxlen=8, verbose=False).vocabulary
    assert "great" in vocabulary.words and "boring" in vocabulary.words
    # "movie" and "zyzzyva" appear in test reviews only.
    assert "zyzzyva" not in vocabulary.words and "movie" not in vocabulary.words


def test_folder_and_archive_give_the_same_arrays(tiny_archive, tmp_path):
    folder = write_tiny_folder(tmp_path / "extracted")
    from_archive = read_dataset(tiny_archive, num_words=30, maxlen=8, verbose=False)
    for source in (folder, folder.parent):
        from_folder = read_dataset(source, num_words=30, maxlen=8, verbose=False)
        np.testing.assert_array_equal(from_folder.x_train, from_archive.x_train)
        np.testing.assert_array_equal(from_folder.y_test, from_archive.y_test)


def test_second_load_comes_from_the_cache(tiny_archive, monkeypatch):
    first = read_dataset(tiny_archive, num_words=30, maxlen=8, verbose=False)
    monkeypatch.setattr("seqnet.data.imdb._read_raw_text", pytest.fail)  # must not re-tokenize
    started = time.perf_counter()
    second = read_dataset(tiny_archive, num_words=30, maxlen=8, verbose=False)
    assert time.perf_counter() - started < 1.0
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert second.vocabulary == first.vocabulary


def test_cache_is_keyed_by_settings(tiny_archive):
    short = read_dataset(tiny_archive, num_words=30, maxlen=4, verbose=False)
    long = read_dataset(tiny_archive, num_words=30, maxlen=9, verbose=False)
    assert short.x_train.shape[1] == 4 and long.x_train.shape[1] == 9


def test_progress_is_shown_on_first_load(tiny_archive, capsys):
    read_dataset(tiny_archive, num_words=30, maxlen=8, verbose=True)
    assert "Tokenizing the train split" in capsys.readouterr().out


def test_undecodable_bytes_are_replaced_and_reported_once(tmp_path):
    reviews = {key: list(texts) for key, texts in TINY_REVIEWS.items()}
    archive = tmp_path / "bad-bytes.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for (split, label), texts in reviews.items():
            for index, text in enumerate(texts):
                add_member(tar, f"aclImdb/{split}/{label}/{index}_5.txt", text.encode())
        add_member(tar, "aclImdb/train/pos/9_9.txt", b"great \xff\xfe film")
        add_member(tar, "aclImdb/test/neg/9_1.txt", b"bad \xc3 film")
    with pytest.warns(UserWarning, match="2 reviews .* not UTF-8") as caught:
        calling_line = inspect.currentframe().f_lineno + 1
        dataset = read_dataset(archive, num_words=30, maxlen=8, verbose=False)
    (warning,) = [w for w in caught if "UTF-8" in str(w.message)]
    assert len(dataset.x_train) == 5 and len(dataset.x_test) == 5
    # Named at the caller's line, not at one of the calls inside seqnet that led to it.
    assert (warning.filename, warning.lineno) == (__file__, calling_line)


def test_links_and_traversal_names_are_never_followed(tmp_path):
    link = tarfile.TarInfo("aclImdb/train/pos/link_7.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    escape = tarfile.TarInfo("aclImdb/train/pos/../../../../escape_7.txt")
    escape.size = 5
    archive = write_tiny_archive(
        tmp_path / "links.tar.gz", extra=[(link, None), (escape, b"great")]
    )
    with pytest.warns(UserWarning, match="Skipped 1 links"):
        dataset = read_dataset(archive, num_words=30, maxlen=8, verbose=False)
    assert len(dataset.x_train) == 4
    assert not (tmp_path.parent / "escape_7.txt").exists()


def test_huge_member_is_refused(tmp_path):
    huge = tarfile.TarInfo("aclImdb/train/pos/huge_9.txt")
    huge.size = 2 << 20
    archive = write_tiny_archive(tmp_path / "huge.tar.gz", extra=[(huge, b"a" * huge.size)])
    with pytest.raises(ValueError, match="huge_9.txt .* not the IMDB data set"):
        read_dataset(archive, num_words=30, maxlen=8, verbose=False)


def test_missing_source_names_the_valid_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*synthetic"):
        load_imdb(tmp_path / "nowhere.tar.gz")


def test_corrupt_archive_is_a_clear_error(tiny_archive, tmp_path):
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(tiny_archive.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        read_dataset(truncated, verbose=False)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(os.urandom(2048))
    with pytest.raises(ValueError, match="neither a tar archive"):
        read_dataset(garbage, verbose=False)


def test_folder_without_the_layout_is_a_clear_error(tmp_path):
    # Not IMDB's layout (no test/, no neg/): read as class folders, which need text files.
    (tmp_path / "aclImdb" / "train" / "pos").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"aclImdb/train/pos holds no \.txt files"):
        read_dataset(tmp_path, verbose=False)


def test_archive_without_reviews_is_a_clear_error(tmp_path):
    archive = tmp_path / "empty.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_member(tar, "README", b"nothing here")
    with pytest.raises(ValueError, match="aclImdb layout"):
        read_dataset(archive, verbose=False)


@pytest.mark.parametrize("settings", [{"maxlen": 0}, {"num_words": -5}, {"maxlen": 2.5}])
def test_non_positive_sizes_are_refused(settings):
    with pytest.raises(ValueError, match="must be a positive integer"):
        load_imdb("synthetic", **settings)


def _save_npz(path, **overrides):
    arrays = {
        "x_train": np.array([[0, 1, 5, 6], [1, 7, 8, 9]], dtype=np.int64),
        "y_train": np.array([0, 1]),
        "x_test": np.array([[0, 0, 1, 5]], dtype=np.int32),
        "y_test": np.array([1]),
    }
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


def test_npz_is_padded_and_truncated_to_maxlen(tmp_path):
    path = _save_npz(tmp_path / "mine.npz")
    (x_train, y_train), (x_test, _) = load_imdb(path, num_words=10, maxlen=6)
    np.testing.assert_array_equal(x_train, [[0, 0, 0, 1, 5, 6], [0, 0, 1, 7, 8, 9]])
    (x_train, _), _ = load_imdb(path, num_words=10, maxlen=2)
    np.testing.assert_array_equal(x_train, [[5, 6], [8, 9]])
    assert x_test.dtype == np.int32 and y_train.dtype == np.int32


def test_npz_with_object_arrays_is_refused_without_unpickling(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[:] = [[1, 2], [1, 2, 3]]
    path = _save_npz(tmp_path / "ragged.npz", x_train=ragged)
    with pytest.raises(ValueError, match="object arrays.*pad_sequences"):
        load_imdb(path)


def test_npz_problems_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"lacks the arrays \['y_test'\]"):
        np.savez(tmp_path / "partial.npz", x_train=np.zeros((1, 2)), y_train=[0], x_test=[[1]])
        load_imdb(tmp_path / "partial.npz")
    with pytest.raises(ValueError, match="must be 0 .* or 1"):
        load_imdb(_save_npz(tmp_path / "labels.npz", y_train=np.array([0, 3])), num_words=10)
    with pytest.raises(ValueError, match=r"must lie in \[0, 5\)"):
        load_imdb(_save_npz(tmp_path / "ids.npz"), num_words=5)


def test_keras_source_offline_names_the_other_sources(monkeypatch):
    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...")

    monkeypatch.setattr(keras.datasets.imdb, "load_data", offline)
    with pytest.raises(ConnectionError, match="offline use another source: 'synthetic'"):
        load_imdb("keras")


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.array([[1.0, 2.0, 3.0]]), "must be integers"),
        (np.array([[True, False, True]]), "must be integers"),
        (np.array([1, 2, 3]), r"shape \(batch, sequence_length\)"),
        (np.zeros((0, 3), dtype=int), r"shape \(batch, sequence_length\)"),
        (np.array([[1, 2]]), "model expects 3"),
        (np.array([[1, -1, 2]]), "found -1"),
        (np.array([[1, 10, 2]]), r"must lie in \[0, 10\).*found 10"),
        ([[1, 2, 3], [1, 2]], "ragged"),
        (np.array([["a", "b", "c"]]), "must be integers"),
    ],
)
def test_bad_token_ids_are_refused_before_any_backend(x, message):
    with pytest.raises(ValueError, match=message):
        check_token_ids(x, vocabulary_size=10, sequence_length=3)


def test_good_token_ids_pass_as_int32():
    checked = check_token_ids(np.array([[0, 9, 2]], dtype=np.int64), 10, 3)
    assert checked.dtype == np.int32


@pytest.mark.parametrize(
    ("y", "message"),
    [([0, 2], "must be 0"), ([0.5, 1], "must be 0"), ([0], "vector of 2"), (["a", "b"], "numbers")],
)
def test_bad_labels_are_refused(y, message):
    with pytest.raises(ValueError, match=message):
        check_labels(y, 2)


def test_labels_as_column_or_bool_are_accepted():
    np.testing.assert_array_equal(check_labels(np.array([[1], [0]]), 2), [1, 0])
    np.testing.assert_array_equal(check_labels(np.array([True, False]), 2), [1, 0])


def test_oov_id_is_used_for_words_beyond_num_words(tiny_archive):
    dataset = read_dataset(tiny_archive, num_words=6, maxlen=8, verbose=False)
    assert dataset.x_train.max() == 5 and (dataset.x_train == OOV_ID).any()


def test_labels_of_more_classes_are_checked_against_num_classes():
    np.testing.assert_array_equal(check_labels([0, 4, 2], 3, num_classes=5), [0, 4, 2])
    with pytest.raises(ValueError, match="must be a class index 0 to 4; found 5 at index 1"):
        check_labels([0, 5, 2], 3, num_classes=5)


def test_every_old_public_name_is_still_importable():
    import seqnet.data as data

    for name in ("ImdbDataset", "SPLITS", "LABELS", "MAX_REVIEW_BYTES", "default_cache_dir"):
        assert hasattr(data, name)
    assert data.ImdbDataset is data.Dataset
    assert make_synthetic(num_words=50, maxlen=8, samples=4).class_names == ("negative", "positive")
