"""model.keras is portable: plain Keras opens it without seqnet; seqnet 0.1 files still load."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import MODEL_CONFIGS, TINY_MODEL, checkpointed_network, train_tiny_run, varied_reviews

from seqnet.buckets import bucketed_batches, buckets_exactly
from seqnet.config import ModelConfig
from seqnet.layers import MaxPooledConv1D
from seqnet.model import build_model, portable_model
from seqnet.predict import Classifier
from seqnet.saving import MODEL_FILE, VOCABULARY_FILE, load_model
from seqnet.text import Vocabulary

TEXTS = [
    "A great film, I loved it.",
    "Boring &amp; bad.<br />Terrible plot",
    "great great great acting fun",
    "zyzzyva quux never seen words",
    "",
    " ".join(["loved the great acting"] * 12),  # longer than the 24 ids: truncated
]
# Runs in a fresh interpreter: plain Keras only. `sys.modules["seqnet"] = None` makes any
# import of seqnet fail even where it is installed (nox installs it editable, onto every path).
PLAIN_KERAS_SCRIPT = """
import json, sys
import numpy as np
sys.modules["seqnet"] = None
try:
    import seqnet
except ImportError:
    pass
else:
    raise SystemExit("seqnet was importable")
import keras
model = keras.saving.load_model(sys.argv[1])
ids = np.load(sys.argv[2])
print(json.dumps(np.asarray(model.predict_on_batch(ids))[:, 0].tolist()))
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A run folder trained for one epoch on the tiny aclImdb look-alike."""
    return train_tiny_run(tmp_path_factory.mktemp("portable-run"), batch_size=4, seed=5)


def _plain_keras_probabilities(model_path: Path, token_ids: np.ndarray, tmp_path: Path):
    """Probabilities from ``model_path`` computed by a Python that cannot import seqnet.

    Isolated mode (-I) drops PYTHONPATH and the working directory from the path, and the
    working directory is an empty folder outside the checkout; an editable install would still
    put seqnet on the path, so the script itself blocks ``import seqnet`` and fails if it works.
    """
    empty = tmp_path / "no-seqnet"
    empty.mkdir()
    np.save(tmp_path / "ids.npy", token_ids)
    completed = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            PLAIN_KERAS_SCRIPT,
            str(model_path),
            str(tmp_path / "ids.npy"),
        ],
        cwd=empty,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return np.array(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_model_file_names_no_seqnet_code(workdir):
    with zipfile.ZipFile(workdir / MODEL_FILE) as archive:
        config = archive.read("config.json").decode()
    assert "seqnet" not in config  # no registered seqnet class, so no seqnet import
    assert not json.loads(config).get("compile_config")  # no optimizer either


def test_plain_keras_loads_the_run_without_seqnet(workdir, tmp_path):
    classifier = Classifier.load(workdir)
    token_ids = classifier.vocabulary.encode_batch(TEXTS, TINY_MODEL.sequence_length)
    expected = classifier.predict_token_ids(token_ids)[:, 1]  # (texts,): the positive class's

    got = _plain_keras_probabilities(workdir / MODEL_FILE, token_ids, tmp_path)

    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def _sigmoid(logits) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(logits, dtype="float64")))


def _outputs(model: keras.Model, token_ids: np.ndarray, layer: str | None = None) -> np.ndarray:
    """``model``'s inference outputs, or those of its layer named ``layer``."""
    if layer is not None:
        model = keras.Model(model.input, model.get_layer(layer).output)
    return keras.ops.convert_to_numpy(model(token_ids, training=False))


def test_saved_model_computes_what_the_training_network_computed(workdir):
    """model.keras (stock layers, sigmoid), opened by plain Keras, against the run's own
    training network (fused convolution, logits) as checkpointed after its last epoch."""
    training = load_model(checkpointed_network(workdir))
    saved = keras.saving.load_model(workdir / MODEL_FILE)
    classifier = Classifier.load(workdir)
    texts = [*TEXTS, *varied_reviews(list(classifier.vocabulary.words), count=40)]
    token_ids = classifier.vocabulary.encode_batch(texts, TINY_MODEL.sequence_length)
    expected = _sigmoid(_outputs(training, token_ids)[:, 0])

    np.testing.assert_allclose(_outputs(saved, token_ids)[:, 0], expected, rtol=0, atol=1e-5)
    # Classifier trims each chunk to its longest review's bucket (seqnet.buckets).
    np.testing.assert_allclose(classifier.predict_token_ids(token_ids)[:, 1], expected, atol=1e-5)


def _padded_reviews(count: int, config: ModelConfig, seed: int = 0) -> np.ndarray:
    """``count`` reviews of every length from 0 to the config's, padded with 0 in front."""
    rng = np.random.default_rng(seed)
    x = np.zeros((count, config.sequence_length), dtype="int32")
    for row, size in enumerate(rng.integers(0, config.sequence_length + 1, count)):
        x[row, config.sequence_length - size :] = rng.integers(1, config.vocabulary_size, size)
    return x


def _randomize(model: keras.Model, seed: int = 0) -> None:
    """Draw every weight afresh, biases and batch-norm statistics included.

    Fresh Keras biases are 0 and batch norm starts as the identity, under which dropping a
    bias, a ReLU or a normalization could go unseen; here each of them changes the outputs.
    """
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        # Unit-variance embeddings, kernels scaled by their fan-in: logits of order 1.
        fan_in = np.prod(variable.shape[:-1]) if "kernel" in variable.path else 1
        scale = 0.5 if len(variable.shape) == 1 else 1 / np.sqrt(fan_in)
        values = rng.normal(scale=scale, size=variable.shape)
        if "variance" in variable.path:
            values = rng.uniform(0.5, 2.0, size=variable.shape)
        variable.assign(values.astype(variable.dtype))


@pytest.mark.parametrize("config", MODEL_CONFIGS.values(), ids=MODEL_CONFIGS.keys())
def test_portable_network_computes_the_training_networks_outputs(config):
    """Same weights, same reviews: the stock-layer network and the training network agree,
    on whole reviews and on the trimmed batches of bucketed training and inference."""
    # As seqnet trains it: variable-length where it trains on bucketed batches.
    training = build_model(config, variable_length=buckets_exactly(config))
    _randomize(training)
    fixed = portable_model(training, config, from_training=True)
    any_length = portable_model(training, config, from_training=True, variable_length=True)
    x = _padded_reviews(64, config)
    expected_features = _outputs(training, x, layer="hidden")
    expected = _sigmoid(_outputs(training, x)[:, 0])

    np.testing.assert_allclose(_outputs(fixed, x, "hidden"), expected_features, atol=1e-5)
    np.testing.assert_allclose(_outputs(fixed, x)[:, 0], expected, rtol=0, atol=1e-5)
    batches = bucketed_batches(x, 8, kernel_size=config.kernel_size, step=5)
    assert len({length for _, length in batches}) > 1  # several trimmed lengths
    for rows, length in batches:
        trimmed = x[rows, -length:]
        np.testing.assert_allclose(_outputs(any_length, trimmed)[:, 0], expected[rows], atol=1e-5)
        if buckets_exactly(config):  # the batches it trains on
            trimmed_training = _sigmoid(_outputs(training, trimmed)[:, 0])
            np.testing.assert_allclose(trimmed_training, expected[rows], atol=1e-5)


def _seqnet_01_model(config: ModelConfig) -> keras.Model:
    """The network as seqnet 0.1 saved it: the fused training layer, a sigmoid, Adam."""
    token_ids = keras.Input(shape=(config.sequence_length,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(config.vocabulary_size, config.embedding_dim, name="embedding")(
        token_ids
    )
    x = keras.layers.Dropout(config.dropout_rate, name="embedding_dropout")(x)
    x = MaxPooledConv1D(
        config.filters,
        config.kernel_size,
        activation="relu",
        data_format="channels_last",
        name="convolution",
    )(x)
    x = keras.layers.Dense(config.hidden_units, activation="relu", name="hidden")(x)
    x = keras.layers.Dropout(config.dropout_rate, name="hidden_dropout")(x)
    output = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
    model = keras.Model(token_ids, output, name="imdb_cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    model.optimizer.build(model.trainable_variables)  # saved with its moments, as after training
    return model


def _add_retired_matmul_option(path: Path) -> None:
    """Rewrite a .keras file so its MaxPooledConv1D config carries 0.1's ``"matmul": false``."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "MaxPooledConv1D":
            layer["config"]["matmul"] = False
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_run_folder_without_its_config_is_refused_in_one_line(tmp_path):
    """seqnet 0.1 wrote no config beside the model; 0.3 reads a network's settings from the
    run's config only (never from layer names), so such a folder is refused, saying why. Its
    vocabulary, of tokenizer v1, would be refused too: runs of 0.1 and 0.2 are retrained."""
    model = _seqnet_01_model(TINY_MODEL)
    run = tmp_path / "run-0.1"
    run.mkdir()
    model.save(run / MODEL_FILE)
    _add_retired_matmul_option(run / MODEL_FILE)
    Vocabulary.from_texts(TEXTS, num_words=TINY_MODEL.vocabulary_size).save(run / VOCABULARY_FILE)
    with pytest.raises(FileNotFoundError, match=r"^No config\.json in .*seqnet train"):
        Classifier.load(run)
    # The file itself still opens, with the retired option read and dropped.
    assert isinstance(load_model(run / MODEL_FILE).get_layer("convolution"), MaxPooledConv1D)
