"""The task: classes, head, loss, metric and decision, for two classes and for many."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from seqnet.config import ModelConfig
from seqnet.model import build_imdb_cnn, build_model, portable_model
from seqnet.task import IMDB_CLASSES, Task, decide_one

TOPICS = Task(("World", "Sports", "Business", "Sci/Tech"))


def test_two_classes_keep_the_lectures_head_and_more_get_a_softmax():
    assert Task().output_units == 1 and Task().binary
    assert TOPICS.output_units == 4 and not TOPICS.binary
    assert build_imdb_cnn().output_shape == (None, 1)
    four = build_imdb_cnn(num_classes=4)
    assert four.output_shape == (None, 4)
    assert four.get_layer("probability").activation.__name__ == "softmax"
    # Only the head differs: the body's 350,500 parameters are the lecture's.
    assert four.count_params() - build_imdb_cnn().count_params() == 3 * 251


def test_probabilities_of_a_sigmoid_head_are_both_classes():
    probabilities = Task().probabilities(np.array([[0.8], [0.1]]))
    np.testing.assert_allclose(probabilities, [[0.2, 0.8], [0.9, 0.1]], atol=1e-7)
    assert TOPICS.probabilities(np.full((2, 4), 0.25)).shape == (2, 4)


def test_binary_decisions_use_the_threshold_and_many_the_arg_max_first_of_ties():
    assert Task().decide(np.array([[0.4, 0.6], [0.6, 0.4]]), threshold=0.7).tolist() == [0, 0]
    assert Task().decide(np.array([[0.3, 0.7]]), threshold=0.7).tolist() == [1]
    tied = np.array([[0.1, 0.4, 0.4, 0.1], [0.7, 0.1, 0.1, 0.1]])
    assert TOPICS.decide(tied).tolist() == [1, 0]
    assert [decide_one(row) for row in tied.tolist()] == [1, 0]
    assert decide_one([0.3, 0.7], 0.8) == 0
    with pytest.raises(ValueError, match="two classes only"):
        TOPICS.decide(tied, threshold=0.7)


@pytest.mark.parametrize("num_classes", [2, 5])
def test_the_training_networks_loss_from_logits_is_the_portable_ones(num_classes):
    config = ModelConfig(
        vocabulary_size=60, sequence_length=24, embedding_dim=8, filters=8, hidden_units=8,
        num_classes=num_classes,
    )  # fmt: skip
    training = build_model(config)
    portable = portable_model(training, config, from_training=True)
    x = np.random.default_rng(0).integers(0, 60, (16, 24)).astype("int32")
    y = np.arange(16) % num_classes
    logits = training.predict(x, verbose=0)
    probabilities = portable.predict(x, verbose=0)
    from_logits = keras.ops.convert_to_numpy(training.loss(y, logits))
    if num_classes == 2:
        from_probabilities = keras.losses.BinaryCrossentropy()(y, probabilities)
    else:
        from_probabilities = keras.losses.SparseCategoricalCrossentropy()(y, probabilities)
    np.testing.assert_allclose(
        from_logits, keras.ops.convert_to_numpy(from_probabilities), rtol=1e-4
    )


def test_classes_file_round_trips_and_refuses_what_is_not_one(tmp_path):
    path = tmp_path / "classes.json"
    TOPICS.save(path)
    assert Task.load(path) == TOPICS
    assert Task.load(tmp_path / "none.json") == Task(IMDB_CLASSES)  # a run of seqnet 0.2
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="Not a seqnet classes file"):
        Task.load(path)


@pytest.mark.parametrize(
    ("names", "message"),
    [(("one",), "at least two"), (("a", ""), "non-empty"), (("a", "a"), "repeated")],
)
def test_bad_class_names_are_refused(names, message):
    with pytest.raises(ValueError, match=message):
        Task(names)
