"""Shared fixtures: tiny configs, tiny aclImdb-layout data, and the real archive when given."""

from __future__ import annotations

import dataclasses
import io
import math
import os
import shutil
import tarfile
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from seqnet.config import ModelConfig, TrainConfig

REAL_ARCHIVE_VARIABLE = "SEQNET_IMDB_ARCHIVE"

# A per-example deadline measures the machine's load, not the code: on two shared cores an
# example that normally takes 20 ms can take 300, and a deadline never catches a hang (it is
# checked only after an example returns).
settings.register_profile("seqnet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("seqnet")

TINY_REVIEWS = {
    ("train", "pos"): ["A great film, I loved it.<br /><br />Great acting!", "Great fun and loved"],
    ("train", "neg"): ["A terrible film. Boring &amp; bad.", "Bad, bad acting; boring plot"],
    ("test", "pos"): ["Loved this great movie", "great"],
    ("test", "neg"): ["boring and bad", "Terrible movie zyzzyva"],
}


def pytest_configure(config):
    archive = os.environ.get(REAL_ARCHIVE_VARIABLE)
    if archive and not Path(archive).is_file():
        raise pytest.UsageError(f"{REAL_ARCHIVE_VARIABLE}={archive} does not name a file.")


def pytest_collection_modifyitems(config, items):
    if os.environ.get(REAL_ARCHIVE_VARIABLE):
        return
    skip = pytest.mark.skip(reason=f"set {REAL_ARCHIVE_VARIABLE} to the aclImdb_v1.tar.gz path")
    for item in items:
        if "real_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def real_archive() -> Path:
    return Path(os.environ[REAL_ARCHIVE_VARIABLE])


# SEQNET_CACHE_DIR as the run started, before any test set its own.
STARTING_CACHE_DIR = os.environ.get("SEQNET_CACHE_DIR")


@pytest.fixture(scope="session")
def _real_data_cache(tmp_path_factory) -> Path:
    """The one cache the real-data tests share: the SEQNET_CACHE_DIR the run was started with
    (CI names one for all three backends, so the archive is tokenized once), else a temporary
    folder for this session."""
    if STARTING_CACHE_DIR:
        return Path(STARTING_CACHE_DIR)
    return tmp_path_factory.mktemp("real-data-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(request, tmp_path_factory, monkeypatch):
    """Each test caches tokenized data in its own folder, never in the user's cache; the
    real-data tests share ``_real_data_cache``: each would spend a minute tokenizing the same
    archive otherwise."""
    if "real_data" in request.keywords:
        folder = request.getfixturevalue("_real_data_cache")
    else:
        folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SEQNET_CACHE_DIR", str(folder))


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(1234)


# The smallest network the tests train: every shape of the lecture's, seconds to fit.
TINY_MODEL = ModelConfig(
    vocabulary_size=60,
    sequence_length=24,
    embedding_dim=8,
    filters=8,
    kernel_size=3,
    hidden_units=8,
)
# The second configuration every layer-shape path is checked with: a wider window (nothing
# may assume 3) and batch normalization, which puts BatchNormalization between the
# convolution and its pooling, so training runs the stock layers instead of the fused one.
SECOND_MODEL = dataclasses.replace(TINY_MODEL, kernel_size=5, batch_normalization=True)
# Every architecture the oracles compare: the fused training path with two window widths,
# and the batch-normalized one.
MODEL_CONFIGS = {
    "kernel3": TINY_MODEL,
    "kernel5": dataclasses.replace(TINY_MODEL, kernel_size=5),
    "kernel5-batchnorm": SECOND_MODEL,
}


def above_chance(samples: int) -> float:
    """An accuracy that a model which learned nothing reaches on ``samples`` test reviews
    with probability below 1e-6: a fair coin's 0.5 plus five of its standard deviations.

    The labels are fair coin flips, so guessing, or always answering the commoner label,
    scores 0.5 on average with a standard deviation of 0.5 / sqrt(samples).
    """
    return 0.5 + 5 * 0.5 / math.sqrt(samples)


@pytest.fixture
def tiny_model_config() -> ModelConfig:
    return TINY_MODEL


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def write_tiny_archive(path: Path, reviews=TINY_REVIEWS, extra=()) -> Path:
    """An aclImdb_v1.tar.gz look-alike; ``extra`` adds (TarInfo, bytes or None) members."""
    with tarfile.open(path, "w:gz") as archive:
        for (split, label), texts in reviews.items():
            for index, text in enumerate(texts):
                add_member(archive, f"aclImdb/{split}/{label}/{index}_5.txt", text.encode())
        for info, data in extra:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def write_tiny_folder(root: Path, reviews=TINY_REVIEWS) -> Path:
    for (split, label), texts in reviews.items():
        folder = root / "aclImdb" / split / label
        folder.mkdir(parents=True)
        for index, text in enumerate(texts):
            (folder / f"{index}_5.txt").write_text(text, encoding="utf-8")
    return root / "aclImdb"


def train_tiny_run(root: Path, **overrides) -> Path:
    """``root/run``: one epoch of ``TINY_MODEL`` on a tiny aclImdb look-alike in ``root``,
    so the run folder has a vocabulary; ``overrides`` are TrainConfig fields."""
    from seqnet.train import train_and_evaluate

    archive = write_tiny_archive(root / "aclImdb_v1.tar.gz")
    config = TrainConfig(data=str(archive), epochs=1, model=TINY_MODEL, **overrides)
    train_and_evaluate(config, root / "run", verbose=0)
    return root / "run"


# The tiny reviews by class, in IMDB's class order, for runs built without the data pipeline.
TINY_TEXTS = {
    name: [text for (_, label), texts in TINY_REVIEWS.items() if label == short for text in texts]
    for name, short in (("negative", "neg"), ("positive", "pos"))
}
# Texts of three colours, for a run with more than two classes: each class has its own words.
COLOUR_TEXTS = {
    "red": ["red apple cherry", "a ripe red cherry", "cherry and apple pie", "red red apple"],
    "green": ["green leaf and grass", "grass lime leaf", "a green lime", "leaf grass green"],
    "blue": ["blue sky and sea", "deep blue sea", "the sky is blue", "sea sky ocean"],
}


def build_run(
    workdir: Path,
    texts: dict[str, list[str]],
    *,
    model: ModelConfig = TINY_MODEL,
    epochs: int = 20,
    seed: int = 0,
) -> Path:
    """A run folder made without the data pipeline: a vocabulary of ``texts``, ``model`` with
    one class per key of ``texts`` (in their order) fitted for ``epochs`` on them, saved by
    ``save_run`` with the metrics train writes (history and the test report)."""
    from seqnet.metrics import classification_report
    from seqnet.model import build_model
    from seqnet.saving import save_run
    from seqnet.task import Task
    from seqnet.text import Vocabulary

    task = Task(tuple(texts))
    config = TrainConfig(model=dataclasses.replace(model, num_classes=task.num_classes))
    pairs = [(text, label) for label, name in enumerate(task.class_names) for text in texts[name]]
    vocabulary = Vocabulary.from_texts([text for text, _ in pairs], model.vocabulary_size)
    x = vocabulary.encode_batch([text for text, _ in pairs], model.sequence_length)
    y = np.array([label for _, label in pairs], dtype=np.int32)
    keras.utils.set_random_seed(seed)
    network = build_model(config.model, learning_rate=0.02)
    fitted = network.fit(x, y, epochs=epochs, batch_size=4, verbose=0).history
    history = [
        {"epoch": epoch + 1, "loss": fitted["loss"][epoch], "accuracy": fitted["accuracy"][epoch]}
        for epoch in range(epochs)
    ]
    logits = keras.ops.convert_to_numpy(network(x, training=False))
    predicted = (logits[:, 0] >= 0).astype(int) if task.binary else logits.argmax(axis=1)
    test = classification_report(y, predicted, task.class_names)
    metrics = {"history": history, "classes": list(task.class_names), "test": test}
    save_run(workdir, network, config, vocabulary, task, metrics)
    return workdir


@pytest.fixture(scope="session")
def colour_run(tmp_path_factory) -> Path:
    """A three-class run (red, green, blue) built directly, trained to tell them apart."""
    return build_run(tmp_path_factory.mktemp("colours") / "run", COLOUR_TEXTS)


@pytest.fixture
def tiny_archive(tmp_path) -> Path:
    return write_tiny_archive(tmp_path / "aclImdb_v1.tar.gz")


@pytest.fixture(scope="session")
def served_run(tmp_path_factory) -> Path:
    """A tiny two-class (IMDB) run folder for ``seqnet serve``, built once per session."""
    return build_run(tmp_path_factory.mktemp("served") / "run", TINY_TEXTS)


@pytest.fixture(scope="session")
def live_server(served_run, tmp_path_factory):
    """``seqnet serve`` on the tiny run, a real subprocess on a free loopback port."""
    from serving import start_server

    server = start_server(served_run, tmp_path_factory.mktemp("server") / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def colour_server(colour_run, tmp_path_factory):
    """``seqnet serve`` on the three-class run, a real subprocess on a free loopback port."""
    from serving import start_server

    server = start_server(colour_run, tmp_path_factory.mktemp("colour-server") / "server.log")
    yield server
    server.stop()


UNSEEN = ["zyzzyva", "Quux", "flibbertigibbet", "naïve", "café", "1999", "don't", "it's"]
DECORATIONS = ["<br />", "<br/>", "&amp;", "&eacute;", "<i>", "</i>", "!", ",", "...", "--"]


def varied_reviews(words: list[str], count: int = 100, seed: int = 0) -> list[str]:
    """Reviews mixing vocabulary words (in any case), unseen words, HTML and punctuation."""
    rng = np.random.default_rng(seed)
    pool = [*words, *UNSEEN, *DECORATIONS]
    reviews = []
    for index in range(count):
        length = int(rng.integers(0, 40))  # some longer than the 24 ids: truncated
        picked = [str(pool[i]) for i in rng.integers(0, len(pool), length)]
        picked = [word.upper() if rng.random() < 0.1 else word for word in picked]
        reviews.append((" " if index % 2 else "").join(picked))
    return reviews


def browser_unavailable(reason: str):
    """Skip, or fail where CI requires the browser tests (SEQNET_REQUIRE_BROWSER=1)."""
    if os.environ.get("SEQNET_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SEQNET_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")  # a sync Playwright loop must not outlive its module
def browser():
    """A headless Chromium driven by Playwright.

    Without Playwright or a Chromium the tests that use it skip, unless
    ``SEQNET_REQUIRE_BROWSER=1`` (as in CI), which turns the skip into a failure.
    ``SEQNET_CHROMIUM`` names the browser executable; by default the ``chromium`` on the PATH.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_unavailable("playwright is not installed (pip install playwright)")
    executable = os.environ.get("SEQNET_CHROMIUM") or shutil.which("chromium")
    if not executable or not os.path.exists(executable):
        browser_unavailable("no Chromium found: install chromium or set SEQNET_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


def checkpointed_network(workdir: Path) -> Path:
    """The training network's file in ``workdir``'s verified last checkpoint."""
    from seqnet.checkpoint import MODEL_PART, read_checkpoint

    folder, _ = read_checkpoint(workdir)
    return folder / MODEL_PART
