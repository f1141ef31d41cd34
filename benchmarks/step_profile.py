"""Where seqnet's training step goes: each piece's cost, measured by taking it away (issue #20).

Run once per backend: ``KERAS_BACKEND=jax python -m benchmarks.step_profile [--rounds 5]``;
``nox -s bench`` runs it too (``test_step_profile``) and its report has the table.

A ladder of real steps, each one ``keras.Model.fit`` epoch over the same synthetic reviews
(the path ``seqnet train`` takes), every rung keeping what the rungs above removed:

1. seqnet's training step, as the default recipe runs it;
2. plain SGD for Adam: what Adam's two moment estimates add;
3. no dropout: what drawing its random masks costs;
4. the embedding frozen: its gradient (a scatter-add of one row per token) and update;
5. the convolution frozen too: the convolution's backward (over the arg-max windows);
6. a forward pass and the loss only (``evaluate``): what is left of backward and update;
7. the same at the convolution's smallest length (``kernel_size`` tokens): the forward
   pass's arithmetic at full length is the difference; what remains is Keras' per-step
   work (its loop, batching the arrays, launching the step) and the dense layers' forward.

Rungs are timed side by side, round by round, and each rung's best round is kept:
TensorFlow's ``fit`` alternates between two speeds from round to round (10 and 20 ms for the
same rung on 2 cores), which makes medians of a few rounds jump between the two. Each piece is
the difference between the best times of neighbouring rungs, so the pieces sum to the step.
Each piece comes with its noise: the gaps between the two best rounds of the two rungs it is
the difference of, added. A piece no larger than its noise is reported as within noise, not
as a share of the step: it can come out negative. Pieces also interact (taking one away can
change another's cost), so a piece is what removing it saves, in this order.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from benchmarks.report import piece_cell
from seqnet.config import LECTURE_RECIPE, ModelConfig
from seqnet.data import make_synthetic
from seqnet.model import build_model, compile_for_training
from seqnet.parallel import ReplicaLayout, keras_fit


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: the network, optimizer and call it times."""

    name: str  # what this rung took away from the one above
    optimizer: str = "adam"
    dropout: bool = True
    frozen: tuple[str, ...] = ()  # layers made untrainable
    train: bool = True  # fit; else evaluate (forward and loss only)
    shortest: bool = False  # kernel_size tokens per review instead of the full length


RUNGS = (
    Rung("seqnet's step"),
    Rung("Adam's moments", optimizer="sgd"),
    Rung("dropout's masks", optimizer="sgd", dropout=False),
    Rung("embedding's gradient", optimizer="sgd", dropout=False, frozen=("embedding",)),
    Rung(
        "convolution's backward",
        optimizer="sgd",
        dropout=False,
        frozen=("embedding", "convolution"),
    ),
    Rung("dense layers' backward", dropout=False, train=False),
    Rung("forward pass at full length", dropout=False, train=False, shortest=True),
)
# What the last rung's time is made of.
REMAINDER = "Keras' per-step work"


def rung_model(rung: Rung, config: ModelConfig) -> keras.Model:
    """seqnet's training network for ``config``, compiled as ``rung`` says."""
    keras.utils.set_random_seed(0)
    network = config if rung.dropout else dataclasses.replace(config, dropout_rate=0.0)
    model = build_model(network, variable_length=True)
    for name in rung.frozen:
        model.get_layer(name).trainable = False
    optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[rung.optimizer]
    compile_for_training(
        model, config, learning_rate=LECTURE_RECIPE["learning_rate"], optimizer=optimizer
    )
    return model


def rung_call(
    rung: Rung, config: ModelConfig, batch_size: int, reviews: tuple[np.ndarray, np.ndarray]
) -> Callable[[], None]:
    """A function running one epoch of ``rung`` over the synthetic ``reviews`` (x, y)."""
    model = rung_model(rung, config)
    x, y = rung_inputs(rung, config, reviews)
    if rung.train:
        return lambda: keras_fit(
            ReplicaLayout(), model, x, y, batch_size=batch_size, epochs=1, verbose=0
        )
    return lambda: model.evaluate(x, y, batch_size=batch_size, verbose=0)


def rung_inputs(
    rung: Rung, config: ModelConfig, reviews: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``reviews`` (x, y), cut to their last ``kernel_size`` tokens for the shortest rung."""
    x, y = reviews
    return (x[:, -config.kernel_size :] if rung.shortest else x), y


def step_profile(
    config: ModelConfig | None = None, *, batch_size: int = 32, samples: int = 1024, rounds: int = 5
) -> dict:
    """Milliseconds per step of every rung and of every piece, timed side by side.

    Args:
        config: The network; by default the lecture's, at its full length.
        batch_size: Reviews per step.
        samples: Reviews per timed epoch (``samples // batch_size`` steps).
        rounds: Timed rounds, each running every rung once, after one warm-up epoch each;
            at least 2, since a piece's noise is read from the two best.

    Returns:
        ``rungs`` and ``pieces``: name -> milliseconds per step (a rung's best round);
        ``noise``: piece name -> its noise in milliseconds; ``step_ms`` (the first rung's),
        the batch size, length and rounds.
    """
    if rounds < 2:
        raise ValueError(f"step_profile needs at least 2 rounds to tell noise, not {rounds}")
    config = config or ModelConfig()
    data = make_synthetic(
        num_words=config.vocabulary_size, maxlen=config.sequence_length, samples=samples
    )
    reviews = (data.x_train, data.y_train)  # the same reviews for every rung
    calls = {rung.name: rung_call(rung, config, batch_size, reviews) for rung in RUNGS}
    for call in calls.values():
        call()  # compiles every shape, not timed
    steps = -(-samples // batch_size)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - started) / steps * 1e3)
    rungs = {name: min(values) for name, values in times.items()}
    return {
        "batch_size": batch_size,
        "tokens": config.sequence_length,
        "rounds": rounds,
        "step_ms": rungs[RUNGS[0].name],
        "rungs": rungs,
        "pieces": pieces(rungs),
        "noise": noise(times),
    }


def pieces(rungs: dict[str, float]) -> dict[str, float]:
    """Each rung's time saved against the rung above it, and the last rung's own time as
    the remainder: they sum to the first rung's time."""
    return _by_piece(rungs, operator.sub)


def noise(times: dict[str, list[float]]) -> dict[str, float]:
    """Each piece's noise, named as in ``pieces``: the gap between the two best rounds of
    each rung it is the difference of, added."""
    gaps = {}
    for name, values in times.items():
        best, second = sorted(values)[:2]
        gaps[name] = second - best
    return _by_piece(gaps, operator.add)


def _by_piece(per_rung: dict[str, float], combine: Callable[[float, float], float]) -> dict:
    """``combine(above, below)`` of neighbouring rungs' values, named by the rung that no
    longer has the piece, and the last rung's own value as the remainder."""
    names = list(per_rung)
    pairs = itertools.pairwise(names)
    result = {below: combine(per_rung[above], per_rung[below]) for above, below in pairs}
    return {**result, REMAINDER: per_rung[names[-1]]}


def markdown_rows(profile: dict) -> list[str]:
    """``| piece | ms ± noise (share of the step) |`` rows, the step itself last."""
    rows = [f"| {name} | {piece_cell(profile, name)} |" for name in profile["pieces"]]
    return [*rows, f"| **the whole step** | **{profile['step_ms']:.2f}** |"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_profile", description=__doc__)
    parser.add_argument(
        "--rounds", type=int, default=5, help="side-by-side rounds, at least 2 (default 5)"
    )
    parser.add_argument("--samples", type=int, default=1024, help="reviews per timed epoch")
    parser.add_argument(
        "--lengths", default="400,250", help="tokens per review, comma-separated (default 400,250)"
    )
    args = parser.parse_args(argv)
    for length in (int(text) for text in args.lengths.split(",")):
        config = ModelConfig(sequence_length=length)
        profile = step_profile(config, samples=args.samples, rounds=args.rounds)
        print(
            f"\n{keras.backend.backend()}, batch {profile['batch_size']} x {length} tokens, "
            f"best of {args.rounds} rounds:"
        )
        print("| piece (what taking it away saves) | ms per step ± noise (share) |\n|---|---|")
        print("\n".join(markdown_rows(profile)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
