"""The web page of ``seqnet serve`` in a real, headless Chromium driven by Playwright
(the ``browser`` fixture in conftest.py says when these tests skip)."""

from __future__ import annotations

import pytest

from seqnet.predict import Classifier
from seqnet.serve import label_and_score


@pytest.fixture
def page(browser, live_server):
    page = browser.new_page()
    page.goto(live_server.url + "/")
    yield page
    page.close()


def classify(page, reviews: list[str]) -> list[tuple[str, float, str]]:
    """Type the reviews, press Classify, and read (label, score, shown score) per row."""
    page.get_by_label("Reviews, one per line").fill("\n".join(reviews))
    page.get_by_role("button", name="Classify").click()
    rows = page.locator("#results tbody tr")
    rows.first.wait_for()
    return [
        (
            row.locator("td.label").inner_text(),
            float(row.get_attribute("data-score")),
            row.locator("td.score").inner_text(),
        )
        for row in rows.all()
    ]


def test_a_person_sees_label_and_score_per_review(page, served_run):
    reviews = ["A great film, I loved it.", "Boring and bad; a terrible plot."]
    shown = classify(page, reviews)
    probabilities = Classifier.load(served_run).predict_probabilities(reviews)
    assert len(shown) == len(reviews)
    for (label, score, text), probability in zip(shown, probabilities, strict=True):
        expected_label, expected_score = label_and_score(probability)
        assert label == expected_label
        assert score == pytest.approx(expected_score, abs=1e-6)
        assert text == f"{expected_score:.3f}"


def test_pressing_classify_with_nothing_typed_says_so(page):
    page.get_by_role("button", name="Classify").click()
    assert "at least one review" in page.locator("#error").inner_text()
