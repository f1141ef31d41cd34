"""The second model configuration (kernel 5, batch normalization) end to end.

Every other run in the tests uses the lecture's kernel 3 without batch normalization; this
one goes through bucketing, the portable save, ONNX export and an exact resume.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import SECOND_MODEL, checkpointed_network, varied_reviews

import seqnet.train
from seqnet import export
from seqnet.buckets import trimmed_length
from seqnet.cli import main
from seqnet.config import TrainConfig
from seqnet.data import make_synthetic
from seqnet.model import build_model, portable_model
from seqnet.parallel import ReplicaLayout
from seqnet.predict import Classifier
from seqnet.saving import MODEL_FILE, load_model
from seqnet.train import build_training_model, epoch_data, train_and_evaluate, trains_bucketed

BACKEND = keras.backend.backend()
# Dropout and a warm-up-cosine schedule, which an exact resume has to restore.
SECOND_RUN = TrainConfig(
    data="synthetic", epochs=2, batch_size=16, synthetic_samples=200, seed=7, model=SECOND_MODEL
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A run of ``SECOND_RUN``, uninterrupted."""
    workdir = tmp_path_factory.mktemp("second-config") / "run"
    train_and_evaluate(SECOND_RUN, workdir, verbose=0)
    return workdir


def _short_reviews(config, count: int = 16, longest: int = 12) -> np.ndarray:
    """Reviews of at most ``longest`` tokens, so a batch of them trims to a shorter length."""
    rng = np.random.default_rng(0)
    x = np.zeros((count, config.sequence_length), dtype="int32")
    for row, size in enumerate(rng.integers(1, longest + 1, count)):
        x[row, -size:] = rng.integers(1, config.vocabulary_size, size)
    return x


def test_bucketing_would_change_batch_normalizations_training_statistics():
    """Why batch-normalized networks train untrimmed: in training, a trimmed batch gives
    other outputs than the same batch untrimmed, as its statistics count fewer padding
    windows; in inference, with the moving statistics, trimming is exact."""
    config = dataclasses.replace(SECOND_MODEL, dropout_rate=0.0)  # only the statistics differ
    network = portable_model(build_model(config), config, from_training=True, variable_length=True)
    # Moving statistics other than a fresh layer's identity, so inference does normalize.
    network.get_layer("convolution_batch_norm").moving_variance.assign(np.full(8, 2.0))
    x = _short_reviews(config)
    length = trimmed_length(x, kernel_size=config.kernel_size, step=5)
    assert length < config.sequence_length

    def outputs(batch, training):
        return keras.ops.convert_to_numpy(network(batch, training=training))

    np.testing.assert_allclose(outputs(x[:, -length:], False), outputs(x, False), atol=1e-6)
    assert np.abs(outputs(x[:, -length:], True) - outputs(x, True)).max() > 1e-3


def test_batch_normalized_networks_train_on_untrimmed_batches():
    config = TrainConfig(model=SECOND_MODEL, batch_size=16)
    with pytest.raises(ValueError, match="cannot train on length-bucketed batches"):
        build_model(SECOND_MODEL, variable_length=True)
    model = build_training_model(config, 100)
    assert model.input_shape == (None, SECOND_MODEL.sequence_length)
    assert not trains_bucketed(model, ReplicaLayout())
    data = make_synthetic(num_words=60, maxlen=24, samples=100)
    x, y, _ = epoch_data(model, data, config, 0, ReplicaLayout())
    assert x.shape == data.x_train.shape and len(y) == len(x)


def test_saved_model_computes_what_the_training_network_computed(workdir):
    training = load_model(checkpointed_network(workdir))
    saved = keras.saving.load_model(workdir / MODEL_FILE)
    classifier = Classifier.load(workdir)
    token_ids = classifier.vocabulary.encode_batch(
        varied_reviews(list(classifier.vocabulary.words), count=60), SECOND_MODEL.sequence_length
    )
    logits = keras.ops.convert_to_numpy(training(token_ids, training=False))[:, 0]
    expected = 1 / (1 + np.exp(-logits.astype("float64")))

    got = keras.ops.convert_to_numpy(saved(token_ids, training=False))[:, 0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(classifier.predict_token_ids(token_ids)[:, 1], expected, atol=1e-5)


def test_onnx_export_runs_in_onnxruntime_as_seqnet_predicts(workdir):
    try:
        export.check_exportable("onnx", BACKEND)
    except export.MissingDependencyError as error:
        pytest.skip(str(error))
    onnxruntime = pytest.importorskip("onnxruntime")
    assert main(["export", "--workdir", str(workdir), "--format", "onnx"]) == 0
    bundle = export.default_output(workdir, "onnx")
    classifier = Classifier.load(workdir)
    reviews = varied_reviews(list(classifier.vocabulary.words))
    token_ids = classifier.vocabulary.encode_batch(reviews, SECOND_MODEL.sequence_length)

    session = onnxruntime.InferenceSession(str(bundle / "model.onnx"))
    (probabilities,) = session.run([export.OUTPUT_NAME], {export.INPUT_NAME: token_ids})

    expected = classifier.predict_probabilities(reviews)[:, 1]
    assert float(np.max(np.abs(probabilities[:, 0] - expected))) <= 1e-5


class Interrupted(Exception):
    """Stands for a crash: the process dies as the second epoch begins."""


def _state(path: Path) -> list[np.ndarray]:
    """Weights, batch-norm statistics and optimizer variables of a saved model, in order."""
    model = load_model(path)
    optimizer = model.optimizer.variables if model.compiled else []  # model.keras has none
    return [keras.ops.convert_to_numpy(variable) for variable in [*model.weights, *optimizer]]


def test_a_resumed_run_ends_bit_for_bit_where_an_uninterrupted_one_does(
    workdir, tmp_path, monkeypatch
):
    real_train_one_epoch = seqnet.train.train_one_epoch

    def crashing(model, data, config, epoch, **kwargs):
        if epoch == 1:
            raise Interrupted
        return real_train_one_epoch(model, data, config, epoch, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(seqnet.train, "train_one_epoch", crashing)
        with pytest.raises(Interrupted):
            train_and_evaluate(SECOND_RUN, tmp_path, verbose=0)
    resumed = train_and_evaluate(SECOND_RUN, tmp_path, resume=True, verbose=0)

    assert [epoch["epoch"] for epoch in resumed["history"]] == [1, 2]
    pairs = [
        (checkpointed_network(tmp_path), checkpointed_network(workdir)),
        (tmp_path / MODEL_FILE, workdir / MODEL_FILE),
    ]
    for resumed_file, uninterrupted_file in pairs:
        for one, other in zip(_state(resumed_file), _state(uninterrupted_file), strict=True):
            np.testing.assert_array_equal(one, other)
