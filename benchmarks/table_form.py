"""Inference: the lecture CNN's table form against the trimmed Keras forward pass (issue #20).

Run once per backend: ``KERAS_BACKEND=jax python -m benchmarks.table_form [--rounds 30]``.
Side by side in one process, round after round in alternation, for chunks of 1 to 256 texts
at IMDB's lengths: ``Classifier.predict_token_ids`` with the table form taking every chunk,
and with it switched off (every chunk through Keras' compiled predict function). Prints the
median milliseconds of each, their ratio (what ``TABLE_FORM_ROWS`` is chosen from) and the
largest difference between the outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import keras
import numpy as np

from seqnet.config import ModelConfig
from seqnet.model import build_network
from seqnet.predict import Classifier

ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# Texts' lengths in tokens: a short review, IMDB's mean (~230) and the cap.
LENGTHS = (100, 230, 400)


def classifiers(config: ModelConfig) -> tuple[Classifier, Classifier]:
    """One network as a Classifier whose table form takes chunks of any size and one without,
    with random weights (the speed does not depend on them)."""
    network = build_network(config)
    rng = np.random.default_rng(0)
    for weight in network.weights:
        weight.assign(rng.normal(0.0, 0.05, weight.shape).astype("float32"))
    tables, plain = Classifier(network, None, config), Classifier(network, None, config)
    tables._inference_form = dataclasses.replace(tables._inference_form, rows=max(ROWS))
    plain._inference_form = None
    return tables, plain


def texts_of(rows: int, length: int, config: ModelConfig) -> np.ndarray:
    """``rows`` texts of ``length`` random word ids, padded in front as seqnet pads."""
    rng = np.random.default_rng(rows * 1000 + length)
    ids = np.zeros((rows, config.sequence_length), dtype=np.int32)
    ids[:, -length:] = rng.integers(2, config.vocabulary_size, (rows, length))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds
    config = ModelConfig()
    tables, plain = classifiers(config)
    plain.compile_shapes(max(ROWS))
    print(f"backend {keras.backend.backend()}, {rounds} rounds, milliseconds per call")
    print(f"{'texts':>5} {'tokens':>6} {'keras':>8} {'table':>8} {'x keras':>8} {'max diff':>9}")
    for rows in ROWS:
        for length in LENGTHS:
            ids = texts_of(rows, length, config)
            seconds = {"keras": [], "table": []}
            for _ in range(rounds):
                for name, classifier in (("keras", plain), ("table", tables)):
                    started = time.perf_counter()
                    classifier.predict_token_ids(ids, batch_size=max(ROWS))
                    seconds[name].append(time.perf_counter() - started)
            ratio = statistics.median(k / t for k, t in zip(*seconds.values(), strict=True))
            difference = np.abs(
                tables.predict_token_ids(ids, batch_size=max(ROWS))
                - plain.predict_token_ids(ids, batch_size=max(ROWS))
            ).max()
            keras_ms, table_ms = (1e3 * statistics.median(seconds[name]) for name in seconds)
            print(
                f"{rows:>5} {length:>6} {keras_ms:>8.3f} {table_ms:>8.3f} {ratio:>8.2f} "
                f"{difference:>9.1e}"
            )


if __name__ == "__main__":
    main()
