"""A tiny training run in its own process, for the tests and the kill loop to kill or block.

``python tests/checkpoint_worker.py WORKDIR EPOCHS [--resume] [--hold [EPOCH]] [--cli]`` prints
``started`` once seqnet is imported, then trains ``KILL_RUN`` for EPOCHS epochs into WORKDIR.
With ``--hold`` it prints ``holding`` as epoch EPOCH (by default the first) begins, inside the
workdir's lock, and waits until its standard input closes. With ``--cli`` it trains through
``seqnet train``'s own entry point and exits with its status.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import seqnet.train
from seqnet.checkpoint import CHECKPOINT_FILE, read_checkpoint
from seqnet.config import ModelConfig, TrainConfig

KILL_RUN = TrainConfig(
    data="synthetic",
    epochs=3,
    synthetic_samples=400,
    seed=5,
    model=ModelConfig(
        vocabulary_size=200, sequence_length=60, embedding_dim=16, filters=32, hidden_units=16
    ),
)


def epochs_done(workdir: Path) -> int:
    """The epochs the checkpoint in ``workdir`` holds, 0 without one."""
    try:
        return len(read_checkpoint(workdir)[1]["epochs"])
    except FileNotFoundError:
        return 0


def run_killed_at(workdir: Path, epochs: int, seconds: float, *, check: bool = True) -> str:
    """Train in a new process (resuming the checkpoint in ``workdir`` if there is one) and
    SIGKILL it ``seconds`` after it imported seqnet, unless it is done by then.

    Returns:
        "killed", "done", or "mixed" if the resume was refused as mixed.

    Raises:
        AssertionError: If the process failed otherwise, or was refused with ``check``.
    """
    resume = ["--resume"] if (workdir / CHECKPOINT_FILE).is_file() else []
    command = [sys.executable, __file__, str(workdir), str(epochs), *resume]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "started\n", process.communicate()[1]
    try:
        process.wait(timeout=seconds)  # the random instant; ends early if training does
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
    _, error = process.communicate()
    if process.returncode == -signal.SIGKILL:
        return "killed"
    if process.returncode != 0 and "incomplete or mixed" in error and not check:
        return "mixed"
    assert process.returncode == 0, error
    return "done"


def hold_at_epoch(number: int) -> None:
    """Make epoch ``number`` (from 1) wait for standard input to close before it trains: the
    test's event, not a sleep."""
    real = seqnet.train.train_one_epoch
    calls = []

    def holding(*args, **kwargs):
        calls.append(None)
        if len(calls) == number:
            print("holding", flush=True)
            sys.stdin.read()
        return real(*args, **kwargs)

    seqnet.train.train_one_epoch = holding


def cli_arguments(config: TrainConfig, workdir: Path, *, resume: bool) -> list[str]:
    """``seqnet train``'s arguments for ``config`` (KILL_RUN's fields)."""
    model = config.model
    options = {
        "--data": config.data,
        "--epochs": config.epochs,
        "--synthetic-samples": config.synthetic_samples,
        "--seed": config.seed,
        "--vocabulary-size": model.vocabulary_size,
        "--sequence-length": model.sequence_length,
        "--embedding-dim": model.embedding_dim,
        "--filters": model.filters,
        "--hidden-units": model.hidden_units,
        "--workdir": workdir,
    }
    flags = ["--resume"] if resume else []
    return ["train", "--quiet", *flags, *(str(item) for pair in options.items() for item in pair)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", type=Path)
    parser.add_argument("epochs", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hold", type=int, nargs="?", const=1, default=None)
    parser.add_argument("--cli", action="store_true")
    args = parser.parse_args()
    if args.hold is not None:
        hold_at_epoch(args.hold)
    print("started", flush=True)
    config = replace(KILL_RUN, epochs=args.epochs)
    if args.cli:
        from seqnet import cli

        sys.exit(cli.main(cli_arguments(config, args.workdir, resume=args.resume)))
    seqnet.train.train_and_evaluate(config, args.workdir, resume=args.resume, verbose=0)


if __name__ == "__main__":
    main()
