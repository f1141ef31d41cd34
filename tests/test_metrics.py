"""Classification reports: hand-computed cases, scikit-learn as an oracle, the table, the PNG."""

from __future__ import annotations

import json
import unicodedata
import warnings

import numpy as np
import pytest
import sklearn.metrics as oracle
from hypothesis import given
from hypothesis import strategies as st

from seqnet import plot
from seqnet.metrics import classification_report, confusion_matrix, format_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Worked by hand: rows true, columns predicted.
#            pred 0  1  2   support  precision      recall  f1
#   true 0      1  1  0         2    1/3            1/2     2*1/(2+3) = 0.4
#   true 1      0  2  0         2    2/3            1       2*2/(2+3) = 0.8
#   true 2      2  0  1         3    1/1            1/3     2*1/(3+1) = 0.5
THREE_TRUE = [0, 0, 1, 1, 2, 2, 2]
THREE_PRED = [0, 1, 1, 1, 2, 0, 0]
THREE_NAMES = ["негатив", "нейтрально", "позитив"]


def test_a_hand_computed_three_class_report():
    report = classification_report(THREE_TRUE, THREE_PRED, THREE_NAMES)

    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [2, 0, 1]]
    assert report["classes"] == THREE_NAMES and report["samples"] == 7
    assert [row["class"] for row in report["per_class"]] == THREE_NAMES
    assert [row["support"] for row in report["per_class"]] == [2, 2, 3]
    scores = [[row[key] for key in ("precision", "recall", "f1")] for row in report["per_class"]]
    expected = [[1 / 3, 1 / 2, 0.4], [2 / 3, 1, 0.8], [1, 1 / 3, 0.5]]
    assert np.array(scores) == pytest.approx(np.array(expected))
    assert report["accuracy"] == pytest.approx(4 / 7)
    assert report["macro_f1"] == pytest.approx((0.4 + 0.8 + 0.5) / 3)
    assert report["weighted_f1"] == pytest.approx((0.4 * 2 + 0.8 * 2 + 0.5 * 3) / 7)


def test_a_class_never_predicted_or_absent_scores_zero_and_counts_in_the_macro_mean():
    # "b" is in the labels but never predicted; "c" is neither: each 0/0 score is 0.0.
    report = classification_report([0, 0, 1], [0, 0, 0], ["a", "b", "c"])

    a, b, c = report["per_class"]
    assert (a["precision"], a["recall"], a["f1"]) == pytest.approx((2 / 3, 1, 0.8))
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == (0.0, 0.0, 0.0, 1)
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 0)
    assert report["macro_f1"] == pytest.approx(0.8 / 3)
    assert report["confusion_matrix"] == [[2, 0, 0], [1, 0, 0], [0, 0, 0]]


def test_perfect_predictions_score_one_everywhere():
    labels = np.array([1, 0, 1, 1], dtype=np.int32)  # int32, as Dataset's labels are

    report = classification_report(labels, labels, ("negative", "positive"))

    assert report["accuracy"] == report["macro_f1"] == report["weighted_f1"] == 1.0
    assert all(row["f1"] == 1.0 for row in report["per_class"])
    assert report["confusion_matrix"] == [[1, 0], [0, 3]]


def test_the_report_is_plain_json():
    names = np.array(["negative", "positive"])  # numpy strings come out as plain str
    report = classification_report(np.array([0, 1, 1]), np.array([0, 0, 1]), names)

    assert json.loads(json.dumps(report)) == report
    values = [value for row in report["per_class"] for value in row.values()]
    values += [report["accuracy"], report["macro_f1"], report["samples"], *report["classes"]]
    assert {type(value) for value in values} == {float, int, str}  # not numpy's
    assert {type(count) for row in report["confusion_matrix"] for count in row} == {int}


@pytest.mark.parametrize(
    ("y_true", "y_pred", "names", "message"),
    [
        ([0, 1, 1], [0, 1], ["a", "b"], "y_true has 3 labels but y_pred 2"),
        ([0, 2], [0, 1], ["a", "b"], "y_true holds class index 2, outside 0 to 1 for 2 class"),
        ([0, 1], [-1, 1], ["a", "b"], "y_pred holds class index -1, outside 0 to 1"),
        ([0.0, 1.0], [0, 1], ["a", "b"], "y_true holds float64 values; pass integer class"),
        ([0, 1], ["a", "b"], ["a", "b"], "y_pred holds <U1 values; pass integer class"),
        ([[0, 1]], [[0, 1]], ["a", "b"], r"y_true has shape \(1, 2\); pass one class index"),
        ([], [], ["a", "b"], "no labels to evaluate"),
        ([0], [0], [], "class_names is empty"),
        ([0], [0], "ab", "class_names is one string 'ab'"),
        ([0], [0], ["a", 1], "class_names must be strings"),
        ([0], [0], ["a", "b", "a"], r"class_names repeats \['a'\]"),
    ],
)
def test_bad_input_is_refused_in_one_clear_line(y_true, y_pred, names, message):
    with pytest.raises(ValueError, match=message) as caught:
        classification_report(y_true, y_pred, names)

    assert "\n" not in str(caught.value)


@st.composite
def labelled_predictions(draw):
    """(y_true, y_pred, k): 1 to 300 labels over 2 to 9 classes, some classes often missing."""
    k = draw(st.integers(2, 9))
    n = draw(st.integers(1, 300))
    used = draw(st.integers(1, k))  # labels drawn from the first `used` classes only
    labels = st.lists(st.integers(0, used - 1), min_size=n, max_size=n)
    return np.array(draw(labels)), np.array(draw(labels)), k


@given(labelled_predictions())
def test_scikit_learn_agrees_on_random_cases(case):
    y_true, y_pred, k = case
    names = [f"class {i}" for i in range(k)]
    labels = list(range(k))

    report = classification_report(y_true, y_pred, names)

    expected = oracle.confusion_matrix(y_true, y_pred, labels=labels)
    assert report["confusion_matrix"] == expected.tolist()
    assert report["accuracy"] == pytest.approx(oracle.accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        f1 = oracle.f1_score(y_true, y_pred, labels=labels, average=average, zero_division=0)
        assert report[f"{average}_f1"] == pytest.approx(f1)
    theirs = oracle.classification_report(
        y_true, y_pred, labels=labels, target_names=names, output_dict=True, zero_division=0
    )
    for row in report["per_class"]:
        other = theirs[row["class"]]
        assert row["support"] == other["support"]
        for key in ("precision", "recall"):
            assert row[key] == pytest.approx(other[key])
        assert row["f1"] == pytest.approx(other["f1-score"])
    assert report["macro_f1"] == pytest.approx(theirs["macro avg"]["f1-score"])


def test_the_confusion_matrix_has_a_row_and_column_for_every_class():
    matrix = confusion_matrix([1, 1], [1, 0], num_classes=4)

    assert matrix.shape == (4, 4) and matrix.sum() == 2
    assert matrix[1, 1] == 1 and matrix[1, 0] == 1


def test_the_table_reads_as_expected():
    report = classification_report([0, 0, 1, 1, 1], [0, 1, 1, 1, 1], ["negative", "positive"])

    assert format_report(report) == (
        "class     precision     recall         f1    support\n"
        "negative      1.000      0.500      0.667          2\n"
        "positive      0.750      1.000      0.857          3\n"
        "\n"
        "weighted F1  0.781\n"
        "accuracy     0.800  (4 of 5 texts)\n"
        "macro F1     0.762"
    )


def display_width(text: str) -> int:
    wide = {"W", "F"}
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in wide else 1
        for c in text
    )


def test_the_table_aligns_cyrillic_wide_and_accented_names_by_display_width():
    names = ["отрицательный", "体育", "cafe\u0301", "x"]  # Cyrillic, CJK, a combining accent
    report = classification_report([0, 1, 2, 3], [0, 1, 2, 2], names)

    rows = format_report(report).splitlines()[: len(names) + 1]

    assert len({display_width(row) for row in rows}) == 1
    assert all(row.endswith(("support", "1", "0")) for row in rows)


def test_long_names_are_cut_and_control_characters_cannot_break_the_table():
    names = ["a very long class name " * 4, "tab\there\nnewline"]
    report = classification_report([0, 1], [0, 1], names)

    lines = format_report(report).splitlines()

    assert len(lines) == 7  # header, two classes, a gap, three summary lines
    assert lines[1].startswith("a very long class name a very long cl...  ")
    assert lines[2].startswith("tab?here?newline ")
    assert len({len(line) for line in lines[:3]}) == 1
    assert lines[-2].startswith("accuracy") and lines[-1].startswith("macro F1")


def test_the_table_takes_a_report_read_back_from_json():
    report = classification_report(THREE_TRUE, THREE_PRED, THREE_NAMES)

    assert format_report(json.loads(json.dumps(report))) == format_report(report)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, which follows the 8-byte signature."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize("classes", [2, 5, 20])
def test_the_confusion_matrix_png_is_written_with_every_glyph(tmp_path, classes):
    rng = np.random.default_rng(classes)
    names = [f"класс {i}" if i % 2 else f"category number {i}, a long one" for i in range(classes)]
    y_true = rng.integers(0, classes, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, classes, 500))
    report = classification_report(y_true, y_pred, names)
    path = tmp_path / "run" / "confusion_matrix.png"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        plot.plot_confusion_matrix(report, path)

    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = png_size(data)
    assert 500 <= width <= 2200 and 450 <= height <= 2000
    assert [p.name for p in path.parent.iterdir()] == ["confusion_matrix.png"]


def drawn_figure(monkeypatch, report) -> plot.Figure:
    """The figure plot_confusion_matrix would save, caught before it becomes a PNG."""
    figures = []
    monkeypatch.setattr(plot, "save_figure", lambda figure, path: figures.append(figure))
    plot.plot_confusion_matrix(report, "unused.png")
    return figures[0]


def test_each_cell_shows_its_count_and_row_share_and_the_title_the_scores(monkeypatch):
    # Row 2: 1 of 300 texts is "<1%", not "0%"; a cell with no texts shows a bare 0.
    y_true = [0, 0, 1, 1, 1] + [2] * 300
    y_pred = [0, 1, 1, 1, 0] + [0] + [2] * 299
    report = classification_report(y_true, y_pred, ["bad", "so-so", "good"])

    axes = drawn_figure(monkeypatch, report).axes[0]

    cells = {(t.get_position()[1], t.get_position()[0]): t.get_text() for t in axes.texts}
    assert cells[(0, 0)] == "1\n50%" and cells[(0, 1)] == "1\n50%" and cells[(0, 2)] == "0"
    assert cells[(1, 0)] == "1\n33%" and cells[(1, 1)] == "2\n67%"
    assert cells[(2, 0)] == "1\n<1%" and cells[(2, 2)] == "299\n100%"
    assert [t.get_text() for t in axes.get_xticklabels()] == ["bad", "so-so", "good"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["bad", "so-so", "good"]
    assert "accuracy 99.0%" in axes.get_title() and "macro-F1 0.688" in axes.get_title()
    shares = axes.images[0].get_array()
    assert shares[2, 2] == pytest.approx(299 / 300) and shares[0, 2] == 0.0


def test_a_class_with_no_texts_gets_an_empty_row_not_a_division_by_zero(monkeypatch):
    report = classification_report([0, 0], [0, 1], ["a", "b"])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy warns on 0/0
        axes = drawn_figure(monkeypatch, report).axes[0]

    assert axes.images[0].get_array()[1].tolist() == [0.0, 0.0]


def test_a_failure_while_plotting_leaves_the_earlier_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "confusion_matrix.png"
    path.write_bytes(b"the earlier plot")

    def fail_halfway(self, buffer, **kwargs):
        buffer.write(PNG_MAGIC)  # half a PNG, then the renderer gives up
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(plot.Figure, "savefig", fail_halfway)
    report = classification_report(THREE_TRUE, THREE_PRED, THREE_NAMES)
    with pytest.raises(RuntimeError, match="renderer failed"):
        plot.plot_confusion_matrix(report, path)

    assert path.read_bytes() == b"the earlier plot"
    assert [p.name for p in tmp_path.iterdir()] == ["confusion_matrix.png"]


def test_a_report_whose_matrix_does_not_fit_its_classes_is_refused(tmp_path):
    report = classification_report(THREE_TRUE, THREE_PRED, THREE_NAMES)
    report["classes"] = report["classes"][:2]

    with pytest.raises(ValueError, match=r"has shape \(3, 3\) for 2 classes"):
        plot.plot_confusion_matrix(report, tmp_path / "confusion_matrix.png")

    assert list(tmp_path.iterdir()) == []
