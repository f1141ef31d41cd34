"""A second architecture, defined here and nowhere in seqnet, goes the whole way: it trains on a
labelled CSV of three classes, predicts, saves a portable model.keras and exports to ONNX,
through the same code as the lecture's CNN."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import above_chance

from seqnet import export
from seqnet.config import ModelConfig, TrainConfig
from seqnet.model import build_network, register_architecture
from seqnet.predict import Classifier
from seqnet.train import train_and_evaluate

CLASSES = ("cats", "dogs", "fish")
WORDS = {
    "cats": ["purr", "whiskers", "meow", "litter"],
    "dogs": ["bark", "leash", "fetch", "puppy"],
    "fish": ["fins", "tank", "gills", "swim"],
}
FILLER = ["the", "a", "my", "is", "very", "and", "today", "again"]


class MaxOfEmbeddings:
    """Embedding -> GlobalMaxPooling1D: each feature is a word's strongest embedding value.

    A max over positions is unchanged by dropping all but one leading padding token, so
    batches trimmed to one padding token give the untrimmed outputs.
    """

    def features(self, config: ModelConfig, token_ids, *, training: bool):
        x = keras.layers.Embedding(config.vocabulary_size, config.embedding_dim, name="embedding")(
            token_ids
        )  # (batch, length, embedding_dim)
        x = keras.layers.Dropout(config.dropout_rate, name="embedding_dropout")(x)
        return keras.layers.GlobalMaxPooling1D(name="pooling")(x)  # (batch, embedding_dim)

    def trim_window(self, config: ModelConfig) -> int:
        return 1

    def trains_trimmed(self, config: ModelConfig) -> bool:
        return True


register_architecture("max-of-embeddings", MaxOfEmbeddings())
CONFIG = ModelConfig(architecture="max-of-embeddings", embedding_dim=16)


def _write_pets(path: Path, rows: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        for row in range(rows):
            label = CLASSES[row % len(CLASSES)]
            words = [*rng.choice(WORDS[label], 2), *rng.choice(FILLER, int(rng.integers(3, 12)))]
            writer.writerow([" ".join(rng.permutation(words)), label])
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("own-architecture")
    train = _write_pets(folder / "pets.csv", 600, seed=0)
    config = TrainConfig(data=str(train), model=CONFIG, epochs=4, batch_size=16)
    metrics = train_and_evaluate(config, folder / "run", verbose=0)
    return folder / "run", metrics


def test_it_trains_and_reports_every_class(run):
    _, metrics = run
    assert metrics["classes"] == list(CLASSES)
    assert metrics["config"]["model"]["architecture"] == "max-of-embeddings"
    assert metrics["test_accuracy"] >= above_chance(metrics["test_samples"])
    assert [row["class"] for row in metrics["test"]["per_class"]] == list(CLASSES)


def test_it_predicts_class_names(run):
    workdir, _ = run
    predictions = Classifier.load(workdir).predict(["my puppy will fetch", "gills and fins"])
    assert [p.label for p in predictions] == ["dogs", "fish"]
    assert all(len(p.probabilities) == 3 for p in predictions)


def test_its_model_file_opens_in_plain_keras_with_the_same_outputs(run):
    workdir, _ = run
    classifier = Classifier.load(workdir)
    plain = keras.saving.load_model(workdir / "model.keras")  # no seqnet class involved
    token_ids = classifier.vocabulary.encode_batch(
        ["purr purr", "the tank"], classifier.sequence_length
    )
    expected = classifier.predict_token_ids(token_ids)
    np.testing.assert_allclose(np.asarray(plain.predict(token_ids, verbose=0)), expected, atol=1e-6)
    assert build_network(classifier.config).count_params() == plain.count_params()


def test_it_exports_to_onnx_with_the_same_probabilities(run, tmp_path):
    import onnxruntime

    workdir, _ = run
    classifier = Classifier.load(workdir)
    export.export_run(workdir, "onnx", tmp_path / "bundle")
    session = onnxruntime.InferenceSession(str(tmp_path / "bundle" / export.MODEL_NAMES["onnx"]))
    token_ids = classifier.vocabulary.encode_batch(
        ["fetch the leash", "meow"], classifier.sequence_length
    )
    (outputs,) = session.run(None, {session.get_inputs()[0].name: token_ids})
    np.testing.assert_allclose(outputs, classifier.predict_token_ids(token_ids), atol=1e-5)
