"""The ``seqnet`` command: train, evaluate and predict with the backend named by KERAS_BACKEND."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

DEFAULT_WORKDIR = "runs/imdb-cnn"
DATA_HELP = (
    "'synthetic' (built in, offline), 'keras' (keras.datasets.imdb, downloads once), a path to "
    "aclImdb_v1.tar.gz or an extracted aclImdb/ folder, or an .npz file with integer arrays "
    "x_train, y_train, x_test, y_test"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqnet",
        description="The lecture's IMDB sentiment CNN on Keras 3. The backend is chosen by the "
        "KERAS_BACKEND environment variable (tensorflow, jax or torch).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_bench(commands)
    _add_serve(commands)
    return parser


def _add_workdir(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(DEFAULT_WORKDIR),
        help=f"run folder to {verb} model.keras, vocabulary.json, metrics.json and history.png "
        f"(default: {DEFAULT_WORKDIR})",
    )


def _add_train(commands) -> None:
    from seqnet.config import (
        DISTRIBUTE_STRATEGIES,
        LEARNING_RATE_SCHEDULES,
        ModelConfig,
        TrainConfig,
    )

    defaults, model = TrainConfig(), ModelConfig()
    train = commands.add_parser(
        "train",
        help="train the CNN and write a run folder",
        description="Train the lecture's CNN (Adam, binary cross-entropy; the test split is the "
        "validation data) and write the model, vocabulary, metrics JSON and a loss/accuracy plot.",
    )
    train.add_argument("--data", default=defaults.data, help=f"data source: {DATA_HELP}")
    train.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"passes over the data (default: {defaults.epochs})",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="reviews per gradient step in total over all devices: the global batch; with "
        "--distribute data-parallel each device takes batch-size / devices, so it must divide "
        f"evenly (default: {defaults.batch_size})",
    )
    train.add_argument(
        "--seed", type=int, default=defaults.seed, help="seed for weights, dropout and shuffling"
    )
    train.add_argument(
        "--learning-rate", type=float, default=model.learning_rate, help="Adam's step size"
    )
    train.add_argument(
        "--learning-rate-schedule",
        choices=LEARNING_RATE_SCHEDULES,
        default=defaults.learning_rate_schedule,
        help="'constant' is the lecture's Adam; 'cosine' anneals the step size to 0 over the "
        f"run (default: {defaults.learning_rate_schedule})",
    )
    train.add_argument(
        "--batch-normalization",
        action="store_true",
        help="add BatchNormalization after the convolution and the hidden layer",
    )
    train.add_argument(
        "--synthetic-samples",
        type=int,
        default=defaults.synthetic_samples,
        help="reviews per split for --data synthetic",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --workdir from its last checkpoint, with the "
        "settings it was started with (other options are then ignored, except --epochs and "
        "--distribute)",
    )
    train.add_argument(
        "--distribute",
        choices=DISTRIBUTE_STRATEGIES,
        default=defaults.distribute,
        help="'none': train on one device; 'data-parallel': a model copy on every device "
        "(JAX: all its devices; TensorFlow: all GPUs, else the CPU; PyTorch: one process per "
        "device, started by torchrun), each step's --batch-size reviews split evenly between "
        "them, the gradients averaged; only process 0 writes the run folder. Several hosts: "
        f"see docs/scaling.md (default: {defaults.distribute})",
    )
    _add_workdir(train, "write")


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="report a trained model's test loss and accuracy",
        description="Evaluate a trained run folder on the test split of a data source.",
    )
    evaluate.add_argument(
        "--data",
        default=None,
        help=f"data source (default: the one the run was trained on): {DATA_HELP}",
    )
    evaluate.add_argument("--batch-size", type=int, default=256, help="reviews per batch")
    _add_workdir(evaluate, "read")


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="classify review texts",
        description="Print the probability that each review is positive, and its label. Texts "
        "come from the arguments, from --file (one review per line), or from standard input.",
    )
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="review text(s) to classify")
    predict.add_argument(
        "--file", type=Path, help="read one review per line from this file ('-' for stdin)"
    )
    predict.add_argument("--json", action="store_true", help="print one JSON object per review")
    _add_workdir(predict, "read")


def _add_bench(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="benchmark the current backend on every visible device",
        description="Measure training and inference throughput, single-review latency, achieved "
        "GFLOP/s against a matmul peak, and native-framework baselines, for the backend named "
        "by KERAS_BACKEND. `nox -s bench` runs this for every backend and merges the reports.",
    )
    bench.add_argument("--full", action="store_true", help="measure longer (more rounds, samples)")
    bench.add_argument(
        "--output",
        type=Path,
        default=Path("bench-results") / "cli",
        help="folder for report.json, report.md and report.png (default: bench-results/cli)",
    )


def _add_serve(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="classify reviews over HTTP, with a web page",
        description='Serve a trained run folder: POST /predict with {"texts": [...]}, '
        "GET /health, and a web page at /. Needs pip install 'seqnet[serve]'.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, local only)"
    )
    serve.add_argument("--port", type=_port, default=8000, help="TCP port (default: 8000)")
    serve.add_argument(
        "--max-wait-ms",
        type=float,
        default=2.0,
        help="how long a batch of requests waits for more before the model call, 0 to 5 ms "
        "(default: 2)",
    )
    _add_workdir(serve, "read")


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 1 to 65535, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ logs quiet
    commands = {
        "train": run_train,
        "evaluate": run_evaluate,
        "predict": run_predict,
        "bench": run_bench,
        "serve": run_serve,
    }
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError, ConnectionError) as error:
        print(f"seqnet {args.command}: error: {error}", file=sys.stderr)
        return 2


def run_train(args: argparse.Namespace) -> int:
    import keras

    from seqnet.config import ModelConfig, TrainConfig
    from seqnet.saving import checkpointed_config
    from seqnet.train import train_and_evaluate

    if args.resume:
        saved = checkpointed_config(args.workdir)
        config = replace(saved, epochs=args.epochs or saved.epochs, distribute=args.distribute)
        print(f"Resuming the run in {args.workdir} with its saved settings.")
    else:
        config = TrainConfig(
            data=args.data,
            epochs=args.epochs or TrainConfig().epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            synthetic_samples=args.synthetic_samples,
            learning_rate_schedule=args.learning_rate_schedule,
            distribute=args.distribute,
            model=ModelConfig(
                learning_rate=args.learning_rate,
                batch_normalization=args.batch_normalization,
                # BatchNorm sits between convolution and pooling, so they cannot be fused.
                fuse_pooling=not args.batch_normalization,
            ),
        )
    print(f"Training on {config.data} with the {keras.backend.backend()} backend.")
    metrics = train_and_evaluate(config, args.workdir, resume=args.resume)
    if metrics["distribution"]["process_index"] == 0:  # the other processes wrote nothing
        print(
            f"Test accuracy {metrics['test_accuracy']:.4f}, "
            f"{metrics['seconds_per_epoch']:.1f} s per epoch. Run written to {args.workdir}/"
        )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from seqnet.train import evaluate_run

    results = evaluate_run(args.workdir, data=args.data, batch_size=args.batch_size)
    print(json.dumps(results, indent=2))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from seqnet.predict import Classifier

    texts = _read_texts(args)
    if not texts:
        raise ValueError("no review text given: pass TEXT arguments, --file, or pipe text in.")
    for prediction in Classifier.load(args.workdir).predict(texts):
        if args.json:
            print(json.dumps(prediction.to_json(), ensure_ascii=False))
        else:
            print(
                f"{prediction.probability:.4f}  {prediction.label:8}  {_shorten(prediction.text)}"
            )
    return 0


def run_bench(args: argparse.Namespace) -> int:
    import keras

    from seqnet.bench import BenchConfig, run_benchmarks
    from seqnet.report import build_report, markdown_table, write_report

    config = BenchConfig.full() if args.full else BenchConfig()
    records = run_benchmarks(config, progress=lambda message: print(message, flush=True))
    report = build_report(records, expected_backends=[keras.backend.backend()])
    write_report(report, args.output)
    print(markdown_table(report))
    print(f"Written: {args.output}/report.json, report.md, report.png")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    if not 0 <= args.max_wait_ms <= 5:
        raise ValueError(f"--max-wait-ms must be from 0 to 5, got {args.max_wait_ms}.")
    try:
        from seqnet.serve import serve
    except ModuleNotFoundError as error:  # the serve extra is missing
        print(f"seqnet serve: error: {error}", file=sys.stderr)
        return 1
    return serve(args.workdir, host=args.host, port=args.port, max_wait=args.max_wait_ms / 1000)


def _read_texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.texts)
    if args.file is not None:
        stream = sys.stdin if str(args.file) == "-" else None
        lines = stream.read() if stream else _read_text_file(args.file)
        texts += [line for line in lines.splitlines() if line.strip()]
    elif not texts and not sys.stdin.isatty():
        texts = [line for line in sys.stdin.read().splitlines() if line.strip()]
    return texts


def _read_text_file(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"No text file at {path}.")
    return path.read_text(encoding="utf-8", errors="replace")


def _shorten(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
