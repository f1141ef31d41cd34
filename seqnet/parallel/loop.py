"""seqnet's one hand-written epoch loop, for the engines where Keras' ``fit`` cannot run:
TensorFlow on several workers and PyTorch DDP. Each engine supplies the step; this module
runs the epochs, the callbacks and the history exactly as ``keras.Model.fit`` would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np


def correct_predictions(y, logits):
    """1.0 where the prediction is the label, else 0.0: the model's "accuracy" metric, from a
    training network's logits (one per text for two classes: a logit >= 0 is class 1; else
    one per class: the arg-max)."""
    import keras

    if logits.shape[-1] == 1:
        return keras.metrics.binary_accuracy(y, logits, threshold=0.0)
    return keras.metrics.sparse_categorical_accuracy(y, logits)


def step_through(batches: Iterable, step: Callable, callback_list, model) -> dict:
    """Run ``step`` (returning global sums) on every batch; stop early when a callback asks."""
    totals = np.zeros(3)
    for index, batch in enumerate(batches):
        if callback_list is not None:
            callback_list.on_train_batch_begin(index)
        totals += step(batch)
        if callback_list is not None:
            # The sums are global, so every process sees the same logs and stops alike.
            callback_list.on_train_batch_end(index, mean_logs(totals))
            if model.stop_training:
                break
    return mean_logs(totals)


def mean_logs(totals: np.ndarray) -> dict:
    """Loss and accuracy from (loss sum, correct predictions, samples)."""
    loss_sum, correct, count = (float(value) for value in totals)
    return {"loss": loss_sum / count, "accuracy": correct / count}


def run_epochs(model, steps, train_epoch, evaluate, *, epochs, initial_epoch, callbacks, verbose):
    """The epoch loop of ``keras.Model.fit`` for seqnet's own loops: callbacks and history."""
    import keras

    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history],
        add_progbar=verbose != 0,
        verbose=1 if verbose == "auto" else verbose,
        epochs=epochs,
        steps=steps,
        model=model,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    logs: dict = {}
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        logs = train_epoch(epoch, callback_list)
        if evaluate is not None and not model.stop_training:
            callback_list.on_test_begin()
            logs |= evaluate()
            callback_list.on_test_end(logs)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return history


# --- PyTorch --------------------------------------------------------------------------------
