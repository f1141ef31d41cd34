import keras
import numpy as np
import pytest
from conftest import MODEL_CONFIGS, above_chance

from seqnet import build_imdb_cnn
from seqnet.config import ModelConfig
from seqnet.data import make_synthetic
from seqnet.model import build_model, portable_model


def test_default_is_the_lecture_network():
    model = build_imdb_cnn()
    assert model.count_params() == 350_751
    shapes = {layer.name: layer.output.shape for layer in model.layers}
    assert shapes == {
        "token_ids": (None, 400),
        "embedding": (None, 400, 50),
        "embedding_dropout": (None, 400, 50),
        "convolution": (None, 398, 250),
        "max_pooling": (None, 250),
        "hidden": (None, 250),
        "hidden_dropout": (None, 250),
        "probability": (None, 1),
    }
    assert model.get_layer("convolution").data_format == "channels_last"
    assert model.get_layer("embedding_dropout").rate == pytest.approx(0.2)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    assert model.loss.name == "binary_crossentropy"


def test_every_hyperparameter_is_a_keyword(tiny_model_config):
    model = build_imdb_cnn(
        vocabulary_size=60,
        sequence_length=24,
        embedding_dim=8,
        filters=8,
        kernel_size=3,
        hidden_units=8,
        dropout_rate=0.1,
        learning_rate=0.01,
        batch_normalization=True,
    )
    assert model.output.shape == (None, 1)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.01)
    assert model.get_layer("embedding").input_dim == 60 and model.input_shape == (None, 24)
    assert model.get_layer("convolution").kernel_size == (3,)
    assert {"convolution_batch_norm", "hidden_batch_norm"} <= {layer.name for layer in model.layers}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"vocabulary_size": 0}, "vocabulary_size must be a positive"),
        ({"vocabulary_size": 3}, "reserved ids"),
        ({"kernel_size": 500}, "cannot exceed sequence_length"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
        ({"learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_bad_hyperparameters_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        build_imdb_cnn(**settings)


def test_unknown_hyperparameters_are_named():
    with pytest.raises(TypeError, match=r"unknown hyperparameters \['filter'\]"):
        build_imdb_cnn(filter=8)


@pytest.mark.parametrize("config", MODEL_CONFIGS.values(), ids=MODEL_CONFIGS.keys())
def test_get_config_round_trips(config):
    model = build_model(config)
    clone = keras.Model.from_config(model.get_config())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert clone.count_params() == model.count_params()


@pytest.mark.parametrize("config", MODEL_CONFIGS.values(), ids=MODEL_CONFIGS.keys())
def test_keras_file_round_trip_keeps_predictions(config, tmp_path):
    model = build_model(config)
    x = make_synthetic(num_words=60, maxlen=24, samples=16).x_test
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert loaded.count_params() == model.count_params()


@pytest.mark.parametrize("config", MODEL_CONFIGS.values(), ids=MODEL_CONFIGS.keys())
def test_one_train_step_changes_every_trainable_weight(config):
    model = build_model(config)
    data = make_synthetic(num_words=60, maxlen=24, samples=64)
    before = [keras.ops.convert_to_numpy(weight) for weight in model.trainable_weights]
    model.train_on_batch(data.x_train, data.y_train)
    for weight, old in zip(model.trainable_weights, before, strict=True):
        assert not np.allclose(keras.ops.convert_to_numpy(weight), old), (
            f"{weight.path} did not change"
        )


def test_synthetic_signal_is_learned():
    config = ModelConfig(
        vocabulary_size=200, sequence_length=60, embedding_dim=16, filters=32, hidden_units=16
    )
    data = make_synthetic(num_words=200, maxlen=60, samples=1000)
    model = build_model(config)
    model.fit(data.x_train, data.y_train, batch_size=32, epochs=6, verbose=0)
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    assert accuracy > above_chance(len(data.y_test))


def test_training_network_is_the_lecture_network_fused(tiny_model_config):
    """Fused pooling and a logit output: the lecture's numbers after a sigmoid, same gradients."""
    config = ModelConfig(**{**tiny_model_config.__dict__, "dropout_rate": 0.0})
    training = build_model(config)
    lecture = build_imdb_cnn(**config.__dict__)
    assert training.count_params() == lecture.count_params()
    assert "max_pooling" not in {layer.name for layer in training.layers}
    lecture.set_weights(training.get_weights())
    data = make_synthetic(num_words=60, maxlen=24, samples=32)
    logits = training.predict(data.x_test, verbose=0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.sigmoid(logits)),
        lecture.predict(data.x_test, verbose=0),
        atol=1e-6,
    )
    # One plain gradient step from identical weights: equal gradients give equal weights.
    # (Not Adam: without dropout, padded windows tie exactly; the fused max gives a tie's
    # gradient to one window, the lecture's splits it. The sums agree, but TensorFlow's Adam
    # squares each slice of the embedding's sparse gradient before summing them.)
    training.compile(
        optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.BinaryCrossentropy(from_logits=True)
    )
    lecture.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    for model in (training, lecture):
        model.train_on_batch(data.x_train, data.y_train)
    for after_training, after_lecture in zip(
        training.get_weights(), lecture.get_weights(), strict=True
    ):
        np.testing.assert_allclose(after_training, after_lecture, atol=1e-5)


@pytest.mark.parametrize("config", MODEL_CONFIGS.values(), ids=MODEL_CONFIGS.keys())
def test_portable_model_has_stock_layers_and_the_same_probabilities(config):
    training = build_model(config)
    portable = portable_model(training, config, from_training=True)
    classes = {type(layer).__module__.split(".")[0] for layer in portable.layers}
    assert classes == {"keras"}, "the portable network must need nothing but Keras"
    assert portable.get_layer("probability").activation.__name__ == "sigmoid"
    data = make_synthetic(num_words=60, maxlen=24, samples=16)
    logits = training.predict(data.x_test, verbose=0)
    np.testing.assert_allclose(
        portable.predict(data.x_test, verbose=0), 1 / (1 + np.exp(-logits)), atol=1e-6
    )
    # Portable in, portable out: the same weights again.
    twice = portable_model(portable, config, from_training=False)
    for again, original in zip(twice.get_weights(), portable.get_weights(), strict=True):
        np.testing.assert_array_equal(again, original)


def test_fused_pooling_is_derived_from_batch_normalization():
    assert ModelConfig().fuse_pooling
    assert not ModelConfig(batch_normalization=True).fuse_pooling
    model = build_model(ModelConfig(**{**ModelConfig().__dict__, "batch_normalization": True}))
    assert "max_pooling" in {layer.name for layer in model.layers}
