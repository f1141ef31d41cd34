"""What seqnet prints: right epoch titles, logs free of terminal redraws, --quiet, notices."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import pytest
from conftest import TINY_MODEL, train_tiny_run, write_tiny_folder

from seqnet.checkpoint import checkpointed_config
from seqnet.cli import build_parser, main
from seqnet.config import TrainConfig
from seqnet.data import read_dataset
from seqnet.parallel import ReplicaLayout
from seqnet.predict import Classifier, UnknownWordsWarning
from seqnet.train import (
    SmallRunWarning,
    build_training_model,
    epoch_data,
    train_and_evaluate,
    warn_if_too_small,
)

# Most runs here are far too small to learn, on purpose; the warning is tested on its own.
pytestmark = pytest.mark.filterwarnings("ignore::seqnet.train.SmallRunWarning")

# What a display redrawn in place leaves in a log: ANSI escapes, backspaces, carriage returns.
REDRAWS = ("\x1b", "\b", "\r")
TINY_RUN = TrainConfig(data="synthetic", synthetic_samples=64, epochs=3, model=TINY_MODEL)


class FakeTerminal(io.StringIO):
    """A standard output that says it is a terminal, and keeps what was written."""

    def isatty(self) -> bool:
        return True


def run_seqnet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m seqnet ARGS`` with stdout and stderr to pipes, as in a CI log."""
    return subprocess.run(
        [sys.executable, "-m", "seqnet", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def epoch_titles(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Epoch ")]


def test_every_epoch_is_titled_with_the_runs_epoch_count(tmp_path, capsys):
    train_and_evaluate(TINY_RUN, tmp_path / "run")
    assert epoch_titles(capsys.readouterr().out) == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]


def test_a_resumed_run_titles_its_epochs_out_of_the_whole_run(tmp_path, capsys):
    from dataclasses import replace

    train_and_evaluate(replace(TINY_RUN, epochs=1), tmp_path / "run", verbose=0)
    saved = checkpointed_config(tmp_path / "run")
    train_and_evaluate(replace(saved, epochs=3), tmp_path / "run", resume=True)
    assert epoch_titles(capsys.readouterr().out) == ["Epoch 2/3", "Epoch 3/3"]


def test_a_terminal_keeps_keras_live_bar(tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.delenv("NO_COLOR", raising=False)
    train_and_evaluate(TINY_RUN, tmp_path / "run")
    shown = terminal.getvalue()
    assert "\x1b[1m" in shown and "\r" in shown  # Keras' bold step count, redrawn in place
    assert epoch_titles(shown) == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]


def test_no_color_gives_plain_lines_even_on_a_terminal(tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setenv("NO_COLOR", "1")
    train_and_evaluate(TINY_RUN, tmp_path / "run")
    shown = terminal.getvalue()
    assert not [char for char in REDRAWS if char in shown]
    assert len([line for line in shown.splitlines() if " - val_accuracy: " in line]) == 3


def test_seqnet_train_into_a_pipe_writes_plain_lines(tmp_path):
    result = run_seqnet(
        *("train", "--data", "synthetic", "--synthetic-samples", "64", "--epochs", "2"),
        *("--workdir", str(tmp_path / "run")),
        env={"NO_COLOR": ""},  # not a terminal is reason enough
    )
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert {char: log.count(char) for char in REDRAWS} == dict.fromkeys(REDRAWS, 0)
    assert epoch_titles(result.stdout) == ["Epoch 1/2", "Epoch 2/2"]
    metric_lines = [line for line in result.stdout.splitlines() if " - val_loss: " in line]
    assert len(metric_lines) == 2  # one line per epoch, with its metrics


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow", reason="TensorFlow is the backend, so it is imported"
)
def test_training_under_another_backend_never_imports_tensorflow(tmp_path):
    # A stand-in TensorFlow first on the path notes any import, installed TensorFlow or not.
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    imports = tmp_path / "imports.txt"
    fake.joinpath("__init__.py").write_text(
        "import os\n"
        "with open(os.environ['FAKE_TENSORFLOW_LOG'], 'a') as log:\n"
        "    log.write('imported\\n')\n"
        "raise ImportError('seqnet imported TensorFlow')\n"
    )
    script = (
        "import sys\n"
        "from conftest import TINY_MODEL\n"
        "from seqnet.config import TrainConfig\n"
        "from seqnet.train import train_and_evaluate\n"
        "config = TrainConfig(synthetic_samples=64, epochs=1, model=TINY_MODEL)\n"
        f"train_and_evaluate(config, {str(tmp_path / 'run')!r}, verbose=0)\n"
        "print('tensorflow' in sys.modules)\n"
        "from keras.src.utils import module_utils\n"
        "print(module_utils.tensorflow._available)  # None: Keras may look for it again\n"
    )
    tests, root = Path(__file__).parent, Path(__file__).parents[1]
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(fake.parent), str(root), str(tests)]),
            "FAKE_TENSORFLOW_LOG": str(imports),
        },
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert not imports.exists(), "training imported tensorflow"
    assert result.stdout.split() == ["False", "None"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A one-epoch ``seqnet train --quiet`` run folder, and what it printed."""
    workdir = tmp_path_factory.mktemp("quiet") / "run"
    with pytest.MonkeyPatch.context() as patch:
        printed = io.StringIO(), io.StringIO()
        patch.setattr(sys, "stdout", printed[0])
        patch.setattr(sys, "stderr", printed[1])
        code = main(
            ["train", "--data", "synthetic", "--synthetic-samples", "64", "--epochs", "1"]
            + ["--workdir", str(workdir), "--quiet"]
        )
    return workdir, code, printed[0].getvalue(), printed[1].getvalue()


def test_quiet_train_prints_its_result_only(cli_run):
    workdir, code, out, err = cli_run
    assert code == 0
    assert out.splitlines() == [out.splitlines()[0]] and out.startswith("Test accuracy ")
    assert err == ""  # no warning either, though this run is far too small to learn


def test_quiet_train_in_a_new_process_writes_nothing_to_stderr(tmp_path):
    """What a shell gets from ``seqnet train -q``: the result line, and under TensorFlow none
    of its C++ start-up notices, which TF_CPP_MIN_LOG_LEVEL does not silence."""
    arguments = ["--data", "synthetic", "--synthetic-samples", "64", "--epochs", "1", "-q"]
    result = subprocess.run(
        [sys.executable, "-m", "seqnet", "train", *arguments, "--workdir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("Test accuracy ") and result.stdout.count("\n") == 1


def test_a_backend_that_is_not_installed_is_one_line_naming_it(tmp_path):
    (tmp_path / "jax.py").write_text(  # stands for a machine without JAX
        "raise ModuleNotFoundError(\"No module named 'jax'\", name='jax')\n"
    )
    paths = [str(tmp_path), os.environ.get("PYTHONPATH", "")]
    result = subprocess.run(
        [sys.executable, "-m", "seqnet", "predict", "a review"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join(paths)},
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "seqnet predict: error: Keras cannot load its backend (jax): No module named 'jax'. "
        "Install it, or set KERAS_BACKEND to an installed one: jax, tensorflow or torch."
    ]


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "export", "serve"])
@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_every_command_takes_quiet(command, flag):
    extra = ["--format", "onnx"] if command == "export" else []
    assert build_parser().parse_args([command, flag, *extra]).quiet is True
    assert build_parser().parse_args([command, *extra]).quiet is False


def test_quiet_evaluate_and_predict_print_results_only(cli_run, capsys):
    workdir = str(cli_run[0])
    assert main(["evaluate", "--workdir", workdir, "-q"]) == 0
    out, err = capsys.readouterr()
    assert set(json.loads(out)) >= {"accuracy", "loss"} and err == ""
    assert main(["predict", "--workdir", workdir, "-q", "--json", "qqq zzz", "good0"]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # no warning for the review of unknown words
    assert [json.loads(line)["known_words"] for line in out.splitlines()] == [0, 1]


def test_a_review_without_a_known_word_gets_one_warning_line(cli_run, capsys):
    workdir = str(cli_run[0])
    assert main(["predict", "--workdir", workdir, "--json", "qqq zzz", "good0 word1", "xx"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [err.splitlines()[0]]
    assert err.startswith("seqnet predict: warning: 2 of 3 texts (number 1, 3) have no word")
    assert [json.loads(line)["known_words"] for line in out.splitlines()] == [0, 2, 0]


def test_known_words_count_what_the_model_reads(tmp_path):
    classifier = Classifier.load(train_tiny_run(tmp_path))
    length = classifier.sequence_length
    long_review = " ".join(["great"] * (length + 10))  # truncated to its last words
    with pytest.warns(UnknownWordsWarning, match="1 of 3 texts .number 2. have no word"):
        predictions = classifier.predict(["great film", "qqq zzz", long_review])
    # Neither the start id nor unknown words count; the long review keeps its last `length`
    # ids, all of them "great" once truncation has cut off the start id.
    assert [p.known_words for p in predictions] == [2, 0, length]


def test_too_small_a_run_is_warned_about_and_the_default_is_not():
    with pytest.warns(SmallRunWarning, match="make 32 gradient steps over 1,024 reviews"):
        warn_if_too_small(TrainConfig(), 512)
    # Steps enough but reviews too few, and the other way round: both stayed at chance.
    with pytest.warns(SmallRunWarning, match="make 128 gradient steps over 1,024 reviews"):
        warn_if_too_small(TrainConfig(batch_size=8), 512)
    with pytest.warns(SmallRunWarning, match="make 32 gradient steps over 4,000 reviews"):
        warn_if_too_small(TrainConfig(batch_size=128), 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default run must not warn
        warn_if_too_small(TrainConfig(), TrainConfig().synthetic_samples)


def test_reading_a_folder_prints_whole_plain_lines(tmp_path, capsys):
    write_tiny_folder(tmp_path)
    read_dataset(tmp_path / "aclImdb", num_words=30, maxlen=8, verbose=True)
    out = capsys.readouterr().out
    assert not [char for char in REDRAWS if char in out]
    assert out.splitlines() == ["8 reviews read", "Tokenizing the train split and the test split"]


def test_on_a_terminal_every_progress_line_starts_fresh(tmp_path, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.delenv("NO_COLOR", raising=False)
    write_tiny_folder(tmp_path)
    read_dataset(tmp_path / "aclImdb", num_words=30, maxlen=8, verbose=True)
    lines = terminal.getvalue().split("\n")
    assert lines[0].startswith("\r1 reviews read") and lines[0].endswith("\r8 reviews read")
    assert lines[1] == "Tokenizing the train split and the test split"


def test_jax_says_it_compiles_before_the_first_steps(tmp_path, capsys):
    train_and_evaluate(TINY_RUN, tmp_path / "run")
    lines = capsys.readouterr().out.splitlines()
    compiling = [line for line in lines if line.startswith("Compiling")]
    if keras.backend.backend() != "jax":  # nothing compiles for seconds there: nothing to say
        assert compiling == []
        return
    assert len(compiling) == 1 and lines.index(compiling[0]) < lines.index("Epoch 1/3")
    said = re.fullmatch(
        r"Compiling the training step for (\d+) batch shapes? and the validation step for "
        r"(\d+) batch shapes?: JAX compiles each shape before its first step, .+\.",
        compiling[0],
    )
    # The shapes of the first epoch's batches, as fit receives them.
    data = read_dataset("synthetic", num_words=60, maxlen=24, synthetic_samples=64)
    model = build_training_model(TINY_RUN, len(data.x_train))
    x, _, validation = epoch_data(model, data, TINY_RUN, 0, ReplicaLayout())
    shapes = [{batches[i][0].shape for i in range(len(batches))} for batches in (x, validation)]
    assert said and [int(said[1]), int(said[2])] == [len(shapes[0]), len(shapes[1])]


def test_evaluate_prints_json_only_on_stdout_while_it_tokenizes(tmp_path, monkeypatch, capsys):
    run = train_tiny_run(tmp_path)
    monkeypatch.setenv("SEQNET_CACHE_DIR", str(tmp_path / "empty-cache"))  # tokenize again
    assert main(["evaluate", "--workdir", str(run)]) == 0
    out, err = capsys.readouterr()
    assert set(json.loads(out)) >= {"accuracy", "loss"}
    assert "Tokenizing the train split and the test split" in err.splitlines()
