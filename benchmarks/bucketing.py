"""Length bucketing against fixed-length batches on the real IMDB data (issue #12).

Run once per backend: ``KERAS_BACKEND=jax python -m benchmarks.bucketing PATH [--json OUT]``.
Two training networks from the same seed, one fed fixed 400-token batches and one length
bucketed batches, train epoch by epoch in alternation (the order flips every epoch), each with
the default recipe (``TrainConfig()``'s batch, warm-up, peak and epochs).
Epoch 1 includes each shape's compilation; later epochs do not. Test accuracy after epochs 1
and 2; then the validation pass on the test split, fixed vs bucketed, in alternating rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import keras
import numpy as np

from seqnet.buckets import BucketedBatches, bucketed_batches, fit_input
from seqnet.config import ModelConfig, TrainConfig
from seqnet.data import read_dataset
from seqnet.model import build_model

RECIPE = TrainConfig()
BATCH, PEAK, EPOCHS = RECIPE.batch_size, RECIPE.learning_rate, RECIPE.epochs
WARMUP_EPOCHS, SEED = RECIPE.warmup_epochs, RECIPE.seed


def build(variable_length: bool, steps_per_epoch: int) -> keras.Model:
    """The fused training network with the fast recipe's schedule, seeded alike."""
    keras.utils.set_random_seed(SEED)
    total, warm = EPOCHS * steps_per_epoch, round(WARMUP_EPOCHS * steps_per_epoch)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, total - warm, warmup_target=PEAK, warmup_steps=warm
    )
    return build_model(ModelConfig(), learning_rate=schedule, variable_length=variable_length)


def train_epoch(model, x, y, epoch: int, bucketed: bool) -> float:
    """Seconds for one epoch in the (seed, epoch) order, fixed or bucketed."""
    rng = np.random.default_rng([SEED, epoch])
    started = time.perf_counter()
    if bucketed:
        batches = bucketed_batches(x, BATCH, kernel_size=3, rng=rng)
        model.fit(fit_input(BucketedBatches(x, y, batches)), shuffle=False, verbose=0)
    else:
        order = rng.permutation(len(x))
        model.fit(x[order], y[order], batch_size=BATCH, shuffle=False, verbose=0)
    return time.perf_counter() - started


def evaluate(model, x, y, bucketed: bool) -> tuple[float, float]:
    """(seconds, accuracy) of the validation pass at the recipe's batch, fixed or trimmed."""
    started = time.perf_counter()
    if bucketed:
        data = fit_input(BucketedBatches(x, y, bucketed_batches(x, BATCH, kernel_size=3)))
        results = model.evaluate(data, verbose=0, return_dict=True)
    else:
        results = model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    return time.perf_counter() - started, float(results["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (accuracy: 1, 2)")
    parser.add_argument("--eval-rounds", type=int, default=3)
    parser.add_argument("--train-samples", type=int, help="time on a random subset")
    parser.add_argument("--test-samples", type=int, help="evaluate on a random subset")
    parser.add_argument("--json")
    args = parser.parse_args()
    data = read_dataset(args.data, verbose=False)
    x, y = subset(data.x_train, data.y_train, args.train_samples)
    x_test, y_test = subset(data.x_test, data.y_test, args.test_samples)
    models = {False: build(False, -(-len(x) // BATCH)), True: build(True, -(-len(x) // BATCH))}
    report = {"backend": keras.backend.backend(), "epochs": [], "eval": []}
    for epoch in range(args.epochs):
        row = {"epoch": epoch + 1}
        for bucketed in (False, True) if epoch % 2 == 0 else (True, False):
            row[f"seconds_{'bucketed' if bucketed else 'fixed'}"] = train_epoch(
                models[bucketed], x, y, epoch, bucketed
            )
        if epoch < EPOCHS:
            for bucketed, name in ((False, "fixed"), (True, "bucketed")):
                seconds, accuracy = evaluate(models[bucketed], x_test, y_test, bucketed)
                row[f"accuracy_{name}"] = accuracy
                row[f"eval_seconds_{name}"] = seconds  # epoch 1: includes compilation
        print(json.dumps(row), flush=True)
        report["epochs"].append(row)
    for _ in range(args.eval_rounds):  # the bucketed model, evaluated both ways
        fixed, fixed_accuracy = evaluate(models[True], x_test, y_test, False)
        bucket, bucket_accuracy = evaluate(models[True], x_test, y_test, True)
        report["eval"].append([fixed, bucket, fixed_accuracy, bucket_accuracy])
        print(json.dumps(report["eval"][-1]), flush=True)
    summarize(report)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)


def subset(x, y, samples: int | None):
    """``samples`` rows drawn at random (the length distribution kept), or all."""
    rows = np.random.default_rng(12).permutation(len(x))[:samples]
    return (x[rows], y[rows]) if samples else (x, y)


def summarize(report: dict) -> None:
    """Print the medians: steady epochs (after the first), compile overhead, eval."""
    steady = report["epochs"][1:]
    fixed = statistics.median(r["seconds_fixed"] for r in steady)
    bucket = statistics.median(r["seconds_bucketed"] for r in steady)
    first = report["epochs"][0]
    evals = report["eval"]
    eval_fixed = statistics.median(e[0] for e in evals)
    eval_bucket = statistics.median(e[1] for e in evals)
    print(
        f"{report['backend']}: epoch fixed {fixed:.1f} s, bucketed {bucket:.1f} s "
        f"({fixed / bucket:.2f}x); first epoch fixed {first['seconds_fixed']:.1f} s, "
        f"bucketed {first['seconds_bucketed']:.1f} s; eval fixed {eval_fixed:.1f} s, "
        f"bucketed {eval_bucket:.1f} s ({eval_fixed / eval_bucket:.2f}x)"
    )


if __name__ == "__main__":
    main()
