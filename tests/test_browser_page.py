"""The ONNX bundle's in-browser page: its JavaScript tokenizer and ONNX Runtime Web, in a real
headless Chromium, give what seqnet's ``Classifier`` gives.

The bundle is installed as its README says (``npm install`` from the npm registry) and served
by a real static file server; without npm the tests skip, or fail under
``SEQNET_REQUIRE_BROWSER=1`` as in CI.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import keras
import numpy as np
import pytest
from conftest import TINY_TEXTS, browser_unavailable, build_run, varied_reviews
from serving import free_port

from seqnet import export
from seqnet.cli import main
from seqnet.predict import Classifier, UnknownWordsWarning
from seqnet.text import tokenize

SHORT_REVIEWS = Path(__file__).parent / "data" / "short_reviews.csv"
# Where a JavaScript reimplementation could part from Python's regex, html.unescape,
# unicodedata.normalize and str.casefold.
EDGE_CASES = [
    "Фильм УЖАСНЫЙ. Der Film war großartig und schön! STRASSE Straße ẞ Ärger",
    "ΣΊΣΥΦΟΣ σοφός İSTANBUL ısparta 这部电影很好看 日本の映画 スーパー ภาพยนตร์ดีมาก",
    "I ❤️ it ❤ 👍🏽 😀😀 👨‍👩‍👧 don’t donʼt l’été ١٢٣ ２０２４年 ½ ﬁne ＦＵＬＬ e\u0301te\u0301",
    "&Auml;rger &szlig; &#x4E2D;&#25991; don&rsquo;t &#x1F600; &Sigma;&Sigma;",
    "Caf&eacute; society &eacute &#233; &#xE9; &#150; &notit; &amp&lt;b&gt; &bogus;",
    "&#0; &#x110000; &#xD800; &#65; &#x41 &NotANumber; &AMP; &Amp;",
    "Line<br>break<BR />and<br/>again<bR\t/>end",
    "a < b > c << d >> e </textarea> f <textarea> g",
    "<" + "x" * 250 + "> a tag too long to strip, then words",
    "<span title='😀😀😀'>emoji inside a tag</span> and 😀 outside",
    "İSTANBUL Straße ΣΊΣΥΦΟΣ naïve CAFÉ résumé ǅemal K",  # Kelvin sign
    "don't it's rock'n'roll 'quoted' o'clock''s dog's' 90's",
    "constructor __proto__ toString hasOwnProperty valueOf",
    "tabs\tand\r\nwindows\rline\nbreaks\u00a0nbsp\u2003em space",
    "",
    "   ",
    "!!! ... ---",
    " ".join(["A long review that keeps going, well past the sequence length."] * 8),
]


def _reviews(vocabulary_words: list[str]) -> list[str]:
    """100 reviews: the hand-written short ones, the edge cases, varied ones to fill up."""
    with SHORT_REVIEWS.open(newline="", encoding="utf-8") as file:
        short = [row["text"] for row in csv.DictReader(file)]
    fill = varied_reviews(vocabulary_words, count=100, seed=7)
    return ([*short, *EDGE_CASES] + fill)[:100]


def _npm_install(folder: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        browser_unavailable("npm is not installed: the page's onnxruntime-web comes from npm")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        check=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("page-run") / "run", TINY_TEXTS, seed=5)


@pytest.fixture(scope="module")
def bundle(workdir) -> Path:
    """The run's ONNX bundle, with onnxruntime-web installed by ``npm install``."""
    try:
        export.check_exportable("onnx", keras.backend.backend())
    except (ValueError, export.MissingDependencyError) as error:
        pytest.skip(str(error))
    assert main(["export", "--workdir", str(workdir), "--format", "onnx"]) == 0
    folder = export.default_output(workdir, "onnx")
    _npm_install(folder)
    return folder


def _serve_folder(folder: Path, log: Path):
    """``python -m http.server`` on ``folder``: a plain static server, as a user would run."""
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=folder, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):  # until it answers, it exits or 10 s pass
        try:
            httpx.get(url + "/index.html", timeout=1).raise_for_status()
            return process, url
        except httpx.HTTPError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"The static server did not start: {log.read_text()}")


@pytest.fixture(scope="module")
def static_url(bundle, tmp_path_factory):
    process, url = _serve_folder(bundle, tmp_path_factory.mktemp("static") / "server.log")
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def colour_bundle(colour_run, bundle, tmp_path_factory) -> Path:
    """The three-class run's ONNX bundle, with the onnxruntime-web ``bundle`` installed."""
    folder = tmp_path_factory.mktemp("colour-bundle") / "bundle"
    args = ["export", "--workdir", str(colour_run), "--format", "onnx", "--output", str(folder)]
    assert main(args) == 0
    shutil.copytree(bundle / "node_modules", folder / "node_modules")  # npm install once
    return folder


def _open(browser, url):
    page = browser.new_page()
    page.goto(url + "/index.html")
    page.wait_for_function("document.querySelector('#status.checked, #error:not(:empty)')")
    return page


@pytest.fixture
def page(browser, static_url):
    page = _open(browser, static_url)
    yield page
    page.close()


@pytest.fixture
def colour_page(browser, colour_bundle, tmp_path):
    process, url = _serve_folder(colour_bundle, tmp_path / "server.log")
    page = _open(browser, url)
    yield page
    page.close()
    process.terminate()
    process.wait(timeout=30)


def test_the_page_checks_itself_against_the_reference_reviews(page):
    assert page.locator("#error").inner_text() == ""
    status = page.locator("#status").inner_text()
    assert status.startswith("Ready. Checked against seqnet on its 8 reference texts")
    assert "every class's probability" in status


def test_javascript_tokens_and_ids_equal_seqnets(page, workdir):
    classifier = Classifier.load(workdir)
    reviews = _reviews(list(classifier.vocabulary.words))
    tokens = page.evaluate(
        "texts => texts.map(text => window.seqnetClassifier.tokenizer.tokenize(text))", reviews
    )
    assert tokens == [tokenize(review) for review in reviews]
    ids = page.evaluate(
        "texts => texts.map(text => Array.from(window.seqnetClassifier.tokenizer.encode(text)))",
        reviews,
    )
    expected = classifier.vocabulary.encode_batch(reviews, classifier.sequence_length)
    np.testing.assert_array_equal(np.array(ids), expected)


def test_probabilities_in_the_browser_equal_the_classifiers(page, workdir):
    classifier = Classifier.load(workdir)
    reviews = _reviews(list(classifier.vocabulary.words))
    assert len(reviews) == 100
    in_browser = page.evaluate(
        "texts => window.seqnetClassifier.predictProbabilities(texts)", reviews
    )
    expected = classifier.predict_probabilities(reviews)
    np.testing.assert_allclose(in_browser, expected, rtol=0, atol=export.REFERENCE_TOLERANCE)


def _type_and_classify(page, texts: list[str]):
    page.get_by_label("Texts, one per line").fill("\n".join(texts))
    page.get_by_role("button", name="Classify").click()
    rows = page.locator("#results tbody tr")
    rows.nth(len(texts) - 1).wait_for()
    return rows.all()


def test_a_person_types_reviews_and_reads_label_and_score(page, workdir):
    reviews = ["A great film, I loved it.", "Boring and bad; a terrible plot."]
    rows = _type_and_classify(page, reviews)
    for row, prediction in zip(rows, Classifier.load(workdir).predict(reviews), strict=True):
        assert row.locator("td.label").inner_text() == prediction.label
        assert float(row.get_attribute("data-score")) == pytest.approx(prediction.score, abs=1e-6)
        assert row.locator("td.score").inner_text() == f"{prediction.score:.3f}"


def test_a_three_class_bundle_checks_every_class_and_labels_by_the_most_probable(
    colour_page, colour_run
):
    assert colour_page.locator("#error").inner_text() == ""
    assert colour_page.locator("#status").inner_text().startswith("Ready. Checked")
    classifier = Classifier.load(colour_run)
    texts = ["red apple cherry", "grass leaf lime", "sky sea blue", "zyzzyva", ""]
    in_browser = colour_page.evaluate(
        "texts => window.seqnetClassifier.predictProbabilities(texts)", texts
    )
    expected = classifier.predict_probabilities(texts)
    np.testing.assert_allclose(in_browser, expected, rtol=0, atol=export.REFERENCE_TOLERANCE)
    answers = colour_page.evaluate("texts => window.seqnetClassifier.predict(texts)", texts)
    with pytest.warns(UnknownWordsWarning):
        predictions = classifier.predict(texts)
    assert [a["label"] for a in answers] == [p.label for p in predictions]
    assert [a["label"] for a in answers[:3]] == ["red", "green", "blue"]
    assert [a["known_words"] for a in answers] == [p.known_words for p in predictions]
    rows = _type_and_classify(colour_page, texts[:4])
    assert [row.locator("td.label").inner_text() for row in rows[:3]] == ["red", "green", "blue"]
    bars = rows[0].locator("div.class")
    assert [bar.get_attribute("data-class") for bar in bars.all()] == ["red", "green", "blue"]
    assert rows[3].locator("div.warning").count() == 1  # zyzzyva: no known word
    assert rows[0].locator("div.warning").count() == 0


def test_without_npm_install_the_page_says_what_to_run(browser, bundle, tmp_path):
    bare = tmp_path / "bundle"
    shutil.copytree(bundle, bare, ignore=shutil.ignore_patterns("node_modules"))
    process, url = _serve_folder(bare, tmp_path / "server.log")
    try:
        page = browser.new_page()
        page.goto(url + "/index.html")
        error = page.locator("#error")
        error.filter(has_text="npm install").wait_for()
        assert page.get_by_role("button", name="Classify").is_disabled()
    finally:
        process.terminate()
        process.wait(timeout=30)
