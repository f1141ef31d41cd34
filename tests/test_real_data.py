"""Real IMDB: the lecture's recipe must reach the classic example's accuracy on every backend.

Runs only when SEQNET_IMDB_ARCHIVE names aclImdb_v1.tar.gz (CI sets it).
"""

import time

import keras
import numpy as np
import pytest

from seqnet.config import TrainConfig
from seqnet.data import read_dataset
from seqnet.predict import Classifier
from seqnet.train import train_and_evaluate

pytestmark = pytest.mark.real_data


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


def test_lecture_recipe_reaches_0_875_in_two_epochs(real_archive, tmp_path):
    config = TrainConfig(data=str(real_archive), epochs=2, batch_size=32, seed=0)
    metrics = train_and_evaluate(config, tmp_path, verbose=2)
    accuracies = [round(epoch["val_accuracy"], 4) for epoch in metrics["history"]]
    print(
        f"{keras.backend.backend()}: test accuracy per epoch {accuracies}, "
        f"{metrics['seconds_per_epoch']:.1f} s per epoch"
    )
    assert metrics["test_accuracy"] >= 0.875
    predictions = Classifier.load(tmp_path).predict(
        [
            "An absolute masterpiece: wonderful acting, a moving story, I loved every minute.",
            "Terrible and boring, a complete waste of time. The worst film I have ever seen.",
        ]
    )
    assert [prediction.label for prediction in predictions] == ["positive", "negative"]
