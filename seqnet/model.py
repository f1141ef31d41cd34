"""Networks from a ``ModelConfig``: an architecture's body and the task's head, Keras layers only.

Every network is ``token ids -> architecture body -> Dense head``: the body maps
``(batch, length)`` int ids to ``(batch, features)``; the head has one sigmoid unit for two
classes (the lecture's) or a softmax over ``num_classes`` units ([`seqnet.task`][seqnet.task]).
The body is chosen by ``ModelConfig.architecture`` from a registry
([`register_architecture`][seqnet.model.register_architecture]): ``"cnn"``, the lecture's
1D-CNN, is built in, and a new architecture is one new class, no edit to seqnet.

Each network has two formulations with the same weights, matched by layer name:

- the **training** network ([`build_model`][seqnet.model.build_model]): the head outputs
  logits, so the cross-entropy is computed from logits, stably and alike on every backend,
  and an architecture may use faster exact layers (the CNN's
  [`MaxPooledConv1D`][seqnet.layers.MaxPooledConv1D] and
  [`BitMaskDropout`][seqnet.layers.BitMaskDropout]);
- the **portable** network ([`portable_model`][seqnet.model.portable_model],
  [`build_imdb_cnn`][seqnet.model.build_imdb_cnn]): stock layers only and probabilities out,
  which any Keras 3 opens without seqnet. This is what ``seqnet train`` saves.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import keras

from seqnet.config import LECTURE_RECIPE, ModelConfig, require_positive
from seqnet.layers import BitMaskDropout, MaxPooledConv1D
from seqnet.table_form import TableForm
from seqnet.task import accuracy_for, loss_for, output_activation, output_units

# Stated once, so the model is the same under every backend whatever keras.json says.
DATA_FORMAT = "channels_last"
# The head's name in each formulation; every other layer has the same name in both.
TRAINING_OUTPUT, PORTABLE_OUTPUT = "logit", "probability"


class Architecture(Protocol):
    """A network body: what ``ModelConfig.architecture`` names.

    Its layers must have the same names and weights whether built for training or not, so
    that [`portable_model`][seqnet.model.portable_model] can copy them across.
    """

    def features(self, config: ModelConfig, token_ids, *, training: bool):
        """``(batch, length)`` int32 token ids -> ``(batch, features)``, from Keras layers;
        ``training`` builds the training formulation (fused layers allowed)."""

    def trim_window(self, config: ModelConfig) -> int | None:
        """Leading padding tokens a batch trimmed on the left must keep for its outputs to
        equal the untrimmed batch's ([`seqnet.buckets`][seqnet.buckets]); None if trimming
        would change them, so that inference never trims."""

    def trains_trimmed(self, config: ModelConfig) -> bool:
        """Whether trimmed training batches train the network as untrimmed ones would."""

    # Optional: ``inference_form(config, model)``, a callable equal to the portable ``model``
    # on int token ids and faster for chunks of up to its ``rows`` texts, or None; without
    # the method, or with None, inference runs the Keras network (LectureCnn has one).


class LectureCnn:
    """The lecture's body: Embedding -> Dropout -> Conv1D(relu) -> GlobalMaxPooling1D ->
    Dense(relu) -> Dropout, with BatchNormalization after the convolution and the hidden
    layer if ``config.batch_normalization``."""

    def features(self, config: ModelConfig, token_ids, *, training: bool):
        embedding = keras.layers.Embedding(
            config.vocabulary_size, config.embedding_dim, name="embedding"
        )
        x = embedding(token_ids)  # (batch, 400, 50)
        dropout = BitMaskDropout if training else keras.layers.Dropout
        x = dropout(config.dropout_rate, name="embedding_dropout")(x)
        if training and config.fuse_pooling:
            x = MaxPooledConv1D(name="convolution", **_convolution_settings(config))(x)
        else:
            x = _stock_convolution_and_pooling(config, x)  # (batch, 250)
        x = keras.layers.Dense(config.hidden_units, activation="relu", name="hidden")(x)
        if config.batch_normalization:
            x = keras.layers.BatchNormalization(name="hidden_batch_norm")(x)
        return dropout(config.dropout_rate, name="hidden_dropout")(x)  # (batch, 250)

    def trim_window(self, config: ModelConfig) -> int:
        # Every window touching a token, and one all-padding window: a max over windows.
        return config.kernel_size

    def trains_trimmed(self, config: ModelConfig) -> bool:
        # Batch statistics would count fewer padding windows than the untrimmed batch's.
        return not config.batch_normalization

    def inference_form(self, config: ModelConfig, model: keras.Model) -> TableForm | None:
        """The exact table form of the portable ``model``
        ([`seqnet.table_form`][seqnet.table_form])."""
        layer = model.get_layer
        return TableForm.of(
            config,
            embedding=layer("embedding").get_weights()[0],
            convolution=layer("convolution").get_weights(),
            hidden=layer("hidden").get_weights(),
            head=layer(PORTABLE_OUTPUT).get_weights(),
        )


_ARCHITECTURES: dict[str, Architecture] = {"cnn": LectureCnn()}


def register_architecture(name: str, architecture: Architecture) -> None:
    """Make ``ModelConfig(architecture=name)`` build ``architecture``'s body.

    Args:
        name: The name configs and saved runs use; ``"cnn"`` is the lecture's and taken.
        architecture: An object with the methods of
            [`Architecture`][seqnet.model.Architecture].

    Examples:
        >>> class MaxOfEmbeddings:
        ...     def features(self, config, token_ids, *, training):
        ...         embedding = keras.layers.Embedding(config.vocabulary_size, 8, name="embedding")
        ...         return keras.layers.GlobalMaxPooling1D(name="pooling")(embedding(token_ids))
        ...     def trim_window(self, config):
        ...         return 1
        ...     def trains_trimmed(self, config):
        ...         return True
        >>> register_architecture("max-of-embeddings", MaxOfEmbeddings())
        >>> build_network(ModelConfig(architecture="max-of-embeddings")).count_params()
        40009
    """
    if name == "cnn":
        raise ValueError("'cnn' is the lecture's architecture; register yours under another name.")
    _ARCHITECTURES[name] = architecture


def architecture_of(config: ModelConfig) -> Architecture:
    """The registered architecture ``config`` names."""
    try:
        return _ARCHITECTURES[config.architecture]
    except KeyError:
        raise ValueError(
            f"No architecture {config.architecture!r} is registered; known: "
            f"{', '.join(sorted(_ARCHITECTURES))}. Register it with "
            f"seqnet.model.register_architecture before building or loading the run."
        ) from None


def build_network(
    config: ModelConfig | None = None, *, training: bool = False, variable_length: bool = False
) -> keras.Model:
    """The uncompiled network for ``config``: the architecture's body and the task's head.

    Args:
        config: The network; by default the lecture's.
        training: Build the training formulation, with a logit output; else the portable one.
        variable_length: Accept batches of any length, not only ``config.sequence_length``.
    """
    config = config or ModelConfig()
    length = None if variable_length else config.sequence_length
    token_ids = keras.Input(shape=(length,), dtype="int32", name="token_ids")
    x = architecture_of(config).features(config, token_ids, training=training)
    units = output_units(config.num_classes)
    if training:
        output = keras.layers.Dense(units, name=TRAINING_OUTPUT)(x)  # (batch, units) logits
    else:
        activation = output_activation(config.num_classes)
        output = keras.layers.Dense(units, activation=activation, name=PORTABLE_OUTPUT)(x)
    return keras.Model(token_ids, output, name=config.architecture)


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
            ``filters=128`` or ``num_classes=4`` (a softmax head); the defaults and their
            meaning are documented there once.

    Returns:
        A compiled ``keras.Model`` mapping int token ids of shape ``(batch, sequence_length)``
        to the probability of a positive review, shape ``(batch, 1)`` (or of each class,
        ``(batch, num_classes)``).

    Examples:
        >>> model = build_imdb_cnn()
        >>> model.count_params()
        350751
        >>> build_imdb_cnn(num_classes=3).output_shape
        (None, 3)
    """
    require_positive("build_imdb_cnn", learning_rate=learning_rate)
    unknown = set(fields) - {field.name for field in dataclasses.fields(ModelConfig)}
    if unknown:
        raise TypeError(
            f"build_imdb_cnn() got unknown hyperparameters {sorted(unknown)}; it takes "
            f"learning_rate and the fields of seqnet.config.ModelConfig."
        )
    config = ModelConfig(**fields)
    model = build_network(config)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss_for(config.num_classes, from_logits=False),
        metrics=[accuracy_for(config.num_classes, from_logits=False)],
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
        config: The network; by default the lecture's.
        learning_rate: Adam's step size, or a Keras learning-rate schedule.
        variable_length: Accept batches of any length, for length-bucketed training
            ([`seqnet.buckets`][seqnet.buckets]).

    Returns:
        A compiled model whose output is the logit of a positive review, shape ``(batch, 1)``,
        or one logit per class; [`portable_model`][seqnet.model.portable_model] turns it into
        probabilities.

    Raises:
        ValueError: If ``variable_length`` is asked of a network that trimmed batches would
            train differently (a batch-normalized one).
    """
    config = config or ModelConfig()
    if variable_length and not architecture_of(config).trains_trimmed(config):
        raise ValueError(
            "This network cannot train on length-bucketed batches: a batch-normalized one "
            "would count fewer padding windows in its batch statistics than the untrimmed "
            "batch's. Build it with variable_length=False; portable_model(variable_length=True) "
            "still trims inference exactly."
        )
    model = build_network(config, training=True, variable_length=variable_length)
    compile_for_training(model, config, learning_rate=learning_rate)
    return model


def compile_for_training(
    model: keras.Model,
    config: ModelConfig,
    *,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
    optimizer: type[keras.optimizers.Optimizer] = keras.optimizers.Adam,
) -> None:
    """Adam (or another ``optimizer`` class), cross-entropy from the logits, and accuracy,
    for a training network."""
    model.compile(
        optimizer=optimizer(learning_rate=learning_rate),
        loss=loss_for(config.num_classes, from_logits=True),
        metrics=[accuracy_for(config.num_classes, from_logits=True)],
    )


def compile_for_evaluation(model: keras.Model, config: ModelConfig, *, logits: bool) -> None:
    """Give an uncompiled model (a portable one, as saved) its loss and accuracy metric.

    Args:
        model: A network of ``config``.
        config: Its config, for the number of classes.
        logits: Whether ``model`` outputs logits (a training network) or probabilities.
    """
    if model.compiled:
        return
    model.compile(
        loss=loss_for(config.num_classes, from_logits=logits),
        metrics=[accuracy_for(config.num_classes, from_logits=logits)],
    )


def portable_model(
    model: keras.Model,
    config: ModelConfig,
    *,
    from_training: bool,
    variable_length: bool = False,
) -> keras.Model:
    """The stock-layer network of ``config`` with ``model``'s weights and probabilities out.

    The result is not compiled, so its ``.keras`` file names no optimizer and opens under any
    backend.

    Args:
        model: A network of ``config`` built by this module, either formulation.
        config: Its config (the run's saved one).
        from_training: Whether ``model`` is the training formulation (logit output).
        variable_length: Accept texts of any length, for trimmed inference
            ([`seqnet.buckets`][seqnet.buckets]); by default the input has the config's.
    """
    portable = build_network(config, variable_length=variable_length)
    source_names = {PORTABLE_OUTPUT: TRAINING_OUTPUT} if from_training else {}
    for layer in portable.layers:
        if layer.weights:
            source = model.get_layer(source_names.get(layer.name, layer.name))
            layer.set_weights(source.get_weights())
    return portable


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
