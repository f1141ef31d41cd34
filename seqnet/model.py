"""The lecture's IMDB 1D-CNN, built from Keras 3 layers only (no backend-specific code)."""

from __future__ import annotations

import keras

from seqnet.config import ModelConfig
from seqnet.layers import MatmulConv1D, MaxPooledConv1D

_DEFAULTS = ModelConfig()
# Stated once, so the model is the same under every backend whatever keras.json says.
DATA_FORMAT = "channels_last"


def build_imdb_cnn(
    *,
    vocabulary_size: int = _DEFAULTS.vocabulary_size,
    sequence_length: int = _DEFAULTS.sequence_length,
    embedding_dim: int = _DEFAULTS.embedding_dim,
    filters: int = _DEFAULTS.filters,
    kernel_size: int = _DEFAULTS.kernel_size,
    hidden_units: int = _DEFAULTS.hidden_units,
    dropout_rate: float = _DEFAULTS.dropout_rate,
    learning_rate: float = _DEFAULTS.learning_rate,
    batch_normalization: bool = _DEFAULTS.batch_normalization,
    fuse_pooling: bool = _DEFAULTS.fuse_pooling,
    matmul_convolution: bool = _DEFAULTS.matmul_convolution,
) -> keras.Model:
    """Build and compile the IMDB sentiment CNN; with no arguments, the lecture's network.

    Embedding -> Dropout -> Conv1D(relu) -> GlobalMaxPooling1D -> Dense(relu) -> Dropout ->
    Dense(1, sigmoid), compiled with Adam, binary cross-entropy and accuracy. The default has
    350,751 parameters. Each default is the field of the same name in
    [`ModelConfig`][seqnet.config.ModelConfig].

    Args:
        vocabulary_size: Rows of the embedding table; token ids must lie in
            ``[0, vocabulary_size)``.
        sequence_length: Tokens per (padded) review.
        embedding_dim: Width of each token's embedding vector.
        filters: Output channels of the convolution.
        kernel_size: Tokens each convolution window spans.
        hidden_units: Width of the hidden dense layer.
        dropout_rate: Fraction of units dropped after the embedding and the hidden layer.
        learning_rate: Adam's step size.
        batch_normalization: Add BatchNormalization after the convolution and the hidden layer.
        fuse_pooling: Apply the convolution's bias and ReLU after max-pooling: the same
            outputs, computed faster (one ``MaxPooledConv1D`` layer instead of two).
        matmul_convolution: Compute the convolution as one matrix multiply over the shifted
            windows; the same outputs within float32 rounding.

    Returns:
        A compiled ``keras.Model`` mapping int token ids of shape ``(batch, sequence_length)``
        to the probability of a positive review, shape ``(batch, 1)``.

    Examples:
        >>> model = build_imdb_cnn()
        >>> model.count_params()
        350751
    """
    config = ModelConfig(
        vocabulary_size=vocabulary_size,
        sequence_length=sequence_length,
        embedding_dim=embedding_dim,
        filters=filters,
        kernel_size=kernel_size,
        hidden_units=hidden_units,
        dropout_rate=dropout_rate,
        learning_rate=learning_rate,
        batch_normalization=batch_normalization,
        fuse_pooling=fuse_pooling,
        matmul_convolution=matmul_convolution,
    )
    return build_model(config)


def build_model(config: ModelConfig) -> keras.Model:
    """Build and compile the IMDB CNN described by ``config``."""
    model = _build_network(config)
    compile_model(model, learning_rate=config.learning_rate)
    return model


def compile_model(
    model: keras.Model, *, learning_rate: float, decay_steps: int | None = None
) -> None:
    """Compile with the lecture's optimizer, loss and metric.

    Args:
        model: The network to compile.
        learning_rate: Adam's step size (the initial one, with ``decay_steps``).
        decay_steps: If given, the step size follows a cosine from ``learning_rate`` down to 0
            over this many steps; otherwise it stays constant, as in the lecture.
    """
    if decay_steps is not None:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )


def _build_network(config: ModelConfig) -> keras.Model:
    token_ids = keras.Input(shape=(config.sequence_length,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(config.vocabulary_size, config.embedding_dim, name="embedding")(
        token_ids
    )  # (batch, 400, 50)
    x = keras.layers.Dropout(config.dropout_rate, name="embedding_dropout")(x)
    x = _convolution_and_pooling(config, x)  # (batch, 250)
    x = keras.layers.Dense(config.hidden_units, activation="relu", name="hidden")(x)  # (batch, 250)
    if config.batch_normalization:
        x = keras.layers.BatchNormalization(name="hidden_batch_norm")(x)
    x = keras.layers.Dropout(config.dropout_rate, name="hidden_dropout")(x)
    probability = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)  # (batch, 1)
    return keras.Model(token_ids, probability, name="imdb_cnn")


def _convolution_and_pooling(config: ModelConfig, x):
    """Conv1D(relu) -> [BatchNorm] -> GlobalMaxPooling1D, in the formulation ``config`` asks."""
    settings = {
        "filters": config.filters,
        "kernel_size": config.kernel_size,
        "activation": "relu",
        "padding": "valid",
        "data_format": DATA_FORMAT,
    }
    if config.fuse_pooling:
        layer = MaxPooledConv1D(matmul=config.matmul_convolution, name="convolution", **settings)
        return layer(x)
    convolution = MatmulConv1D if config.matmul_convolution else keras.layers.Conv1D
    x = convolution(name="convolution", **settings)(x)  # (batch, 398, 250)
    if config.batch_normalization:
        x = keras.layers.BatchNormalization(name="convolution_batch_norm")(x)
    return keras.layers.GlobalMaxPooling1D(data_format=DATA_FORMAT, name="max_pooling")(x)


def model_config_of(model: keras.Model) -> ModelConfig:
    """Recover the ``ModelConfig`` of a model built by ``build_model``."""
    embedding = model.get_layer("embedding")
    convolution = model.get_layer("convolution")
    layer_names = {layer.name for layer in model.layers}
    return ModelConfig(
        vocabulary_size=embedding.input_dim,
        sequence_length=model.input_shape[1],
        embedding_dim=embedding.output_dim,
        filters=convolution.filters,
        kernel_size=convolution.kernel_size[0],
        hidden_units=model.get_layer("hidden").units,
        dropout_rate=model.get_layer("hidden_dropout").rate,
        learning_rate=_learning_rate_of(model),
        batch_normalization="hidden_batch_norm" in layer_names,
        fuse_pooling=isinstance(convolution, MaxPooledConv1D),
        matmul_convolution=isinstance(convolution, MatmulConv1D)
        and getattr(convolution, "matmul", True),
    )


def input_limits(model: keras.Model) -> tuple[int, int]:
    """(vocabulary size, sequence length) a model built by ``build_model`` accepts."""
    return model.get_layer("embedding").input_dim, model.input_shape[1]


def _learning_rate_of(model: keras.Model) -> float:
    if model.optimizer is None:
        return _DEFAULTS.learning_rate
    rate = model.optimizer._learning_rate  # the schedule itself, where there is one
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        rate = rate.get_config()["initial_learning_rate"]
    stored = float(keras.ops.convert_to_numpy(rate))
    return float(f"{stored:.7g}")  # undo float32 storage: 0.009999999776 -> 0.01
