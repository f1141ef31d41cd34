"""User data sources: CSV, TSV, JSON Lines and class folders, with every refusal and error.

Fixtures are written in tmp_path. The real AG News and RuSentiment files are read when
SEQNET_AG_NEWS and SEQNET_RUSENTIMENT name their folders (as /work/shared/data/ag_news).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import write_tiny_folder
from hypothesis import given
from hypothesis import strategies as st

from seqnet.data import DataOptions, read_dataset
from seqnet.data.sizes import (
    MAX_FITTED_LENGTH,
    MAX_FITTED_WORDS,
    MIN_SEQUENCE_LENGTH,
    fitted_sequence_length,
    fitted_vocabulary_size,
)
from seqnet.data.splits import stratified_holdout
from seqnet.data.table import read_table

FIT_BOTH = frozenset({"vocabulary_size", "sequence_length"})
# Three classes, 10 rows each: enough to hold out a test and a validation row per class.
ANIMALS = {
    "cat": "the cat purrs and sleeps on the warm mat number {i}",
    "dog": "a dog barks loudly at the mailman today {i}",
    "fish": "fish swim in the cold blue water slowly {i}",
}


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def animal_rows(per_class: int = 10) -> list[dict]:
    return [
        {"text": text.format(i=i), "label": label}
        for i in range(per_class)
        for label, text in ANIMALS.items()
    ]


def read(path, **options) -> object:
    seed = options.pop("seed", 0)
    fit = options.pop("fit", frozenset())
    return read_dataset(
        path,
        num_words=50,
        maxlen=12,
        verbose=False,
        options=DataOptions(**options),
        seed=seed,
        fit=fit,
    )


def write_class_folders(root: Path, texts: dict[str, list[str]]) -> Path:
    for label, items in texts.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for index, text in enumerate(items):
            (root / label / f"{index}.txt").write_text(text, encoding="utf-8")
    return root


# --- the forms -------------------------------------------------------------------------------


def test_csv_labels_become_sorted_classes_with_stratified_holdouts(tmp_path):
    dataset = read(write_csv(tmp_path / "animals.csv", animal_rows()))
    assert dataset.class_names == ("cat", "dog", "fish")
    # 30 rows: 2 per class tested (20 %), then 1 of the remaining 8 per class validates.
    assert (
        len(dataset.y_test) == 6 and len(dataset.y_validation) == 3 and len(dataset.y_train) == 21
    )
    for y in (dataset.y_train, dataset.y_validation, dataset.y_test):
        assert y.dtype == np.int32
        assert np.bincount(y).tolist() == [len(y) // 3] * 3  # stratified
    assert dataset.x_train.shape == (21, 12) and dataset.x_validation.shape == (3, 12)
    report = dataset.report
    assert report["test_split"] == {
        "from": str(tmp_path / "animals.csv"),
        "share": 0.2,
        "seed": 0,
        "stratified": True,
    }
    assert (
        report["read"]["train"]["rows_read"] == 30 and report["read"]["train"]["rows_refused"] == {}
    )
    assert report["class_counts"]["validation"] == {"cat": 1, "dog": 1, "fish": 1}
    assert report["text_columns"] == ["text"] and report["label_column"] == "label"
    json.dumps(report)  # JSON-ready, for metrics.json


def test_holdouts_are_seeded_and_never_overlap(tmp_path):
    path = write_csv(tmp_path / "animals.csv", animal_rows())
    first, again, other = read(path, seed=1), read(path, seed=1), read(path, seed=2)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert not np.array_equal(first.x_test, other.x_test)
    rows = [tuple(row) for x in (first.x_train, first.x_validation, first.x_test) for row in x]
    assert len(set(rows)) == 30  # every row in exactly one part (the texts all differ)


def test_stratified_holdout_keeps_every_class_on_both_sides():
    y = np.array([0] * 50 + [1] * 3 + [2] * 2)
    kept, held = stratified_holdout(y, 0.2, seed=0, stream=1)
    assert np.bincount(y[held]).tolist() == [10, 1, 1]
    assert np.bincount(y[kept]).tolist() == [40, 2, 1]
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, held])), np.arange(len(y)))


def test_vocabulary_comes_from_the_rows_trained_on(tmp_path):
    # Each row carries a word of its own: the training rows' must all be in the vocabulary,
    # those of validation and test rows never.
    rows = [{"text": f"common words only{k}{i}", "label": k} for k in "ab" for i in range(10)]
    path = write_csv(tmp_path / "own.csv", rows)
    dataset = read_dataset(path, num_words=100, maxlen=5, verbose=False)
    vocabulary = dataset.vocabulary

    def own_words(x):
        return {row["text"].split()[-1] for row in rows} & {
            word for ids in x for word in vocabulary.decode(ids).split()
        }

    assert len(own_words(dataset.x_train)) == len(dataset.x_train)
    assert own_words(dataset.x_validation) == own_words(dataset.x_test) == set()
    assert len(vocabulary.words) == 2 + len(dataset.x_train)


def test_text_columns_are_joined_with_one_space(tmp_path):
    rows = [
        {"title": f"{label} title", "body": f"{label} body {i}", "class": label}
        for i in range(5)
        for label in ("alpha", "beta")
    ]
    path = write_csv(tmp_path / "news.csv", rows)
    table = read_table(path, DataOptions(text_columns=("title", "body"), label_column="class"))
    assert table.texts[0] == "alpha title alpha body 0"
    dataset = read(path, text_columns=("title", "body"), label_column="class")
    assert dataset.class_names == ("alpha", "beta")
    assert dataset.report["text_columns"] == ["title", "body"]


def test_tsv_is_read_like_csv_with_tabs(tmp_path):
    rows = [dict(row, text=row["text"].replace(" ", ", ")) for row in animal_rows()]
    path = write_csv(tmp_path / "animals.tsv", rows, delimiter="\t")
    dataset = read(path)
    assert dataset.class_names == ("cat", "dog", "fish") and dataset.report["form"] == "tsv"
    assert read_table(path, DataOptions()).texts[0] == rows[0]["text"]


def test_jsonl_integer_labels_sort_numerically(tmp_path):
    lines = [
        json.dumps({"text": f"words of class {k} row {i}", "label": k})
        for k in (10, 2, 1)
        for i in range(4)
    ]
    (tmp_path / "numbers.jsonl").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    dataset = read(tmp_path / "numbers.jsonl", validation_share=0.0)
    assert dataset.class_names == ("1", "2", "10")
    assert dataset.report["form"] == "jsonl" and len(dataset.y_validation) == 0


def test_class_names_file_names_one_based_and_zero_based_labels(tmp_path):
    (tmp_path / "classes.txt").write_text("World\nSports\nBusiness\n", encoding="utf-8")
    for first in (1, 0):
        rows = [{"text": f"story {k} {i}", "label": k + first} for k in range(3) for i in range(4)]
        path = write_csv(tmp_path / f"from{first}.csv", rows)
        dataset = read(path, class_names=str(tmp_path / "classes.txt"), test_share=0.25)
        assert dataset.class_names == ("World", "Sports", "Business")
        # "story 0 ..." rows carry label `first`, which line 1 (World, index 0) names.
        story = {
            dataset.vocabulary.decode(row).split()[2]
            for row in dataset.x_train[dataset.y_train == 0]
        }
        assert story == {"0"}


def test_separate_test_file_is_read_in_the_same_form(tmp_path):
    train = write_csv(tmp_path / "train.csv", animal_rows())
    test = write_csv(tmp_path / "test.csv", animal_rows(2)[::-1])
    dataset = read(train, test_data=str(test))
    assert len(dataset.y_test) == 6 and dataset.report["test_split"] == {"from": str(test)}
    assert len(dataset.y_train) + len(dataset.y_validation) == 30  # nothing held out for test
    assert dataset.report["read"]["test"]["rows_kept"] == 6


def test_class_folders_make_one_class_per_folder(tmp_path):
    root = write_class_folders(
        tmp_path / "mood",
        {k: [f"{k} text number {i}" for i in range(5)] for k in ("sad", "happy", "calm")},
    )
    (root / "happy" / "notes.md").write_text("not a text", encoding="utf-8")
    dataset = read(root)
    assert (
        dataset.class_names == ("calm", "happy", "sad")
        and dataset.report["form"] == "class folders"
    )
    refused = dataset.report["read"]["train"]["rows_refused"]
    assert refused == {"not a .txt file": {"count": 1, "first": [str(root / "happy" / "notes.md")]}}


def test_train_and_test_class_folders(tmp_path):
    texts = {k: [f"{k} words {i}" for i in range(4)] for k in ("a", "b")}
    write_class_folders(tmp_path / "set" / "train", texts)
    write_class_folders(tmp_path / "set" / "test", {"b": ["b words x"], "a": ["a words y"]})
    dataset = read(tmp_path / "set")
    assert dataset.class_names == ("a", "b") and len(dataset.y_test) == 2
    assert dataset.report["test_split"] == {"from": str(tmp_path / "set" / "test")}


def test_aclimdb_folder_with_a_third_class_is_three_classes(tmp_path):
    root = write_tiny_folder(tmp_path / "extracted")
    for split in ("train", "test"):
        write_class_folders(root / split, {"neu": [f"so so film {i}" for i in range(3)]})
    dataset = read(root.parent)
    assert dataset.class_names == ("neg", "neu", "pos")
    assert 1 in dataset.y_test and dataset.x_validation is not None


def test_aclimdb_folder_with_a_class_only_in_test_is_not_imdb(tmp_path):
    root = write_tiny_folder(tmp_path / "extracted")
    write_class_folders(root / "test", {"neu": ["so so film"]})  # never silently dropped
    with pytest.raises(ValueError, match=r"neu/0.txt: label 'neu' is not a class of the training"):
        read(root.parent)


def test_aclimdb_folder_keeps_the_imdb_reader(tmp_path):
    root = write_tiny_folder(tmp_path / "extracted")
    (root / "train" / "unsup").mkdir()  # the official archive's unlabelled reviews: not a class
    dataset = read(root.parent, fit=FIT_BOTH)
    assert dataset.class_names == ("negative", "positive") and dataset.x_validation is None
    assert dataset.x_train.shape == (4, 12)  # IMDB ignores fit: the sizes given are kept
    assert dataset.report["sizes"]["sequence_length"] == {
        "value": 12,
        "fitted": False,
        "rule": "given",
    }


# --- nothing dropped silently ----------------------------------------------------------------


def test_refused_rows_are_counted_reported_and_announced(tmp_path, capsys):
    rows = animal_rows()
    rows[3]["text"] = "   "
    rows[7]["label"] = ""
    rows[8]["text"] = ""
    dataset = read(write_csv(tmp_path / "gaps.csv", rows))
    read_report = dataset.report["read"]["train"]
    assert read_report["rows_read"] == 30 and read_report["rows_kept"] == 27
    where = str(tmp_path / "gaps.csv")
    assert read_report["rows_refused"] == {
        "empty text": {"count": 2, "first": [f"{where}:5", f"{where}:10"]},
        "empty label": {"count": 1, "first": [f"{where}:9"]},
    }
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"read 30 rows, kept 27, refused 3: 2 empty text ({where}:5, {where}:10)" in err


def test_quiet_reading_announces_nothing_when_nothing_is_refused(tmp_path, capsys):
    read(write_csv(tmp_path / "clean.csv", animal_rows()))
    assert capsys.readouterr().err == ""


def test_jsonl_rows_lacking_a_key_are_refused(tmp_path):
    lines = [json.dumps({"text": f"row {i}", "label": "ab"[i % 2]}) for i in range(8)]
    lines.insert(2, json.dumps({"text": "no label here"}))
    lines.insert(4, json.dumps({"text": None, "label": "a"}))
    (tmp_path / "gaps.jsonl").write_text("\n".join(lines), encoding="utf-8")
    refused = read(tmp_path / "gaps.jsonl", test_share=0.5, validation_share=0.0).report["read"]
    assert refused["train"]["rows_refused"] == {
        "no key 'label'": {"count": 1, "first": [f"{tmp_path / 'gaps.jsonl'}:3"]},
        "empty text": {"count": 1, "first": [f"{tmp_path / 'gaps.jsonl'}:5"]},
    }


# --- fitted sizes ----------------------------------------------------------------------------


def test_fitted_sizes_follow_their_rules():
    assert fitted_vocabulary_size([5, 2, 1, 1, 3]) == 3 + 4  # three words seen twice or more
    assert fitted_vocabulary_size([1, 1]) == 1 + 4  # at least one word
    assert fitted_vocabulary_size([2] * (MAX_FITTED_WORDS + 10)) == MAX_FITTED_WORDS + 4
    assert fitted_sequence_length([12, 100, 7]) == 100 + 1  # the longest whole, with its start
    assert fitted_sequence_length([MAX_FITTED_LENGTH + 5, 9]) == MAX_FITTED_LENGTH
    assert fitted_sequence_length([3, 3, 4]) == MIN_SEQUENCE_LENGTH


def test_read_dataset_fits_sizes_to_the_training_texts(tmp_path):
    rows = [
        {"text": " ".join(["word"] * (i + 1) + [f"w{i}"]), "label": "ab"[i % 2]} for i in range(40)
    ]
    dataset = read(write_csv(tmp_path / "lengths.csv", rows), fit=FIT_BOTH)
    sizes = dataset.report["sizes"]
    # Only "word" is seen twice; token counts (2..41 of the 28 training rows) set the length.
    assert sizes["vocabulary_size"]["value"] == 1 + 4 and sizes["vocabulary_size"]["fitted"]
    assert dataset.vocabulary.num_words == 5
    assert sizes["sequence_length"]["value"] == dataset.x_train.shape[1]
    counts = [(row != 0).sum() for row in dataset.x_train]  # start token included
    # Every training text whole: the texts' lengths differ, so a cut would leave more than
    # one row filling every column.
    assert counts.count(dataset.x_train.shape[1]) == 1


def test_unknown_fit_field_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"cannot fit \['filters'\].*vocabulary_size"):
        read(write_csv(tmp_path / "a.csv", animal_rows()), fit={"filters"})


# --- bad input: one clear line each ----------------------------------------------------------


def write_text(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("columns.csv", "body,label\nhi,a\n", {}, r"has no column 'text'; found 'body', 'label'"),
        ("keys.jsonl", '{"body": "hi", "label": "a"}\n', {}, r"has no key 'text'; found 'body'"),
        ("allempty.csv", "text,label\n ,a\n,b\n", {}, r"all 2 rows were refused \(2 empty text"),
        ("one.csv", "text,label\nhi,a\nho,a\nhu,a\n", {}, r"one class only \('a'\)"),
        (
            "rare.csv",
            "text,label\n" + "x,a\n" * 5 + "y,b\ny,b\n",
            {},
            r"class 'b' has 2 rows, too few.*at least 3",
        ),
        (
            "rare1.csv",
            "text,label\n" + "x,a\n" * 5 + "y,b\n",
            {"validation_share": 0.0},
            r"class 'b' has 1 row, too few to hold out a test row.*at least 2",
        ),
        ("latin1.csv", b"text,label\nfine,a\ncaf\xe9,b\n", {}, r"latin1.csv:3: not UTF-8"),
        (
            "ragged.csv",
            'text,label\n"two\nlines",a\nx,b,extra\n',
            {},
            r"ragged.csv:4: expected 2 fields, got 3",
        ),
        (
            "float.csv",
            "text,label\nx,1\ny,3.5\n",
            {},
            r"float.csv:3: label '3.5' is a fraction, not a class",
        ),
        (
            "float.jsonl",
            '{"text": "x", "label": 1}\n{"text": "y", "label": 2.0}\n',
            {},
            r"label '2.0' is a fraction",
        ),
        ("twice.csv", "text,label,text\na,b,c\n", {}, r"names the column 'text' twice"),
        ("empty.csv", "", {}, r"empty.csv is empty"),
        ("blank.jsonl", "\n  \n", {}, r"blank.jsonl is empty"),
        ("header.csv", "text,label\n", {}, r"has a header but no rows"),
        (
            "badjson.jsonl",
            '{"text": "x", "label": "a"}\n{"text": \n',
            {},
            r"badjson.jsonl:2: not valid JSON",
        ),
        ("list.jsonl", '["x", "a"]\n', {}, r"list.jsonl:1: expected a JSON object, got an array"),
        (
            "boollabel.jsonl",
            '{"text": "x", "label": true}\n',
            {},
            r"label 'label' holds a JSON boolean",
        ),
        ("numtext.jsonl", '{"text": 5, "label": "a"}\n', {}, r"'text' holds int, not a string"),
        (
            "words.csv",
            "text,label\nx,World\ny,Sports\n",
            {"class_names": "CLASSES"},
            r"label 'World' is not an integer",
        ),
        (
            "base.csv",
            "text,label\nx,2\ny,3\n",
            {"class_names": "CLASSES"},
            r"the smallest label is 2",
        ),
        (
            "beyond.csv",
            "text,label\nx,1\ny,4\n",
            {"class_names": "CLASSES"},
            r"label 4 has no line in .*names 2 classes",
        ),
    ],
)
def test_bad_tables_are_refused_with_one_line(tmp_path, name, content, options, message):
    if options.get("class_names") == "CLASSES":
        options["class_names"] = str(write_text(tmp_path / "classes.txt", "One\nTwo\n"))
    path = write_text(tmp_path / name, content)
    with pytest.raises(ValueError, match=message) as caught:
        read(path, **options)
    assert "\n" not in str(caught.value)


def test_class_names_file_class_without_rows_is_named(tmp_path):
    classes = write_text(tmp_path / "classes.txt", "One\nTwo\nThree\n")
    path = write_text(tmp_path / "gap.csv", "text,label\n" + "x,1\ny,3\n" * 3)
    with pytest.raises(ValueError, match=r"no rows of class 'Two' \(label 2"):
        read(path, class_names=str(classes))


def test_test_label_never_seen_in_training_is_named(tmp_path):
    train = write_csv(tmp_path / "train.csv", animal_rows())
    test = write_text(tmp_path / "test.csv", "text,label\nmoo,cat\nneigh,horse\n")
    with pytest.raises(
        ValueError, match=r"test.csv:3: label 'horse' is not a class of the training"
    ):
        read(train, test_data=str(test))


def test_folder_without_class_folders_lists_what_it_holds(tmp_path):
    write_text(tmp_path / "train.csv", "text,label\n")
    write_text(tmp_path / "test.csv", "text,label\n")
    with pytest.raises(
        ValueError, match=r"has no class folders \(it holds test.csv, train.csv\).*--data train.csv"
    ):
        read(tmp_path)


def test_class_folder_without_texts_is_named(tmp_path):
    root = write_class_folders(tmp_path / "set", {"a": ["one", "two", "three"]})
    (root / "b").mkdir()
    write_text(root / "b" / "README.md", "no texts")
    with pytest.raises(ValueError, match=r"class folder .*set/b holds no .txt files"):
        read(root)


def test_class_folder_text_not_utf8_names_the_file(tmp_path):
    root = write_class_folders(tmp_path / "set", {"a": ["one", "two"], "b": ["three", "four"]})
    write_text(root / "b" / "bad.txt", b"line one\ncaf\xe9\n")
    with pytest.raises(ValueError, match=r"set/b/bad.txt:2: not UTF-8"):
        read(root)


def test_own_test_folder_and_test_data_together_are_refused(tmp_path):
    write_class_folders(tmp_path / "set" / "train", {"a": ["x", "y", "z"], "b": ["u", "v", "w"]})
    write_class_folders(tmp_path / "set" / "test", {"a": ["x"], "b": ["u"]})
    with pytest.raises(ValueError, match=r"has its own test/ folder and --test-data"):
        read(tmp_path / "set", test_data=str(tmp_path / "set" / "test"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"test_share": 0.0}, r"test_share must lie in \(0, 1\)"),
        ({"validation_share": 1.0}, r"validation_share must lie in \[0, 1\)"),
        ({"text_columns": "title"}, r"text_columns must be a non-empty tuple"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        DataOptions(**options)


# --- round trips -----------------------------------------------------------------------------

# Texts with the characters CSV quoting exists for: delimiters, quotes, line breaks, BOM-less
# Unicode. csv.writer quotes them; the reader must hand back every row, byte for byte.
TRICKY_TEXT = st.text(
    alphabet=st.sampled_from(list("ab ,;\"'\t\n\r\\é日🙂")), min_size=1, max_size=30
).filter(lambda text: text.strip())


@given(texts=st.lists(TRICKY_TEXT, min_size=1, max_size=20), tsv=st.booleans())
def test_quoted_tables_keep_every_row(tmp_path_factory, texts, tsv):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter="\t" if tsv else ",")
    writer.writerow(["label", "text"])
    writer.writerows([[f"c{i % 3}", text] for i, text in enumerate(texts)])
    path = tmp_path_factory.mktemp("round") / ("t.tsv" if tsv else "t.csv")
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    rows = read_table(path, DataOptions())
    assert rows.texts == texts and rows.read == len(texts)
    assert rows.labels == [f"c{i % 3}" for i in range(len(texts))]


@given(texts=st.lists(TRICKY_TEXT, min_size=1, max_size=20))
def test_jsonl_keeps_every_row(tmp_path_factory, texts):
    path = tmp_path_factory.mktemp("round") / "t.jsonl"
    lines = [
        json.dumps({"text": text, "label": i % 2}, ensure_ascii=False)
        for i, text in enumerate(texts)
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    rows = read_table(path, DataOptions())
    assert rows.texts == texts and rows.labels == [str(i % 2) for i in range(len(texts))]


# --- the real files, when their folders are named --------------------------------------------


def real_folder(variable: str) -> Path:
    folder = os.environ.get(variable)
    if not folder:
        pytest.skip(f"set {variable} to the folder holding train.csv and test.csv")
    if not (Path(folder) / "train.csv").is_file():
        pytest.fail(f"{variable}={folder} does not hold train.csv")
    return Path(folder)


def test_ag_news_reads_four_classes_of_title_and_description():
    folder = real_folder("SEQNET_AG_NEWS")
    dataset = read_dataset(
        folder / "train.csv",
        verbose=False,
        options=DataOptions(
            text_columns=("title", "description"),
            label_column="class_index",
            test_data=str(folder / "test.csv"),
            class_names=str(folder / "classes.txt"),
        ),
        fit=FIT_BOTH,
    )
    assert dataset.class_names == ("World", "Sports", "Business", "Sci/Tech")
    assert len(dataset.y_train) + len(dataset.y_validation) == 20_000
    assert np.bincount(dataset.y_test).tolist() == [1_900] * 4
    assert dataset.report["read"]["test"]["rows_refused"] == {}
    assert dataset.report["sizes"]["vocabulary_size"]["fitted"]


def test_rusentiment_keeps_every_multiline_post():
    folder = real_folder("SEQNET_RUSENTIMENT")
    dataset = read_dataset(
        folder / "train.csv", verbose=False, options=DataOptions(test_data=str(folder / "test.csv"))
    )
    assert dataset.class_names == ("negative", "neutral", "positive", "skip", "speech")
    assert dataset.report["read"]["train"]["rows_kept"] == 28_218
    assert np.bincount(dataset.y_test).tolist() == [258, 1_420, 536, 346, 407]
    assert any("\n" in text for text in read_table(folder / "test.csv", DataOptions()).texts)
