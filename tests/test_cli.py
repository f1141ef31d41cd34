import json
import subprocess
import sys

import pytest

import seqnet
from seqnet.cli import build_parser, main


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli-run")
    code = main(
        [
            "train",
            "--data",
            "synthetic",
            "--epochs",
            "1",
            "--synthetic-samples",
            "200",
            "--batch-size",
            "50",
            "--workdir",
            str(workdir),
        ]
    )
    assert code == 0
    return workdir


def test_train_prints_the_result(trained_workdir):
    metrics = json.loads((trained_workdir / "metrics.json").read_text())
    assert metrics["config"]["batch_size"] == 50 and len(metrics["history"]) == 1


def test_predict_prints_probability_and_label(trained_workdir, capsys):
    assert main(["predict", "--workdir", str(trained_workdir), "good0 word1", "bad0 word2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    probability, label, text = lines[0].split(maxsplit=2)
    assert 0.0 <= float(probability) <= 1.0 and label in {"positive", "negative"}
    assert text == "good0 word1"


def test_predict_json_reads_a_file(trained_workdir, tmp_path, capsys):
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("good0 good1\n\nbad1 bad2\n")
    assert (
        main(["predict", "--workdir", str(trained_workdir), "--json", "--file", str(reviews)]) == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in rows] == ["good0 good1", "bad1 bad2"]
    assert all(set(row) == {"text", "label", "score", "probability", "known_words"} for row in rows)


def test_predict_reads_standard_input(trained_workdir):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seqnet.cli",
            "predict",
            "--json",
            "--workdir",
            str(trained_workdir),
        ],
        input="good0 good1\nbad0 bad1\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_evaluate_prints_accuracy(trained_workdir, capsys):
    assert main(["evaluate", "--workdir", str(trained_workdir)]) == 0
    assert 0.0 <= json.loads(capsys.readouterr().out)["accuracy"] <= 1.0


def test_errors_are_one_clear_line_and_exit_1(tmp_path, capsys):
    assert main(["predict", "--workdir", str(tmp_path), "some text"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("seqnet predict: error: No model at") and "Traceback" not in error
    assert main(["train", "--data", str(tmp_path / "missing.tar.gz")]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--epochs", "0", "must be at least 1, got 0"),
        ("--epochs", "two", "expected a whole number"),
        ("--batch-size", "-4", "must be at least 1"),
        ("--learning-rate", "0", "must be a positive number"),
        ("--learning-rate", "nan", "must be a positive number"),
        ("--warmup-epochs", "-1", "must be 0 or more"),
        ("--synthetic-samples", "0", "must be at least 1"),
    ],
)
def test_every_number_is_validated_as_a_usage_error(option, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", option, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"seqnet {seqnet.__version__}"


def test_recipes_fill_the_options_left_out():
    from seqnet.cli import _train_config
    from seqnet.config import TrainConfig

    def config(*arguments):
        return _train_config(build_parser().parse_args(["train", *arguments]))

    assert config() == TrainConfig()
    lecture = config("--recipe", "lecture")
    assert lecture == TrainConfig.from_recipe("lecture")
    assert (lecture.batch_size, lecture.learning_rate_schedule) == (32, "constant")
    assert config("--recipe", "lecture", "--epochs", "5").epochs == 5
    assert config("--learning-rate", "0.01").learning_rate == 0.01


def test_the_accurate_recipe_sets_the_network_and_an_option_changes_one_size():
    from seqnet.cli import _train_config
    from seqnet.config import FITTABLE_SIZES, TrainConfig

    def config(*arguments):
        return _train_config(build_parser().parse_args(["train", *arguments]))

    accurate = config("--recipe", "accurate")
    assert accurate == TrainConfig.from_recipe("accurate")
    model = accurate.model
    assert (model.kernel_size, model.vocabulary_size, model.sequence_length) == (5, 20000, 800)
    assert (accurate.epochs, accurate.learning_rate_schedule) == (3, "warmup-cosine")
    assert accurate.fit_to_data == FITTABLE_SIZES  # a user's texts still fit their sizes
    # One size given: the others stay the recipe's, and that one is no longer fitted.
    narrower = config("--recipe", "accurate", "--sequence-length", "600")
    assert (narrower.model.sequence_length, narrower.model.kernel_size) == (600, 5)
    assert narrower.model.vocabulary_size == 20000
    assert "sequence_length" not in narrower.fit_to_data
    # The saved config brings the recipe's network back.
    assert TrainConfig.from_dict(accurate.to_dict()) == accurate


def test_help_explains_every_option(capsys):
    parser = build_parser()
    for command in ("train", "evaluate", "predict", "export"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        text = capsys.readouterr().out
        subparser = parser._subparsers._group_actions[0].choices[command]
        for action in subparser._actions:
            assert action.help, f"{command} {action.dest} has no help"
        assert "--workdir" in text
