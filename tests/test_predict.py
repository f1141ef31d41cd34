"""Predicting for real files: label and score, review tables in and out, and `seqnet predict`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import COLOUR_TEXTS, TINY_TEXTS, build_run
from hypothesis import example, given
from hypothesis import strategies as st

import seqnet
from seqnet import text_tables
from seqnet.cli import main
from seqnet.predict import Classifier, Prediction, UnknownWordsWarning

CSV_REVIEWS = (
    "id,text,stars\r\n"
    '1,"A great film, I loved it.",5\r\n'
    '2,"Boring and bad.\nA second line, still ""bad"".",1\r\n'
    "3,great,4\r\n"
    "\r\n"
)
CSV_TEXTS = ["A great film, I loved it.", 'Boring and bad.\nA second line, still "bad".', "great"]
JSONL_REVIEWS = (
    '{"id": 1, "text": "great film", "meta": {"source": "a"}}\n'
    '{"text": "boring and bad", "id": 2}\n'
    "\n"
    '{"id": 3, "text": "Loved it \u2028 great", "tags": ["x"]}\n'
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A two-class (IMDB) run folder, fitted briefly on the tiny reviews."""
    return build_run(tmp_path_factory.mktemp("predict-run") / "run", TINY_TEXTS, seed=5)


@pytest.fixture(scope="module")
def classifier(workdir) -> Classifier:
    return Classifier.load(workdir)


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))  # bytes: keep the \r\n and \n exactly as given
    return path


def _predict(*args: str) -> int:
    return main(["predict", *map(str, args)])


# Prediction


def _binary(probability: float, threshold: float = 0.5) -> Prediction:
    return Prediction("text", (1 - probability, probability), threshold=threshold)


def test_two_class_labels_follow_the_threshold():
    assert (_binary(0.8).label, _binary(0.8).score) == ("positive", 0.8)
    assert (_binary(0.25).label, _binary(0.25).score) == ("negative", 0.75)
    assert _binary(0.5).label == "positive"  # the threshold itself counts as positive
    assert (_binary(0.6, 0.7).label, _binary(0.6, 0.7).score) == ("negative", pytest.approx(0.4))


@given(probability=st.floats(0, 1), threshold=st.floats(0.01, 0.99))
def test_score_is_the_probability_of_the_label(probability, threshold):
    prediction = _binary(probability, threshold)
    assert prediction.label == ("positive" if probability >= threshold else "negative")
    assert prediction.score == prediction.probabilities[prediction.index]
    assert prediction.probability == pytest.approx(probability)


@given(st.lists(st.floats(0, 1), min_size=3, max_size=6))
def test_more_classes_take_the_most_probable_the_first_of_ties(probabilities):
    classes = tuple(f"class {index}" for index in range(len(probabilities)))
    prediction = Prediction("text", probabilities, classes)
    assert prediction.label == classes[int(np.argmax(probabilities))]  # argmax: first of ties
    assert prediction.score == prediction.probability == max(probabilities)


@pytest.mark.parametrize("threshold", [0, 1, -0.1, 1.5, float("nan"), "0.5", None, True])
def test_thresholds_outside_zero_one_are_refused(threshold):
    with pytest.raises(ValueError, match="threshold must"):
        Prediction("text", (0.5, 0.5), threshold=threshold)


@pytest.mark.parametrize("probability", [-0.1, 1.1, float("nan")])
def test_probabilities_outside_zero_one_are_refused(probability):
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        Prediction("text", (0.5, probability))


def test_prediction_json_has_label_score_and_probability():
    prediction = Prediction("Dull.", (0.8, 0.2), known_words=1)
    assert prediction.to_json() == {
        "text": "Dull.",
        "label": "negative",
        "score": pytest.approx(0.8),
        "probability": pytest.approx(0.2),
        "known_words": 1,
    }
    assert prediction.to_json(all_probabilities=True)["probabilities"] == {
        "negative": pytest.approx(0.8),
        "positive": pytest.approx(0.2),
    }
    assert Prediction("Dull.", (0.8, 0.2), threshold=0.1).label == "positive"


# Classifier.predict


def test_one_string_gives_one_prediction(classifier):
    single = classifier.predict("Loved this great movie")
    batch = classifier.predict(["Loved this great movie", "boring"], batch_size=1)
    assert isinstance(single, Prediction) and isinstance(batch, list) and len(batch) == 2
    assert single.probability == pytest.approx(batch[0].probability, abs=1e-6)
    assert classifier.predict([]) == []


def test_trimmed_forward_passes_give_the_full_length_outputs(classifier):
    """Reviews are sorted by length and trimmed of padding per pass, then put back in order."""
    words = list(classifier.vocabulary.words)
    texts = [" ".join(words[: count % len(words)] * (count % 4 + 1)) for count in range(37)]
    token_ids = classifier.vocabulary.encode_batch(texts, classifier.sequence_length)
    positive = keras.ops.convert_to_numpy(classifier.model(token_ids, training=False))[:, 0]
    whole = np.stack([1 - positive, positive], axis=1)  # (texts, 2): each class's probability
    for batch_size in (1, 5, 256):
        np.testing.assert_allclose(
            classifier.predict_token_ids(token_ids, batch_size=batch_size), whole, atol=1e-6
        )


def test_threshold_changes_labels_not_probabilities(classifier):
    texts = ["great film", "boring and bad", "terrible"]
    probabilities = [p.probability for p in classifier.predict(texts)]
    low, high = min(probabilities) / 2, (1 + max(probabilities)) / 2
    assert {p.label for p in classifier.predict(texts, threshold=low)} == {"positive"}
    assert {p.label for p in classifier.predict(texts, threshold=high)} == {"negative"}
    assert [p.probability for p in classifier.predict(texts, threshold=high)] == probabilities


@pytest.mark.parametrize(
    ("keywords", "message"),
    [({"threshold": 1.0}, "threshold must"), ({"batch_size": 0}, "batch_size must")],
)
def test_bad_settings_are_refused(classifier, keywords, message):
    with pytest.raises(ValueError, match=message):
        classifier.predict(["great"], **keywords)


def test_progress_is_reported_per_batch(classifier):
    counts = []
    classifier.predict(["great"] * 5, batch_size=2, progress=counts.append)
    assert counts == [2, 2, 1]


# Reading files of texts


def test_text_files_give_one_review_per_non_blank_line(tmp_path):
    path = _write(tmp_path / "reviews.txt", "great film\n\n  \nboring bad\r\nloved it\fwell\n")
    table = text_tables.read_texts(path)
    assert table.texts == ["great film", "boring bad", "loved it\fwell"]
    assert table.columns == ("text",)


def test_csv_keeps_quoted_commas_newlines_and_extra_columns(tmp_path):
    table = text_tables.read_texts(_write(tmp_path / "reviews.csv", "\ufeff" + CSV_REVIEWS))
    assert table.columns == ("id", "text", "stars")
    assert table.texts == CSV_TEXTS
    assert [row["stars"] for row in table.rows] == ["5", "1", "4"]


def test_csv_reads_another_text_column(tmp_path):
    path = _write(tmp_path / "reviews.csv", "review,id\ngreat,1\n")
    assert text_tables.read_texts(path, text_column="review").texts == ["great"]


def test_jsonl_keeps_every_key_in_order_of_first_use(tmp_path):
    table = text_tables.read_texts(_write(tmp_path / "reviews.jsonl", JSONL_REVIEWS))
    assert table.columns == ("id", "text", "meta", "tags")
    assert table.texts == ["great film", "boring and bad", "Loved it \u2028 great"]
    assert table.rows[0]["meta"] == {"source": "a"}


def test_format_overrides_the_extension(tmp_path):
    path = _write(tmp_path / "reviews.data", '{"text": "great"}\n')
    assert text_tables.read_texts(path).texts == ['{"text": "great"}']
    assert text_tables.read_texts(path, format="jsonl").texts == ["great"]


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", "{}")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("model.keras", _zip_bytes(), "is not a text file .*NUL byte"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a text file"),
        ("latin1.txt", "café, très bien\n".encode("latin-1"), "is not UTF-8 text .*offset 3"),
        ("empty.txt", b"\n  \n", "is empty"),
        ("empty.csv", b"", "is empty"),
        ("header.csv", b"id,text\n", "has a header but no rows"),
        ("other.csv", b"id,review\n1,great\n", "no column 'text'; its columns are 'id', 'review'"),
        ("twice.csv", b"text,text\na,b\n", "repeats the column"),
        ("ragged.csv", b"id,text\n1,great,film\n", "line 2: 3 fields, but the header has 2"),
        ("broken.jsonl", b'{"text": "a"}\n{"text": "b"\n', "line 2: not valid JSON"),
        ("array.jsonl", b'["great"]\n', "line 1: expected a JSON object, got a JSON array"),
        ("key.jsonl", b'{"text": "a"}\n\n{"review": "b"}\n', "line 3 has no key 'text'"),
        ("number.jsonl", b'{"text": 5}\n', "line 1: 'text' holds a JSON number, not a string"),
        ("empty.jsonl", b"\n", "is empty"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as error:
        text_tables.read_texts(path)
    assert str(path) in str(error.value)


def test_missing_files_and_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="No file at"):
        text_tables.read_texts(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="is a folder"):
        text_tables.read_texts(tmp_path)


def test_output_format_comes_from_the_extension_or_the_option(tmp_path):
    assert text_tables.output_format(tmp_path / "out.CSV") == "csv"
    assert text_tables.output_format(tmp_path / "out.jsonl") == "jsonl"
    assert text_tables.output_format(tmp_path / "out.txt", "jsonl") == "jsonl"
    for unclear in ("out.txt", "out.json", "out"):
        with pytest.raises(ValueError, match="--output-format"):
            text_tables.output_format(tmp_path / unclear)


# seqnet predict on files


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_csv_in_csv_out_keeps_order_columns_and_probabilities(workdir, classifier, tmp_path):
    source = _write(tmp_path / "reviews.csv", CSV_REVIEWS)
    output = tmp_path / "out" / "predictions.csv"
    assert _predict("--workdir", workdir, "--file", source, "--output", output) == 0
    rows = _read_csv(output)
    assert list(rows[0]) == ["id", "text", "stars", "label", "score", "probability", "known_words"]
    assert [row["id"] for row in rows] == ["1", "2", "3"]
    assert [row["text"] for row in rows] == CSV_TEXTS
    for row, expected in zip(rows, classifier.predict(CSV_TEXTS), strict=True):
        assert float(row["probability"]) == pytest.approx(expected.probability, abs=1e-6)
        assert (row["label"], float(row["score"])) == (
            expected.label,
            pytest.approx(expected.score),
        )


def test_jsonl_in_jsonl_out_keeps_json_values(workdir, classifier, tmp_path):
    source = _write(tmp_path / "reviews.jsonl", JSONL_REVIEWS)
    output = tmp_path / "predictions.jsonl"
    assert _predict("--workdir", workdir, "--file", source, "--output", output) == 0
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == [1, 2, 3] and rows[2]["tags"] == ["x"]
    expected = classifier.predict([row["text"] for row in rows])
    assert [row["probability"] for row in rows] == pytest.approx(
        [p.probability for p in expected], abs=1e-6
    )
    assert all(set(row) >= {"label", "score", "probability", "known_words"} for row in rows)


def test_jsonl_in_csv_out_writes_nested_values_as_json(workdir, tmp_path):
    source = _write(tmp_path / "reviews.json", JSONL_REVIEWS)
    output = tmp_path / "predictions.tsv"
    code = _predict(
        "--workdir", workdir, "--file", source, "--output", output, "--output-format", "csv"
    )
    assert code == 0
    rows = _read_csv(output)
    assert [row["meta"] for row in rows] == ['{"source": "a"}', "", ""]
    assert rows[2]["tags"] == '["x"]'


def test_text_file_with_a_threshold(workdir, classifier, tmp_path, capsys):
    source = _write(tmp_path / "reviews.txt", "great film\n\nboring and bad\n")
    probabilities = [p.probability for p in classifier.predict(["great film", "boring and bad"])]
    high = (1 + max(probabilities)) / 2
    args = ["--workdir", workdir, "--file", source, "--json", "--threshold", high]
    assert _predict(*args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["label"] for row in rows] == ["negative", "negative"]
    assert [row["text"] for row in rows] == ["great film", "boring and bad"]


def test_piped_csv_is_read_with_format(workdir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO('review\n"A great film, I loved it."\n'))
    args = ["--workdir", workdir, "--file", "-", "--format", "csv", "--text-column", "review"]
    assert _predict(*args, "--json") == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["text"] == "A great film, I loved it."


def _error(capsys) -> str:
    error = capsys.readouterr().err
    assert error.startswith("seqnet predict: error: ") and "Traceback" not in error
    return error


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "1"], "threshold must lie strictly between 0 and 1"),
        (["--threshold", "0"], "threshold must lie strictly between 0 and 1"),
        (["--batch-size", "0"], "must be at least 1"),
    ],
)
def test_bad_numbers_are_usage_errors(workdir, tmp_path, capsys, extra, message):
    source = _write(tmp_path / "reviews.csv", CSV_REVIEWS)
    with pytest.raises(SystemExit) as exit_info:
        _predict("--workdir", workdir, "--file", source, *extra)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output", "{source}"], "is the input file"),
        (["--output", "{dir}/out.txt"], "--output-format"),
        (["--text-column", "review"], "no column 'review'; its columns are 'id', 'text', 'stars'"),
        (["great"], "TEXT arguments or --file, not both"),
    ],
)
def test_predict_errors_are_one_line(workdir, tmp_path, capsys, extra, message):
    source = _write(tmp_path / "reviews.csv", CSV_REVIEWS)
    extra = [item.format(source=source, dir=tmp_path) for item in extra]
    assert _predict("--workdir", workdir, "--file", source, *extra) == 1
    assert message in _error(capsys)
    assert source.read_bytes() == CSV_REVIEWS.encode()  # the input is untouched


def test_binary_and_labelled_inputs_are_refused(workdir, tmp_path, capsys):
    model = workdir / "model.keras"
    assert _predict("--workdir", workdir, "--file", model, "--output", tmp_path / "o.csv") == 1
    assert "is not a text file" in _error(capsys)
    labelled = _write(tmp_path / "labelled.csv", "text,label\ngreat,positive\n")
    assert _predict("--workdir", workdir, "--file", labelled, "--output", tmp_path / "o.csv") == 1
    assert "already has the column(s) 'label'" in _error(capsys)
    assert not (tmp_path / "o.csv").exists()


def test_an_existing_output_is_replaced_only_with_force(workdir, tmp_path, capsys):
    metrics = workdir / "metrics.json"
    before = metrics.read_bytes()
    args = ["--output", metrics, "--output-format", "jsonl", "great film"]
    assert _predict("--workdir", workdir, *args) == 1
    assert f"--output {metrics} exists; replace it with --force" in _error(capsys)
    assert metrics.read_bytes() == before  # the run's own file is untouched

    output = _write(tmp_path / "predictions.jsonl", "an older result\n")
    assert _predict("--workdir", workdir, "--output", output, "--force", "great film") == 0
    assert json.loads(output.read_text(encoding="utf-8"))["text"] == "great film"


def test_interrupted_run_leaves_the_old_output_whole(workdir, tmp_path, monkeypatch, capsys):
    source = _write(tmp_path / "reviews.csv", CSV_REVIEWS)
    output = _write(tmp_path / "predictions.csv", "an older result\n")
    calls = []

    def interrupted(self, token_ids, *, batch_size=256):
        calls.append(len(token_ids))
        if len(calls) == 2:  # the second of three batches
            raise KeyboardInterrupt
        return original(self, token_ids, batch_size=batch_size)

    original = Classifier.predict_token_ids
    monkeypatch.setattr(Classifier, "predict_token_ids", interrupted)
    args = ["--file", source, "--output", output, "--batch-size", "1", "--force"]
    assert _predict("--workdir", workdir, *args) == 130
    assert capsys.readouterr().err == "seqnet predict: stopped by Ctrl-C.\n"
    assert output.read_text() == "an older result\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["predictions.csv", "reviews.csv"]


def test_a_failed_write_leaves_no_file(workdir, tmp_path, monkeypatch, capsys):
    source = _write(tmp_path / "reviews.csv", CSV_REVIEWS)
    output = tmp_path / "predictions.csv"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert _predict("--workdir", workdir, "--file", source, "--output", output) == 1
    assert "cannot write" in _error(capsys) and not output.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["reviews.csv"]


def test_progress_bar_goes_to_stderr_when_asked(workdir, tmp_path, capsys):
    source = _write(tmp_path / "reviews.txt", "great film\n" * 12)
    args = ["--workdir", workdir, "--file", source, "--batch-size", "2"]
    assert _predict(*args, "--output", tmp_path / "out.csv", "--progress") == 0
    captured = capsys.readouterr()
    # Not a terminal: plain lines at each quarter done (of 6 batches), nothing redrawn.
    assert captured.err.splitlines() == [
        "4/12 reviews (33%)",
        "6/12 reviews (50%)",
        "10/12 reviews (83%)",
        "12/12 reviews (100%)",
    ]
    assert "/12 reviews" not in captured.out
    assert _predict(*args, "--json") == 0  # not a terminal: no progress unless asked
    assert "/12 reviews" not in capsys.readouterr().err
    assert _predict(*args, "--json", "--no-progress") == 0
    assert "/12 reviews" not in capsys.readouterr().err


def _seqnet(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``python -m seqnet`` in a fresh process, importing this checkout's seqnet."""
    package_root = str(Path(seqnet.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": package_root}
    command = [sys.executable, "-m", "seqnet", *map(str, args)]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, env=env)


def test_command_line_process_writes_predictions_and_fails_cleanly(workdir, tmp_path):
    output = tmp_path / "predictions.jsonl"
    done = _seqnet(
        "predict", "--workdir", workdir, "--file", "-", "--output", output, stdin="a\nb\n"
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Wrote 2 predictions" in done.stdout
    assert [json.loads(line)["text"] for line in output.read_text().splitlines()] == ["a", "b"]
    failed = _seqnet("predict", "--workdir", workdir, "--file", workdir / "model.keras")
    assert failed.returncode == 1
    assert "seqnet predict: error: " in failed.stderr and "is not a text file" in failed.stderr
    assert "Traceback" not in failed.stderr


# Output a spreadsheet cannot be tricked by, and only to regular files

FORMULAS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/page.js","click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _formula_rows() -> str:
    rows = [{"id": str(i), "text": text, "@note": text} for i, text in enumerate(FORMULAS)]
    rows.append({"id": -7, "text": "-1.5", "@note": "+3e5"})  # plain numbers: nothing to run
    return "".join(json.dumps(row) + "\n" for row in rows)


def test_csv_cells_a_spreadsheet_would_run_get_a_quote(workdir, tmp_path):
    source = _write(tmp_path / "reviews.jsonl", _formula_rows())
    output = tmp_path / "predictions.csv"

    assert _predict("--workdir", workdir, "--file", source, "--output", output) == 0

    rows = _read_csv(output)
    assert list(rows[0]) == [
        *("id", "text", "'@note"),
        *("label", "score", "probability", "known_words"),
    ]
    assert [row["text"] for row in rows] == [*("'" + text for text in FORMULAS), "-1.5"]
    assert [row["'@note"] for row in rows] == [*("'" + text for text in FORMULAS), "+3e5"]
    assert rows[-1]["id"] == "-7"


def test_csv_in_csv_out_neutralises_formulas_too(workdir, tmp_path):
    lines = ["text,id", *(f'"{text.replace(chr(34), chr(34) * 2)}",=1+1' for text in FORMULAS)]
    source = _write(tmp_path / "reviews.csv", "\r\n".join(lines) + "\r\n")
    output = tmp_path / "predictions.csv"

    assert _predict("--workdir", workdir, "--file", source, "--output", output) == 0

    rows = _read_csv(output)
    assert [row["text"] for row in rows] == ["'" + text for text in FORMULAS]
    assert {row["id"] for row in rows} == {"'=1+1"}


def test_raw_csv_and_jsonl_keep_the_text_verbatim(workdir, tmp_path):
    source = _write(tmp_path / "reviews.jsonl", _formula_rows())
    raw, jsonl = tmp_path / "raw.csv", tmp_path / "predictions.jsonl"

    assert _predict("--workdir", workdir, "--file", source, "--output", raw, "--raw-csv") == 0
    assert _predict("--workdir", workdir, "--file", source, "--output", jsonl) == 0

    assert [row["text"] for row in _read_csv(raw)] == [*FORMULAS, "-1.5"]
    assert list(_read_csv(raw)[0])[2] == "@note"
    texts = [json.loads(line)["text"] for line in jsonl.read_text("utf-8").splitlines()]
    assert texts == [*FORMULAS, "-1.5"]


def test_raw_csv_is_refused_where_it_would_change_nothing(workdir, tmp_path, capsys):
    jsonl = tmp_path / "predictions.jsonl"
    for output in (("--output", jsonl), ()):
        assert _predict("--workdir", workdir, *output, "--raw-csv", "great film") == 1
        assert "--raw-csv applies to CSV --output only" in _error(capsys)
    assert not jsonl.exists()


_CELLS = st.text(st.sampled_from("=+-@\t\r'.05eE a(\n\","), max_size=8) | st.text(max_size=12)


@given(st.lists(_CELLS, min_size=1, max_size=5))
@example(["-a", "-1.5", "+.5e3", "-", "+1-1", "-1e", "'=1"])
def test_no_csv_cell_starts_a_formula(cells):
    columns = [f"c{i}" for i in range(len(cells))]
    text = text_tables.format_csv(columns, [dict(zip(columns, cells, strict=True))])

    (row,) = list(csv.DictReader(io.StringIO(text, newline="")))
    for written, cell in zip(row.values(), cells, strict=True):
        if written[:1] in ("=", "+", "-", "@", "\t", "\r"):
            float(written)  # only a plain number may start so
            assert written == cell
        else:
            assert written in (cell, "'" + cell)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_an_output_that_is_a_fifo_is_refused_not_replaced(workdir, tmp_path, capsys):
    fifo = tmp_path / "predictions.csv"
    os.mkfifo(fifo)

    assert _predict("--workdir", workdir, "--output", fifo, "great film") == 1

    assert "is a named pipe (FIFO), not a regular file" in _error(capsys)
    assert [path.name for path in tmp_path.iterdir()] == ["predictions.csv"]
    assert fifo.is_fifo()


@pytest.mark.parametrize("output", ["/dev/null", "."])
def test_an_output_that_is_a_device_or_folder_is_refused(output):
    table = text_tables.table_from_texts(["great film"])
    with pytest.raises(ValueError, match=f"^{output} exists and is a .*, not a regular file"):
        text_tables.check_output(Path(output), table, None)  # only checked: as root, never written


def test_a_nul_byte_anywhere_is_found_with_its_line(tmp_path):
    lines = [f"review number {i}, long enough to pass the first 8 KiB soon" for i in range(400)]
    lines[300] = "a review with a NUL \0 in it"
    path = _write(tmp_path / "reviews.txt", "\n".join(lines))

    with pytest.raises(ValueError, match=r"line 301 has a NUL byte \(offset \d+\)"):
        text_tables.read_texts(path)


# A run with three classes: red, green and blue

COLOUR_CLASSES = tuple(COLOUR_TEXTS)
CLEAR_COLOURS = {"red apple cherry": "red", "grass leaf lime": "green", "sky sea blue": "blue"}


@pytest.fixture(scope="module")
def colours(colour_run) -> Classifier:
    return Classifier.load(colour_run)


def test_a_three_class_run_names_its_classes_and_gives_every_probability(colours):
    probabilities = colours.predict_probabilities(list(CLEAR_COLOURS))
    assert colours.task.class_names == COLOUR_CLASSES
    assert probabilities.shape == (3, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)  # a softmax
    predictions = colours.predict(list(CLEAR_COLOURS))
    assert [p.label for p in predictions] == list(CLEAR_COLOURS.values())
    for prediction, row in zip(predictions, probabilities, strict=True):
        assert prediction.classes == COLOUR_CLASSES
        assert prediction.score == pytest.approx(row.max())
        assert prediction.to_json(all_probabilities=True)["probabilities"] == pytest.approx(
            dict(zip(COLOUR_CLASSES, row, strict=True))
        )
        assert "probability" not in prediction.to_json()  # no "second class" among three


def test_a_three_class_run_has_no_threshold(colours):
    with pytest.raises(ValueError, match="threshold applies to two classes only"):
        colours.predict(["red apple"], threshold=0.7)


def test_a_text_with_no_known_word_is_flagged_and_warned_of(colours):
    with pytest.warns(UnknownWordsWarning, match=r"1 of 2 .*\(number 2\)"):
        known, unknown = colours.predict(["red apple", "zyzzyva quux"])
    assert (known.known_words, unknown.known_words) == (2, 0)
    assert unknown.to_json()["known_words"] == 0


def test_predict_prints_class_names_and_scores(colour_run, colours, capsys):
    texts = list(CLEAR_COLOURS)
    assert _predict("--workdir", colour_run, *texts) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(texts)
    for line, prediction in zip(lines, colours.predict(texts), strict=True):
        score, label, text = line.split(maxsplit=2)
        assert (label, float(score), text) == (
            prediction.label,
            pytest.approx(prediction.score, abs=1e-4),
            prediction.text,
        )
    assert _predict("--workdir", colour_run, "--probabilities", texts[0]) == 0
    (line,) = capsys.readouterr().out.splitlines()  # still one line per text
    assert all(f"{name}=" in line for name in COLOUR_CLASSES)


def test_predict_json_gives_every_class_probability(colour_run, colours, capsys):
    texts = [*CLEAR_COLOURS, "zyzzyva"]
    assert _predict("--workdir", colour_run, "--json", "--probabilities", *texts) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert "seqnet predict: warning: 1 of 4 texts (number 4)" in captured.err
    with pytest.warns(UnknownWordsWarning):
        expected = colours.predict(texts)
    for row, prediction in zip(rows, expected, strict=True):
        assert set(row) == {"text", "label", "score", "known_words", "probabilities"}
        assert list(row["probabilities"]) == list(COLOUR_CLASSES)
        assert row["probabilities"] == pytest.approx(
            dict(zip(COLOUR_CLASSES, prediction.probabilities, strict=True))
        )
        assert (row["label"], row["score"]) == (prediction.label, pytest.approx(prediction.score))
    assert [row["known_words"] for row in rows] == [3, 3, 3, 0]


@pytest.mark.parametrize("name", ["predictions.csv", "predictions.jsonl"])
def test_predict_files_get_one_probability_column_per_class(colour_run, colours, tmp_path, name):
    source = _write(tmp_path / "texts.csv", "id,text\n1,red apple cherry\n2,sky sea blue\n")
    output = tmp_path / name
    args = ["--workdir", colour_run, "--file", source, "--output", output]
    assert _predict(*args, "--probabilities") == 0
    if name.endswith(".csv"):
        rows = _read_csv(output)
    else:
        rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    columns = ["probability_red", "probability_green", "probability_blue"]
    assert list(rows[0]) == ["id", "text", "label", "score", "known_words", *columns]
    expected = colours.predict(["red apple cherry", "sky sea blue"])
    for row, prediction in zip(rows, expected, strict=True):
        assert row["label"] == prediction.label
        assert [float(row[column]) for column in columns] == pytest.approx(
            prediction.probabilities, abs=1e-6
        )
    assert _predict(*args[:-1], tmp_path / "plain.csv") == 0  # without: no per-class columns
    assert list(_read_csv(tmp_path / "plain.csv")[0]) == [
        *("id", "text", "label", "score", "known_words")
    ]


def test_predict_refuses_a_threshold_for_three_classes(colour_run, tmp_path, capsys):
    output = tmp_path / "predictions.csv"
    args = ["--workdir", colour_run, "--threshold", "0.5", "--output", output, "red apple"]
    assert _predict(*args) == 1
    error = _error(capsys)
    assert "--threshold applies to two classes only; this run has 3 (red, green, blue)" in error
    assert len(error.splitlines()) == 1 and not output.exists()


def test_an_input_column_named_like_a_class_probability_is_refused(colour_run, tmp_path, capsys):
    source = _write(tmp_path / "texts.csv", "text,probability_green\nred apple,0.1\n")
    args = ["--workdir", colour_run, "--file", source, "--output", tmp_path / "out.csv"]
    assert _predict(*args, "--probabilities") == 1
    assert "already has the column(s) 'probability_green'" in _error(capsys)
    assert _predict(*args) == 0  # without --probabilities nothing would be overwritten


def test_seqnet_0_2_module_name_still_works_and_names_the_new_one():
    from seqnet import reviews

    with pytest.warns(DeprecationWarning, match=r"seqnet\.text_tables\.read_texts"):
        assert reviews.read_reviews is text_tables.read_texts
    with pytest.warns(DeprecationWarning, match=r"seqnet\.text_tables\.format_csv"):
        assert reviews.format_csv is text_tables.format_csv
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        reviews.missing  # noqa: B018
