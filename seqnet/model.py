"""The lecture's IMDB 1D-CNN, built from Keras 3 layers only (no backend-specific code).

Two formulations of one network, with the same weights:

- the **training** network ([`build_model`][seqnet.model.build_model]): the convolution fused
  with its max-pooling ([`MaxPooledConv1D`][seqnet.layers.MaxPooledConv1D]) and a logit output,
  so binary cross-entropy is computed from logits, stably and alike on every backend;
- the **portable** network ([`portable_model`][seqnet.model.portable_model],
  [`build_imdb_cnn`][seqnet.model.build_imdb_cnn]): the lecture's stock layers with a sigmoid
  output, which any Keras 3 opens without seqnet. This is what ``seqnet train`` saves.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from seqnet.buckets import buckets_exactly
from seqnet.config import LECTURE_RECIPE, ModelConfig, require_positive
from seqnet.layers import MaxPooledConv1D

# Stated once, so the model is the same under every backend whatever keras.json says.
DATA_FORMAT = "channels_last"
# The training network outputs logits: p >= 0.5 exactly where the logit >= 0.
ACCURACY_THRESHOLD = 0.0
# The output layer's name in each formulation; every other layer has the same name in both.
TRAINING_OUTPUT, PORTABLE_OUTPUT = "logit", "probability"


def build_imdb_cnn(
    *, learning_rate: float = LECTURE_RECIPE["learning_rate"], **fields: Any
) -> keras.Model:
    """Build and compile the lecture's IMDB sentiment CNN from stock Keras layers.

    Embedding -> Dropout -> Conv1D(relu) -> GlobalMaxPooling1D -> Dense(relu) -> Dropout ->
    Dense(1, sigmoid), compiled as in the lecture: Adam (1e-3), binary cross-entropy and
    accuracy. With no arguments it has 350,751 parameters.

    Args:
        learning_rate: Adam's step size; the lecture's by default.
        **fields: Any [`ModelConfig`][seqnet.config.ModelConfig] field, e.g.
            ``filters=128``; the defaults and their meaning are documented there once.

    Returns:
        A compiled ``keras.Model`` mapping int token ids of shape ``(batch, sequence_length)``
        to the probability of a positive review, shape ``(batch, 1)``.

    Examples:
        >>> model = build_imdb_cnn()
        >>> model.count_params()
        350751
    """
    require_positive("build_imdb_cnn", learning_rate=learning_rate)
    unknown = set(fields) - {field.name for field in dataclasses.fields(ModelConfig)}
    if unknown:
        raise TypeError(
            f"build_imdb_cnn() got unknown hyperparameters {sorted(unknown)}; it takes "
            f"learning_rate and the fields of seqnet.config.ModelConfig."
        )
    model = _build_network(ModelConfig(**fields), training=False)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def build_model(
    config: ModelConfig | None = None,
    *,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = LECTURE_RECIPE[
        "learning_rate"
    ],
    variable_length: bool = False,
) -> keras.Model:
    """Build the training network for ``config`` and compile it to train from logits.

    Args:
        config: The architecture; by default the lecture's.
        learning_rate: Adam's step size, or a Keras learning-rate schedule.
        variable_length: Accept batches of any length, not only ``config.sequence_length``,
            for length-bucketed training ([`seqnet.buckets`][seqnet.buckets]).

    Returns:
        A compiled model whose output is the logit of a positive review, shape ``(batch, 1)``;
        [`portable_model`][seqnet.model.portable_model] turns it into probabilities.

    Raises:
        ValueError: If ``variable_length`` is asked of a batch-normalized network, which
            bucketed batches would train with other statistics
            ([`buckets_exactly`][seqnet.buckets.buckets_exactly]).
    """
    config = config or ModelConfig()
    if variable_length and not buckets_exactly(config):
        raise ValueError(
            "A batch-normalized network cannot train on length-bucketed batches: its batch "
            "statistics would count fewer padding windows than the untrimmed batch's. Build it "
            "with variable_length=False; portable_model(variable_length=True) still trims "
            "inference exactly."
        )
    model = _build_network(config, training=True, variable_length=variable_length)
    compile_for_training(model, learning_rate=learning_rate)
    return model


def compile_for_training(
    model: keras.Model,
    *,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
) -> None:
    """Adam, binary cross-entropy from the logits, and accuracy, for a training network."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=ACCURACY_THRESHOLD)],
    )


def compile_for_evaluation(model: keras.Model) -> None:
    """Give an uncompiled model (a portable one, as saved) its loss and accuracy metric."""
    if model.compiled:
        return
    logits = outputs_logits(model)
    model.compile(
        loss=keras.losses.BinaryCrossentropy(from_logits=logits),
        metrics=[
            keras.metrics.BinaryAccuracy(
                name="accuracy", threshold=ACCURACY_THRESHOLD if logits else 0.5
            )
        ],
    )


def portable_model(
    model: keras.Model, *, sequence_length: int | None = None, variable_length: bool = False
) -> keras.Model:
    """The lecture's stock-layer network with ``model``'s weights and a sigmoid output.

    Accepts a training network or an already portable one. The result is not compiled, so
    its ``.keras`` file names no optimizer and opens under any backend.

    Args:
        model: A network built by this module, either formulation.
        sequence_length: The length of a variable-length ``model``'s config; a fixed-length
            model's own wins.
        variable_length: Accept reviews of any length, for trimmed inference
            ([`seqnet.buckets`][seqnet.buckets]); by default the input has the config's.
    """
    config = model_config_of(model, sequence_length)
    portable = _build_network(config, training=False, variable_length=variable_length)
    source_names = {PORTABLE_OUTPUT: TRAINING_OUTPUT} if outputs_logits(model) else {}
    for layer in portable.layers:
        if layer.weights:
            source = model.get_layer(source_names.get(layer.name, layer.name))
            layer.set_weights(source.get_weights())
    return portable


def _has_layer(model: keras.Model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


def outputs_logits(model: keras.Model) -> bool:
    """Whether ``model`` is a training network (logit output) rather than a portable one."""
    return _has_layer(model, TRAINING_OUTPUT)


def _build_network(
    config: ModelConfig, *, training: bool, variable_length: bool = False
) -> keras.Model:
    length = None if variable_length else config.sequence_length
    token_ids = keras.Input(shape=(length,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(config.vocabulary_size, config.embedding_dim, name="embedding")(
        token_ids
    )  # (batch, 400, 50)
    x = keras.layers.Dropout(config.dropout_rate, name="embedding_dropout")(x)
    if training and config.fuse_pooling:
        x = MaxPooledConv1D(name="convolution", **_convolution_settings(config))(x)
    else:
        x = _stock_convolution_and_pooling(config, x)  # (batch, 250)
    x = keras.layers.Dense(config.hidden_units, activation="relu", name="hidden")(x)  # (batch, 250)
    if config.batch_normalization:
        x = keras.layers.BatchNormalization(name="hidden_batch_norm")(x)
    x = keras.layers.Dropout(config.dropout_rate, name="hidden_dropout")(x)
    if training:
        output = keras.layers.Dense(1, name=TRAINING_OUTPUT)(x)  # (batch, 1) logits
    else:
        output = keras.layers.Dense(1, activation="sigmoid", name=PORTABLE_OUTPUT)(x)
    return keras.Model(token_ids, output, name="imdb_cnn")


def _convolution_settings(config: ModelConfig) -> dict[str, Any]:
    return {
        "filters": config.filters,
        "kernel_size": config.kernel_size,
        "activation": "relu",
        "padding": "valid",
        "data_format": DATA_FORMAT,
    }


def _stock_convolution_and_pooling(config: ModelConfig, x):
    """Conv1D(relu) -> [BatchNorm] -> GlobalMaxPooling1D, the lecture's own layers."""
    x = keras.layers.Conv1D(name="convolution", **_convolution_settings(config))(x)
    if config.batch_normalization:
        x = keras.layers.BatchNormalization(name="convolution_batch_norm")(x)  # (batch, 398, 250)
    return keras.layers.GlobalMaxPooling1D(data_format=DATA_FORMAT, name="max_pooling")(x)


def model_config_of(model: keras.Model, sequence_length: int | None = None) -> ModelConfig:
    """Recover the ``ModelConfig`` of a model built by this module (either formulation).

    A variable-length training network does not know the length its reviews were padded
    to; pass it as ``sequence_length`` (its config's). A fixed-length model's own wins.
    """
    length = model.input_shape[1] or sequence_length
    if length is None:
        raise ValueError(
            "This model accepts reviews of any length; pass the sequence_length of its "
            "ModelConfig to recover its configuration."
        )
    embedding = model.get_layer("embedding")
    convolution = model.get_layer("convolution")
    return ModelConfig(
        vocabulary_size=embedding.input_dim,
        sequence_length=length,
        embedding_dim=embedding.output_dim,
        filters=convolution.filters,
        kernel_size=convolution.kernel_size[0],
        hidden_units=model.get_layer("hidden").units,
        dropout_rate=model.get_layer("hidden_dropout").rate,
        batch_normalization=_has_layer(model, "hidden_batch_norm"),
    )


def input_limits(model: keras.Model) -> tuple[int, int | None]:
    """(vocabulary size, sequence length) a model built by this module accepts; the length
    is None for a variable-length training network, which accepts any."""
    return model.get_layer("embedding").input_dim, model.input_shape[1]
