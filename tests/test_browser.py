"""The web page of ``seqnet serve`` in a real, headless Chromium driven by Playwright
(the ``browser`` fixture in conftest.py says when these tests skip)."""

from __future__ import annotations

import warnings

import pytest

from seqnet.predict import Classifier, UnknownWordsWarning


def open_page(browser, server):
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_function("!document.getElementById('classify').disabled")  # /health read
    return page


@pytest.fixture
def page(browser, live_server):
    page = open_page(browser, live_server)
    yield page
    page.close()


@pytest.fixture
def colour_page(browser, colour_server):
    page = open_page(browser, colour_server)
    yield page
    page.close()


def classify(page, texts: list[str]) -> list[dict]:
    """Type the texts, press Classify, and read what each row shows."""
    page.get_by_label("Texts, one per line").fill("\n".join(texts))
    page.get_by_role("button", name="Classify").click()
    rows = page.locator("#results tbody tr")
    rows.nth(len(texts) - 1).wait_for()
    return [
        {
            "label": row.locator("td.label").inner_text(),
            "score": float(row.get_attribute("data-score")),
            "shown score": row.locator("td.score").inner_text(),
            "bars": {
                bar.get_attribute("data-class"): float(bar.get_attribute("data-probability"))
                for bar in row.locator("td.probabilities div.class").all()
            },
            "chosen": row.locator("div.class.chosen").get_attribute("data-class"),
            "warning": row.locator("div.warning").all_inner_texts(),
        }
        for row in rows.all()
    ]


def _predictions(workdir, texts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownWordsWarning)
        return Classifier.load(workdir).predict(texts)


def test_a_person_sees_label_and_score_per_review(page, served_run):
    reviews = ["A great film, I loved it.", "Boring and bad; a terrible plot."]
    shown = classify(page, reviews)
    assert len(shown) == len(reviews)
    for row, prediction in zip(shown, _predictions(served_run, reviews), strict=True):
        assert row["label"] == prediction.label
        assert row["score"] == pytest.approx(prediction.score, abs=1e-6)
        assert row["shown score"] == f"{prediction.score:.3f}"
        assert list(row["bars"]) == ["negative", "positive"]
        assert row["warning"] == []


def test_a_person_sees_every_class_and_a_warning_on_unknown_words(colour_page, colour_run):
    texts = ["red apple cherry", "sky sea blue", "zyzzyva quux"]
    shown = classify(colour_page, texts)
    assert "Classes: red, green, blue." in colour_page.locator("p.hint").inner_text()
    for row, prediction in zip(shown, _predictions(colour_run, texts), strict=True):
        assert row["label"] == row["chosen"] == prediction.label
        assert list(row["bars"]) == ["red", "green", "blue"]  # a bar per class, in class order
        assert list(row["bars"].values()) == pytest.approx(prediction.probabilities, abs=1e-6)
    assert [row["label"] for row in shown[:2]] == ["red", "blue"]
    assert shown[0]["warning"] == shown[1]["warning"] == []
    (warning,) = shown[2]["warning"]  # the model knew none of its words
    assert "knows none of this text's words" in warning


def test_pressing_classify_with_nothing_typed_says_so(page):
    page.get_by_role("button", name="Classify").click()
    assert "at least one text" in page.locator("#error").inner_text()
