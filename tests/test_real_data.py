"""Real IMDB: seqnet's default recipe must reach 0.885 test accuracy on every backend and seed.

Runs only when SEQNET_IMDB_ARCHIVE names aclImdb_v1.tar.gz (CI sets it). Each run's figures go
to ``test-results/real-data-<backend>-seed<seed>.json``, from which ``.ci/compare_backends.py``
holds each backend's mean over the seeds to 0.89 and the backends' means within 0.01 of each
other. The tests share one tokenized cache (tests/conftest.py): SEQNET_CACHE_DIR when set.
"""

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import STARTING_CACHE_DIR

from seqnet import data
from seqnet.config import TrainConfig
from seqnet.data import read_dataset
from seqnet.predict import Classifier
from seqnet.train import train_and_evaluate

pytestmark = pytest.mark.real_data
SEEDS = (0, 1, 2)
RESULTS = Path(__file__).parent.parent / "test-results"
# 60 short reviews written for seqnet (none from IMDB): how the model does on text unlike the
# long reviews it trained on. The default recipe scored 0.967-0.983 on them (CI, 3 seeds).
SHORT_REVIEWS = Path(__file__).parent / "data" / "short_reviews.csv"
SHORT_REVIEWS_FLOOR = 0.9
GOAL_RUN = 0.885  # every run; .ci/compare_backends.py holds each backend's mean to 0.89


def test_archive_loads_like_keras_imdb(real_archive, monkeypatch):
    dataset = read_dataset(real_archive, verbose=False)
    assert dataset.x_train.shape == (25_000, 400) and dataset.x_test.shape == (25_000, 400)
    assert dataset.y_train.mean() == 0.5 and dataset.y_test.mean() == 0.5
    assert dataset.vocabulary.words[:3] == ("the", "and", "a")
    assert dataset.x_train.max() == 4999 and dataset.x_train.min() == 0

    def tokenize_again(*args):
        raise AssertionError("the second read tokenized the archive instead of using the cache")

    monkeypatch.setattr(data, "_read_raw_text", tokenize_again)
    cached = read_dataset(real_archive, verbose=False)
    np.testing.assert_array_equal(cached.x_test, dataset.x_test)
    if STARTING_CACHE_DIR:  # CI's cache, which the other real-data tests and backends reuse
        assert list(Path(STARTING_CACHE_DIR).glob("imdb-*.npz"))


def _record(metrics: dict, seed: int, short_accuracy: float) -> None:
    """Write this run's figures for the cross-backend comparison in CI (one file per run)."""
    RESULTS.mkdir(exist_ok=True)
    backend = keras.backend.backend()
    run = {
        "backend": backend,
        "seed": seed,
        # Per epoch: the recipe's validation sample; test_accuracy: the whole test split.
        "test_accuracy_per_epoch": [epoch["val_accuracy"] for epoch in metrics["history"]],
        "test_accuracy": metrics["test_accuracy"],
        "seconds_per_epoch": metrics["seconds_per_epoch"],
        "short_review_accuracy": short_accuracy,
    }
    (RESULTS / f"real-data-{backend}-seed{seed}.json").write_text(json.dumps(run, indent=2))


def short_review_accuracy(workdir: Path) -> float:
    """The trained run's accuracy on tests/data/short_reviews.csv."""
    with SHORT_REVIEWS.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    predictions = Classifier.load(workdir).predict([row["text"] for row in rows])
    hits = [p.label == row["label"] for p, row in zip(predictions, rows, strict=True)]
    return sum(hits) / len(hits)


@pytest.mark.parametrize("seed", SEEDS)
def test_default_recipe_reaches_0_885_on_every_seed(real_archive, tmp_path, seed):
    config = TrainConfig(data=str(real_archive), seed=seed)  # the default (fast) recipe
    metrics = train_and_evaluate(config, tmp_path, verbose=2)
    accuracies = [round(epoch["val_accuracy"], 4) for epoch in metrics["history"]]
    short = short_review_accuracy(tmp_path)
    print(
        f"{keras.backend.backend()} seed {seed}: validation sample per epoch {accuracies}, "
        f"test accuracy {metrics['test_accuracy']:.4f}, "
        f"{metrics['seconds_per_epoch']:.1f} s per epoch, short reviews {short:.3f}"
    )
    _record(metrics, seed, short)
    assert metrics["test_accuracy"] >= GOAL_RUN
    assert short >= SHORT_REVIEWS_FLOOR
