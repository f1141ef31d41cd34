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
from conftest import browser_unavailable, train_tiny_run, varied_reviews
from serving import free_port

from seqnet import export
from seqnet.cli import main
from seqnet.predict import Classifier
from seqnet.serve import label_and_score
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
    return train_tiny_run(tmp_path_factory.mktemp("page-run"), batch_size=4, seed=5)


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
    for _ in range(100):
        try:
            httpx.get(url + "/index.html", timeout=1).raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"The static server did not start: {log.read_text()}")


@pytest.fixture(scope="module")
def static_url(bundle, tmp_path_factory):
    process, url = _serve_folder(bundle, tmp_path_factory.mktemp("static") / "server.log")
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def page(browser, static_url):
    page = browser.new_page()
    page.goto(static_url + "/index.html")
    page.wait_for_function("document.querySelector('#status.checked, #error:not(:empty)')")
    yield page
    page.close()


def test_the_page_checks_itself_against_the_reference_reviews(page):
    assert page.locator("#error").inner_text() == ""
    status = page.locator("#status").inner_text()
    assert status.startswith("Ready. Checked against seqnet on its 8 reference reviews")


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


def test_a_person_types_reviews_and_reads_label_and_score(page, workdir):
    reviews = ["A great film, I loved it.", "Boring and bad; a terrible plot."]
    page.get_by_label("Reviews, one per line").fill("\n".join(reviews))
    page.get_by_role("button", name="Classify").click()
    rows = page.locator("#results tbody tr")
    rows.nth(len(reviews) - 1).wait_for()
    probabilities = Classifier.load(workdir).predict_probabilities(reviews)
    for row, probability in zip(rows.all(), probabilities, strict=True):
        label, score = label_and_score(probability)
        assert row.locator("td.label").inner_text() == label
        assert float(row.get_attribute("data-score")) == pytest.approx(score, abs=1e-6)
        assert row.locator("td.score").inner_text() == f"{score:.3f}"


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
