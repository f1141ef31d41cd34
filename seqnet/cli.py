"""The ``seqnet`` command: train, evaluate, predict, export and serve, under KERAS_BACKEND."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import threading
import warnings
from dataclasses import replace
from pathlib import Path

from seqnet import __version__
from seqnet.config import (
    DATA_SOURCES_HELP,
    DECISION_THRESHOLD,
    INFERENCE_BATCH_SIZE,
    ServeLimits,
    check_threshold,
)

DEFAULT_WORKDIR = "runs/imdb-cnn"
# The commands that compile a model: under JAX they reuse compiled steps across processes.
RUNS_A_MODEL = frozenset({"train", "evaluate", "predict", "serve"})
# What a command stopped by Ctrl-C or SIGTERM leaves, said in its one line.
AFTER_A_STOP = {
    "train": "Its last finished epoch is checkpointed: --resume continues from there.",
    "export": "The output is as it was.",
}
# TensorFlow's C++ start-up notices, written while it is imported and before its logging reads
# TF_CPP_MIN_LOG_LEVEL (abseil writes every message until it is initialized).
START_UP_NOTICES = ("All log messages before absl::InitializeLog()", "oneDNN custom operations")
# Exit statuses of a command stopped by Ctrl-C (SIGINT) and by SIGTERM: 128 + the signal.
STOPPED_STATUS = {"Ctrl-C": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqnet",
        description="The lecture's IMDB sentiment CNN on Keras 3. The backend is chosen by the "
        "KERAS_BACKEND environment variable (tensorflow, jax or torch).",
    )
    parser.add_argument("--version", action="version", version=f"seqnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_export(commands)
    _add_serve(commands)
    return parser


def _add_workdir(parser: argparse.ArgumentParser, use: str) -> None:
    """Add --workdir, whose help says what this subcommand does with the run folder (``use``)."""
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(DEFAULT_WORKDIR),
        help=f"the run folder: {use} (default: {DEFAULT_WORKDIR})",
    )


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only results and errors: no progress, notices or warnings",
    )


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1, or a usage error that says so."""
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _number(text, float, "a number")
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _number(text, float, "a number")
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def threshold(text: str) -> float:
    """argparse type: a probability strictly between 0 and 1."""
    try:
        return check_threshold(_number(text, float, "a number"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def wait_milliseconds(text: str) -> float:
    """argparse type: a wait from 0 to 5 ms, the bound that keeps batching invisible."""
    value = non_negative_float(text)
    if value > 5:
        raise argparse.ArgumentTypeError(f"must be from 0 to 5 ms, got {text}")
    return value


def _number(text: str, convert, description: str):
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}") from None


def _add_train(commands) -> None:
    from seqnet.config import (
        DISTRIBUTE_STRATEGIES,
        LEARNING_RATE_SCHEDULES,
        RECIPES,
        TrainConfig,
    )

    fast, lecture = TrainConfig(), TrainConfig.from_recipe("lecture")
    accurate = TrainConfig.from_recipe("accurate")
    train = commands.add_parser(
        "train",
        help="train a classifier and write a run folder",
        description="Train the lecture's CNN on labelled texts (two classes: its sigmoid head; "
        "more: a softmax head) and write the model, vocabulary, classes, config, metrics JSON, "
        "a loss/accuracy plot and the test's confusion matrix. Options left out take the "
        "recipe's value.",
    )
    train.add_argument("--data", default=fast.data, help=f"data source: {DATA_SOURCES_HELP}")
    _add_data_options(train, test_data=True)
    train.add_argument(
        "--recipe",
        choices=RECIPES,
        default="fast",
        help=f"'fast': batch {fast.batch_size}, Adam peaking at {fast.learning_rate} with "
        f"{fast.learning_rate_schedule}, {fast.epochs} epochs; 'lecture': batch "
        f"{lecture.batch_size}, constant Adam {lecture.learning_rate}, {lecture.epochs} epochs; "
        f"'accurate': the fast recipe for {accurate.epochs} epochs, with windows of "
        f"{accurate.model.kernel_size} tokens and, on IMDB, {accurate.model.vocabulary_size} "
        f"words and {accurate.model.sequence_length} tokens (default: fast)",
    )
    train.add_argument("--epochs", type=positive_int, help="passes over the data")
    train.add_argument(
        "--batch-size",
        type=positive_int,
        help="texts per gradient step in total over all devices: the global batch; with "
        "--distribute data-parallel each device takes batch-size / devices, so it must divide "
        "evenly",
    )
    train.add_argument("--learning-rate", type=positive_float, help="Adam's (peak) step size")
    train.add_argument(
        "--learning-rate-schedule",
        choices=LEARNING_RATE_SCHEDULES,
        help="'constant' is the lecture's Adam; 'cosine' anneals the step size to 0 over the "
        "run; 'warmup-cosine' first rises linearly over --warmup-epochs",
    )
    train.add_argument(
        "--warmup-epochs", type=non_negative_float, help="warm-up length for warmup-cosine"
    )
    train.add_argument(
        "--seed", type=int, default=fast.seed, help="seed for weights, dropout and shuffling"
    )
    train.add_argument(
        "--batch-normalization",
        action="store_true",
        help="add BatchNormalization after the convolution and the hidden layer",
    )
    _add_model_sizes(train)
    train.add_argument(
        "--synthetic-samples",
        type=positive_int,
        default=fast.synthetic_samples,
        help=f"reviews per split for --data synthetic (default: {fast.synthetic_samples})",
    )
    resuming = train.add_mutually_exclusive_group()
    resuming.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --workdir from its last checkpoint, under the backend and "
        "with the settings it was started with (other options are then ignored, except "
        "--distribute and --epochs, which may not be fewer than the epochs done; a cosine "
        "schedule is then rebuilt for the new length from the step reached, and metrics.json "
        "records the change under schedule_changes), bit for bit where nothing changed",
    )
    resuming.add_argument(
        "--force",
        action="store_true",
        help="replace the run already in --workdir: its model, metrics, vocabulary, plot, "
        "checkpoints and export-onnx/export-saved-model bundles are deleted first; other "
        "files there are kept (default: refuse)",
    )
    train.add_argument(
        "--distribute",
        choices=DISTRIBUTE_STRATEGIES,
        default=fast.distribute,
        help="'none': train on one device; 'data-parallel': a model copy on every device "
        "(JAX: all its devices; TensorFlow: all GPUs, else the CPU; PyTorch: one process per "
        "device, started by torchrun), each step's --batch-size texts split evenly between "
        "them, the gradients averaged; only process 0 writes the run folder. Several hosts: "
        f"see docs/scaling.md (default: {fast.distribute})",
    )
    _add_workdir(
        train,
        "train writes model.keras, vocabulary.json, metrics.json, history.png and a checkpoint "
        "after each epoch into it; --resume reads the checkpoint",
    )
    _add_quiet(train)


def _add_data_options(parser: argparse.ArgumentParser, *, test_data: bool) -> None:
    """How to read a user's labelled table: its columns, classes and (train) test split."""
    from seqnet.config import DataOptions

    default = DataOptions()
    parser.add_argument(
        "--text-column",
        action="append",
        metavar="NAME",
        help="the CSV/TSV/JSON Lines field holding the text; given more than once, the fields "
        f"are joined with a space (default: {default.text_columns[0]})",
    )
    parser.add_argument(
        "--label-column",
        metavar="NAME",
        help=f"the field holding each row's class (default: {default.label_column})",
    )
    parser.add_argument(
        "--class-names",
        metavar="FILE",
        help="a classes.txt naming integer labels, one name per line in label order "
        "(labels 1..N or 0..N-1) (default: the labels themselves are the names)",
    )
    if not test_data:
        return
    parser.add_argument(
        "--test-data",
        metavar="PATH",
        help="a separate labelled test set in the same form as --data (default: hold out "
        "--test-share of the data, seeded and stratified by class)",
    )
    parser.add_argument(
        "--test-share",
        type=share,
        help="share held out for the final test without --test-data "
        f"(default: {default.test_share})",
    )
    parser.add_argument(
        "--validation-share",
        type=validation_share,
        help="share of the training rows scored after each epoch, so that the test data is "
        f"never looked at before the end (default: {default.validation_share})",
    )


def _by_recipe(field: str) -> str:
    """``5000 (accurate recipe: 20000)``: a ModelConfig field's value under the fast recipe,
    and under each recipe that sets it otherwise."""
    from seqnet.config import RECIPES, TrainConfig

    fast = getattr(TrainConfig().model, field)
    others = [
        f"{name} recipe: {value}"
        for name in RECIPES
        if (value := getattr(TrainConfig.from_recipe(name).model, field)) != fast
    ]
    return f"{fast} ({', '.join(others)})" if others else str(fast)


def _add_model_sizes(train: argparse.ArgumentParser) -> None:
    from seqnet.config import ModelConfig

    default = ModelConfig()
    train.add_argument(
        "--vocabulary-size",
        type=positive_int,
        help="embedding rows, the reserved ids 0-2 included (default: IMDB sources "
        f"{_by_recipe('vocabulary_size')}; your own texts: the words seen twice or more, at "
        "most 20,000)",
    )
    train.add_argument(
        "--sequence-length",
        type=positive_int,
        help=f"tokens per text after padding or truncation (default: IMDB sources "
        f"{_by_recipe('sequence_length')}; your own texts: the longest of them, at most 1,000)",
    )
    for name, help_text in (
        ("embedding-dim", "width of each token's embedding vector"),
        ("filters", "output channels of the convolution"),
        ("kernel-size", "tokens each convolution window spans"),
        ("hidden-units", "width of the hidden dense layer"),
    ):
        field = name.replace("-", "_")
        train.add_argument(
            f"--{name}",
            type=positive_int,
            help=f"{help_text} (default: {_by_recipe(field)})",
        )
    train.add_argument(
        "--dropout-rate",
        type=dropout_rate,
        help="share dropped after the embedding and the hidden layer "
        f"(default: {default.dropout_rate})",
    )


def share(text: str) -> float:
    value = _number(text, float, "a number between 0 and 1")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def validation_share(text: str) -> float:
    value = _number(text, float, "a number from 0 to below 1")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 (none) to below 1, got {text}")
    return value


def dropout_rate(text: str) -> float:
    value = _number(text, float, "a number from 0 to below 1")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to below 1, got {text}")
    return value


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="score a trained run: accuracy, macro-F1, per-class figures, confusion matrix",
        description="Score a trained run folder on its own test split, or on every row of a "
        "labelled file or folder (--data): loss, accuracy, macro-F1, per-class precision, "
        "recall, F1 and support, and the confusion matrix: JSON on standard output, a table "
        "on standard error, and a PNG with --plot.",
    )
    evaluate.add_argument(
        "--data",
        default=None,
        help="labelled texts to score whole, read with the run's vocabulary and classes "
        f"(default: the run's own test split): {DATA_SOURCES_HELP}",
    )
    _add_data_options(evaluate, test_data=False)
    evaluate.add_argument(
        "--plot",
        metavar="PNG",
        help="draw the confusion matrix into this PNG file (refused if it exists, unless --force)",
    )
    evaluate.add_argument("--force", action="store_true", help="replace an existing --plot file")
    evaluate.add_argument(
        "--batch-size",
        type=positive_int,
        default=INFERENCE_BATCH_SIZE,
        help=f"texts per batch (default: {INFERENCE_BATCH_SIZE})",
    )
    _add_workdir(evaluate, "evaluate reads model.keras, vocabulary.json and metrics.json from it")
    _add_quiet(evaluate)


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="classify texts",
        description="Classify texts into the run's classes. Texts come from the arguments, "
        "from --file (plain text with one text per line, CSV or JSON Lines), or from standard "
        "input. Each gets a label (the class name), a score (the label's probability), for two "
        "classes the probability of the second, the number of its words the model knows (0: "
        "none, and a warning), and with --probabilities every class's probability; they are "
        "printed, or written beside the input's columns to --output.",
    )
    _add_predict_input(predict)
    _add_predict_output(predict)
    _add_workdir(predict, "predict reads model.keras and vocabulary.json from it")
    _add_quiet(predict)


def _add_predict_input(predict: argparse.ArgumentParser) -> None:
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="text(s) to classify")
    predict.add_argument(
        "--file",
        type=Path,
        help="read texts from this file, '-' for standard input: .txt one per line, .csv "
        "with a header row, .jsonl/.json one object per line (other extensions: text)",
    )
    predict.add_argument(
        "--format",
        choices=("text", "csv", "jsonl"),
        help="read --file in this format, whatever its extension (default: by extension)",
    )
    predict.add_argument(
        "--text-column",
        default="text",
        metavar="NAME",
        help="the CSV column or JSON key holding the text (default: text)",
    )
    predict.add_argument(
        "--batch-size",
        type=positive_int,
        default=INFERENCE_BATCH_SIZE,
        help=f"texts per forward pass (default: {INFERENCE_BATCH_SIZE})",
    )


def _add_predict_output(predict: argparse.ArgumentParser) -> None:
    output = predict.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object per text")
    output.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="write every input column plus label, score, probability (two classes), "
        "known_words and with --probabilities probability_CLASS per class to this .csv or "
        ".jsonl file, in input order, instead of printing; the file appears complete or not "
        "at all, and may be neither --file itself nor anything but a regular file. A CSV cell "
        "that a spreadsheet would run as a formula (text starting with =, +, -, @, a tab or a "
        "carriage return, but not a plain number) gets a leading ' (OWASP's rule); JSON Lines "
        "keep the text as it is",
    )
    predict.add_argument(
        "--output-format",
        choices=("csv", "jsonl"),
        help="write --output in this format, whatever its extension (default: by extension)",
    )
    predict.add_argument(
        "--raw-csv",
        action="store_true",
        help="write CSV --output cells verbatim, without the ' before formula-like text: only "
        "for files no spreadsheet will open",
    )
    predict.add_argument(
        "--probabilities",
        action="store_true",
        help="also give every class's probability: a 'probabilities' object with --json, "
        "probability_CLASS columns in --output, CLASS=P on each printed line",
    )
    predict.add_argument("--force", action="store_true", help="replace an existing --output file")
    predict.add_argument(
        "--threshold",
        type=threshold,
        help="two classes only: the probability of the second class (IMDB: positive) from "
        f"which a text gets it, between 0 and 1 (default: {DECISION_THRESHOLD}); more classes "
        "take the most probable one",
    )
    predict.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on standard error (default: only for inputs of 4 or more "
        "batches when standard error is a terminal)",
    )


def _add_export(commands) -> None:
    export = commands.add_parser(
        "export",
        help="export a trained run as ONNX or a TensorFlow SavedModel",
        description="Export a run folder's model with Keras' model.export, as a bundle folder "
        "that also holds the vocabulary, a JSON description of the tokenization, reference "
        "texts with their probabilities and a README. ONNX: from any backend; SavedModel: "
        "from tensorflow or jax.",
    )
    export.add_argument(
        "--format",
        choices=("onnx", "saved-model"),
        required=True,
        help="'onnx': model.onnx, for ONNX Runtime; 'saved-model': a TensorFlow SavedModel "
        "folder, saved_model/",
    )
    export.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="the bundle folder to write: a new path or an empty folder, never the run folder "
        "or a folder holding it (default: export-onnx or export-saved-model in --workdir); it "
        "appears complete or not at all",
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="replace an earlier bundle at --output; anything else there is refused",
    )
    _add_workdir(
        export,
        "export reads model.keras and vocabulary.json from it and, unless --output names "
        "another folder, writes the bundle into it as export-onnx/ or export-saved-model/",
    )
    _add_quiet(export)


def _add_serve(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="classify texts over HTTP, with a web page",
        description='Serve a trained run folder: POST /predict with {"texts": [...]}, '
        "GET /health, and a web page at /. Needs pip install 'seqnet[serve]'.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, local only)"
    )
    serve.add_argument("--port", type=_port, default=8000, help="TCP port (default: 8000)")
    serve.add_argument(
        "--max-wait-ms",
        type=wait_milliseconds,
        default=2.0,
        help="how long a batch of requests waits for more before the model call, 0 to 5 ms "
        "(default: 2)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host header names NAME (a host name or address, "
        "without port; '*' for any); give it once per name. Loopback names and --host are "
        "always allowed; other names get 400, which stops DNS-rebinding pages",
    )
    limits = ServeLimits()
    serve.add_argument(
        "--header-timeout",
        type=positive_float,
        default=limits.header_timeout,
        metavar="SECONDS",
        help="seconds a client may take to send a request's headers; slower ones get 408 "
        f"(default: {limits.header_timeout:g})",
    )
    serve.add_argument(
        "--body-timeout",
        type=positive_float,
        default=limits.body_timeout,
        metavar="SECONDS",
        help="seconds a client may take to send a request's body once its headers are in; "
        f"raise it for slow links (default: {limits.body_timeout:g})",
    )
    serve.add_argument(
        "--max-queue-texts",
        type=_queue_texts,
        default=limits.max_queue_texts,
        metavar="N",
        help="texts that may wait for the model; requests beyond it get 503 with Retry-After "
        f"(default: {limits.max_queue_texts}, at least {limits.max_texts})",
    )
    _add_workdir(serve, "serve reads model.keras and vocabulary.json from it")
    _add_quiet(serve)


def _queue_texts(text: str) -> int:
    """argparse type: a queue bound that holds at least one full-size request."""
    value = positive_int(text)
    if value < ServeLimits.max_texts:
        raise argparse.ArgumentTypeError(
            f"must be at least {ServeLimits.max_texts}, the texts one request may hold; got {value}"
        )
    return value


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
        "export": run_export,
        "serve": run_serve,
    }
    try:
        with _warnings_shown(args.command, quiet=args.quiet), _sigterm_unwinds():
            _import_keras_without_notices()
            if args.command in RUNS_A_MODEL:
                from seqnet.compilation import enable_compilation_cache

                enable_compilation_cache()  # JAX: compile once per machine, not once per run
            return commands[args.command](args)
    except (ValueError, FileNotFoundError, ConnectionError) as error:
        # 1: the run failed; argparse already exits with 2 for a malformed command line.
        print(f"seqnet {args.command}: error: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Terminated) as stop:
        what = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else "SIGTERM"
        after = AFTER_A_STOP.get(args.command)
        print(
            f"seqnet {args.command}: stopped by {what}.{f' {after}' if after else ''}",
            file=sys.stderr,
        )
        return STOPPED_STATUS[what]


def _import_keras_without_notices() -> None:
    """Import Keras, and with it the backend's framework, passing on to stderr whatever the
    import writes there but TensorFlow's ``START_UP_NOTICES``; a missing framework is a
    ``ValueError`` saying which.

    They come from C++ straight to file descriptor 2, so only a redirect of it catches them.
    """
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as written:
        os.dup2(written.fileno(), 2)
        try:
            import keras  # noqa: F401
        except ModuleNotFoundError as error:  # the framework KERAS_BACKEND names is missing
            backend = os.environ.get("KERAS_BACKEND", "the one keras.json names")
            raise ValueError(
                f"Keras cannot load its backend ({backend}): {error}. Install it, or set "
                "KERAS_BACKEND to an installed one: jax, tensorflow or torch."
            ) from None
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            written.seek(0)
            for line in written.read().decode(errors="replace").splitlines(keepends=True):
                if not any(notice in line for notice in START_UP_NOTICES):
                    sys.stderr.write(line)
            sys.stderr.flush()


class _Terminated(Exception):
    """SIGTERM, raised where the main thread is, so that it unwinds as Ctrl-C does."""


@contextlib.contextmanager
def _sigterm_unwinds():
    """Within the block, SIGTERM raises ``_Terminated`` instead of ending the process at once.

    Python's default for SIGTERM skips every ``finally``: an export's staging folder, a
    run's lock and half-written temporary files would stay behind. Raising lets them clean
    up, as for Ctrl-C. ``seqnet serve`` installs its own handler (a graceful shutdown).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; a caller's thread keeps its own
        return

    def terminate(signum, frame):
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _warnings_shown(command: str, *, quiet: bool):
    """Within the block, each warning is one line on stderr, as errors are, or none if quiet.

    Python's default adds the file, line and source of the ``warnings.warn`` call: noise to a
    user, who needs the message and what to do about it.
    """

    def show(message, *_location, **_file) -> None:
        print(f"seqnet {command}: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        else:
            # A new filter also forgets which warnings were shown before: a second command in
            # one process (a test, a notebook) warns again rather than staying silent.
            warnings.filterwarnings("default", category=UserWarning)
            warnings.showwarning = show
        yield


def run_train(args: argparse.Namespace) -> int:
    import keras

    from seqnet.metrics import format_report
    from seqnet.train import train_and_evaluate
    from seqnet.workdir import ExistingRunError

    config = _train_config(args)
    if not args.quiet:
        print(f"Training on {config.data} with the {keras.backend.backend()} backend.")
    verbose = 0 if args.quiet else "auto"
    try:
        metrics = train_and_evaluate(
            config, args.workdir, resume=args.resume, force=args.force, verbose=verbose
        )
    except ExistingRunError as error:
        hint = "continue it with --resume, " if error.resumable else ""
        raise ValueError(
            f"{args.workdir} already holds {error.found}; {hint}replace it with --force, or "
            f"choose another --workdir."
        ) from None
    if metrics["distribution"]["process_index"] == 0:  # the other processes wrote nothing
        if not args.quiet and len(metrics["classes"]) > 2:
            print(format_report(metrics["test"]))
        print(
            f"Test accuracy {metrics['test_accuracy']:.4f}, macro-F1 "
            f"{metrics['test_macro_f1']:.4f}, {metrics['seconds_per_epoch']:.1f} s per epoch. "
            f"Run written to {args.workdir}/"
        )
    return 0


def _train_config(args: argparse.Namespace):
    """The run's TrainConfig: the checkpoint's with --resume, else the recipe's with the
    options given on the command line on top."""
    from seqnet.checkpoint import checkpointed_config
    from seqnet.config import FITTABLE_SIZES, TrainConfig

    if args.resume:
        saved = checkpointed_config(args.workdir)
        if not args.quiet:
            print(f"Resuming the run in {args.workdir} with its saved settings.")
        epochs = saved.epochs if args.epochs is None else args.epochs
        return replace(saved, epochs=epochs, distribute=args.distribute)
    recipe_options = ("epochs", "batch_size", "learning_rate", "learning_rate_schedule")
    given = {
        name: getattr(args, name)
        for name in (*recipe_options, "warmup_epochs")
        if getattr(args, name) is not None
    }
    sizes = {name: getattr(args, name) for name in MODEL_OPTIONS if getattr(args, name) is not None}
    recipe = TrainConfig.from_recipe(args.recipe)
    return replace(
        recipe,
        data=args.data,
        seed=args.seed,
        synthetic_samples=args.synthetic_samples,
        distribute=args.distribute,
        model=replace(recipe.model, batch_normalization=args.batch_normalization, **sizes),
        data_options=_data_options(args),
        # A size given on the command line is the user's; the others a user's texts may fit.
        fit_to_data=tuple(name for name in FITTABLE_SIZES if name not in sizes),
        **given,
    )


# The ModelConfig fields `seqnet train` takes as options of the same name.
MODEL_OPTIONS = (
    "vocabulary_size",
    "sequence_length",
    "embedding_dim",
    "filters",
    "kernel_size",
    "hidden_units",
    "dropout_rate",
)


def _data_options(args: argparse.Namespace, base=None):
    """The DataOptions the command line asks for, on top of ``base`` (default: defaults)."""
    from seqnet.config import DataOptions

    base = base or DataOptions()
    given = {
        "text_columns": tuple(args.text_column) if args.text_column else None,
        "label_column": args.label_column,
        "class_names": args.class_names,
        "test_data": getattr(args, "test_data", None),
        "test_share": getattr(args, "test_share", None),
        "validation_share": getattr(args, "validation_share", None),
    }
    return replace(base, **{name: value for name, value in given.items() if value is not None})


def run_evaluate(args: argparse.Namespace) -> int:
    from seqnet.evaluate import evaluate_run
    from seqnet.files import refuse_unless_regular
    from seqnet.metrics import format_report
    from seqnet.plot import plot_confusion_matrix
    from seqnet.saving import load_run_config

    if args.plot:  # before the scoring, which may take minutes
        if Path(args.plot).exists() and not args.force:
            raise ValueError(
                f"{args.plot} exists; replace it with --force or choose another --plot."
            )
        refuse_unless_regular(Path(args.plot))
    options = None
    if args.data is not None:
        options = _data_options(args, load_run_config(args.workdir).data_options)
    # Standard output is the JSON a script reads: progress reading the data goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        results = evaluate_run(
            args.workdir,
            data=args.data,
            options=options,
            batch_size=args.batch_size,
            verbose=not args.quiet,
        )
    if args.plot:
        plot_confusion_matrix(results, Path(args.plot))
    if not args.quiet:
        print(format_report(results), file=sys.stderr)
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from seqnet import text_tables
    from seqnet.predict import Classifier
    from seqnet.task import CLASSES_FILE, Task

    task = Task.load(Path(args.workdir) / CLASSES_FILE)  # small: checked before the model loads
    threshold = _predict_threshold(args.threshold, task)
    table = _read_texts(args)
    if args.output is not None:
        output_format = text_tables.output_format(args.output, args.output_format)
        columns = text_tables.prediction_columns(
            task.class_names, all_probabilities=args.probabilities
        )
        text_tables.check_output(args.output, table, args.file, columns, force=args.force)
    if args.raw_csv and (args.output is None or output_format != "csv"):
        raise ValueError("--raw-csv applies to CSV --output only; JSON Lines are never changed.")
    classifier = Classifier.load(args.workdir)
    progress = False if args.quiet and args.progress is None else args.progress
    predictions = _classify(classifier, table.texts, threshold, args.batch_size, progress)
    if args.output is not None:
        text_tables.write_predictions(
            args.output,
            table,
            predictions,
            output_format,
            raw_csv=args.raw_csv,
            all_probabilities=args.probabilities,
        )
        print(f"Wrote {len(predictions)} predictions to {args.output}.")
        return 0
    width = max(map(len, task.class_names))
    for prediction in predictions:
        if args.json:
            row = prediction.to_json(all_probabilities=args.probabilities)
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(_predicted_line(prediction, width, args.probabilities))
    return 0


def _predict_threshold(given: float | None, task) -> float:
    """The decision threshold of ``seqnet predict``: refused for more than two classes, where
    the most probable class is the label."""
    if given is None:
        return DECISION_THRESHOLD
    if not task.binary:
        raise ValueError(
            f"--threshold applies to two classes only; this run has {task.num_classes} "
            f"({', '.join(task.class_names)}) and labels each text with the most probable one. "
            "Drop --threshold."
        )
    return given


def _predicted_line(prediction, width: int, all_probabilities: bool) -> str:
    """One printed line: for two classes the second's probability (as seqnet 0.2 printed it),
    else the score; the label; each class's probability if asked; the text, shortened."""
    line = f"{prediction.probability:.4f}  {prediction.label:{width}}  "
    if all_probabilities:
        pairs = zip(prediction.classes, prediction.probabilities, strict=True)
        line += " ".join(f"{name}={probability:.4f}" for name, probability in pairs) + "  "
    return line + _shorten(prediction.text)


def run_export(args: argparse.Namespace) -> int:
    from seqnet.export import MissingDependencyError, export_run

    try:
        output = export_run(args.workdir, args.format, args.output, force=args.force)
    except MissingDependencyError as error:
        print(f"seqnet export: error: {error}", file=sys.stderr)
        return 1
    print(f"Exported {args.workdir} as {args.format} to {output}/")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    try:
        from seqnet.serve import serve
    except ModuleNotFoundError as error:  # the serve extra is missing
        print(f"seqnet serve: error: {error}", file=sys.stderr)
        return 1
    limits = ServeLimits(
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        max_queue_texts=args.max_queue_texts,
    )
    return serve(
        args.workdir,
        host=args.host,
        port=args.port,
        max_wait=args.max_wait_ms / 1000,
        limits=limits,
        allowed_hosts=args.allowed_host,
        quiet=args.quiet,
    )


def _read_texts(args: argparse.Namespace):
    """The texts to classify, from --file, the TEXT arguments, or piped standard input."""
    from seqnet import text_tables

    if args.file is not None:
        if args.texts:
            raise ValueError("give TEXT arguments or --file, not both.")
        return text_tables.read_texts(args.file, format=args.format, text_column=args.text_column)
    if args.texts:
        return text_tables.table_from_texts(args.texts)
    if not sys.stdin.isatty():
        return text_tables.read_texts(
            text_tables.STDIN, format=args.format, text_column=args.text_column
        )
    raise ValueError("no text given: pass TEXT arguments, --file, or pipe text in.")


def _classify(classifier, texts: list[str], threshold: float, batch_size: int, progress):
    """Predictions for ``texts``, with a progress bar on stderr when it helps or is asked for."""
    from seqnet.progress import ProgressBar, wants_progress

    batches = -(-len(texts) // batch_size)  # ceiling division
    bar = ProgressBar(len(texts)) if wants_progress(progress, batches) else None
    try:
        return classifier.predict(
            texts,
            threshold=threshold,
            batch_size=batch_size,
            progress=bar.update if bar else None,
        )
    finally:
        if bar is not None:
            bar.close()


def _shorten(text: str, width: int = 70) -> str:
    text = " ".join(text.split())  # a CSV text may span lines; print it on one
    return text if len(text) <= width else text[: width - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
