"""Real IMDB: seqnet's recipe must reach the classic example's accuracy on every backend and seed.

Runs only when SEQNET_IMDB_ARCHIVE names aclImdb_v1.tar.gz (CI sets it). Each run's figures go
to ``test-results/real-data-<backend>-seed<seed>.json`` so CI can compare the backends' means.
"""

import json
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from seqnet.config import TrainConfig
from seqnet.data import read_dataset
from seqnet.predict import Classifier
from seqnet.train import train_and_evaluate

pytestmark = pytest.mark.real_data
SEEDS = (0, 1, 2)
RESULTS = Path(__file__).parent.parent / "test-results"


def test_archive_loads_like_keras_imdb(real_archive):
    dataset = read_dataset(real_archive, verbose=False)
    assert dataset.x_train.shape == (25_000, 400) and dataset.x_test.shape == (25_000, 400)
    assert dataset.y_train.mean() == 0.5 and dataset.y_test.mean() == 0.5
    assert dataset.vocabulary.words[:3] == ("the", "and", "a")
    assert dataset.x_train.max() == 4999 and dataset.x_train.min() == 0
    started = time.perf_counter()
    cached = read_dataset(real_archive, verbose=False)
    assert time.perf_counter() - started < 1.0
    np.testing.assert_array_equal(cached.x_test, dataset.x_test)


def _record(metrics: dict, seed: int) -> None:
    """Write this run's figures for the cross-backend comparison in CI (one file per run)."""
    RESULTS.mkdir(exist_ok=True)
    backend = keras.backend.backend()
    run = {
        "backend": backend,
        "seed": seed,
        "test_accuracy_per_epoch": [epoch["val_accuracy"] for epoch in metrics["history"]],
        "seconds_per_epoch": metrics["seconds_per_epoch"],
    }
    (RESULTS / f"real-data-{backend}-seed{seed}.json").write_text(json.dumps(run, indent=2))


@pytest.mark.parametrize("seed", SEEDS)
def test_recipe_reaches_0_88_in_two_epochs_on_every_seed(real_archive, tmp_path, seed):
    config = TrainConfig(data=str(real_archive), epochs=2, batch_size=32, seed=seed)
    metrics = train_and_evaluate(config, tmp_path, verbose=2)
    accuracies = [round(epoch["val_accuracy"], 4) for epoch in metrics["history"]]
    print(
        f"{keras.backend.backend()} seed {seed}: test accuracy per epoch {accuracies}, "
        f"{metrics['seconds_per_epoch']:.1f} s per epoch"
    )
    _record(metrics, seed)
    assert metrics["test_accuracy"] >= 0.88
    predictions = Classifier.load(tmp_path).predict(
        [
            "An absolute masterpiece: wonderful acting, a moving story, I loved every minute.",
            "Terrible and boring, a complete waste of time. The worst film I have ever seen.",
        ]
    )
    assert [prediction.label for prediction in predictions] == ["positive", "negative"]
