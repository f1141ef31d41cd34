""".ci/'s checks: the JUnit check fails on any skip it does not allow, the accuracy check on any
shortfall from the recipe's goal; and the noxfile names each pass's reports apart."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

CI = Path(__file__).parents[1] / ".ci"


def _load(name: str):
    """A .ci/ script as a module (.ci is no package)."""
    spec = importlib.util.spec_from_file_location(f"ci_{name}", CI / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check_test_runs = _load("check_test_runs")
compare_backends = _load("compare_backends")
compare_own_data = _load("compare_own_data")

IMDB_DATA = ("tests.test_real_data", "test_archive_loads_like_keras_imdb", None)
OWN_DATA = ("tests.test_own_data", "test_ag_news_reaches_the_practitioners_accuracy[0]", None)
REAL_DATA = (IMDB_DATA, OWN_DATA)  # what every main suite must run
DISTRIBUTED = (
    "tests.distributed.test_data_parallel",
    "test_jax_four_simulated_devices_match_one_device",
    "needs KERAS_BACKEND=jax",
)


def write_report(folder: Path, name: str, cases) -> Path:
    """A pytest-style JUnit report of ``cases``: (classname, name, skip message or None)."""
    rows = []
    for classname, test, skipped in cases:
        inner = f'<skipped type="pytest.skip" message="{skipped}">x</skipped>' if skipped else ""
        rows.append(
            f'<testcase classname="{classname}" name="{test}" time="0.1">{inner}</testcase>'
        )
    path = folder / f"{name}.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">'
        + "".join(rows)
        + "</testsuite></testsuites>"
    )
    return path


def test_a_report_with_only_allowed_skips_passes_and_is_counted(tmp_path, capsys):
    cases = [*REAL_DATA, ("tests.test_data", "test_oov[3]", None), DISTRIBUTED]
    report = write_report(tmp_path, "torch", cases)

    assert check_test_runs.main([str(report)]) == 0
    assert "torch: 3 ran, 1 skipped as allowed, 0 skipped unexpectedly" in capsys.readouterr().out


def test_an_unexpected_skip_fails_and_is_named(tmp_path, capsys):
    skipped = ("tests.test_export", "test_bundle_holds_the_model[onnx]", "needs jax2onnx")
    report = write_report(tmp_path, "jax", [*REAL_DATA, skipped])

    assert check_test_runs.main([str(report)]) == 1
    captured = capsys.readouterr()
    assert "jax: 2 ran, 0 skipped as allowed, 1 skipped unexpectedly" in captured.out
    assert "tests.test_export::test_bundle_holds_the_model[onnx]: needs jax2onnx" in captured.err


def test_a_skip_allowed_on_one_backend_fails_on_another(tmp_path, capsys):
    # Allowed under torch, which lacks TensorFlow; the JAX environment has it, so it must run.
    skipped = (
        "tests.test_compilation",
        "test_other_backends_are_left_alone[tensorflow]",
        "tensorflow is not installed",
    )
    assert check_test_runs.main([str(write_report(tmp_path, "torch", [*REAL_DATA, skipped]))]) == 0
    assert check_test_runs.main([str(write_report(tmp_path, "jax", [*REAL_DATA, skipped]))]) == 1


def test_an_allowed_test_skipped_for_another_reason_fails(tmp_path):
    skipped = (*DISTRIBUTED[:2], "could not import 'jax'")
    assert check_test_runs.main([str(write_report(tmp_path, "torch", [*REAL_DATA, skipped]))]) == 1


@pytest.mark.parametrize(
    ("name", "cases", "problem"),
    [
        ("jax", [], "no test ran"),
        ("jax", [DISTRIBUTED], "no test ran"),
        ("jax", [("tests.test_data", "test_oov", None), OWN_DATA], "real-data tests did not run"),
        ("jax", [("tests.test_data", "test_oov", None), IMDB_DATA], "own-data tests did not run"),
        ("jax", [(*IMDB_DATA[:2], "set SEQNET_IMDB_ARCHIVE"), OWN_DATA], "unexpected skip"),
    ],
)
def test_a_report_that_checked_too_little_fails(tmp_path, capsys, name, cases, problem):
    assert check_test_runs.main([str(write_report(tmp_path, name, cases))]) == 1
    assert problem in capsys.readouterr().err


def test_a_missing_or_broken_report_fails(tmp_path, capsys):
    good = write_report(tmp_path, "torch", [*REAL_DATA])
    (tmp_path / "jax.xml").write_text("<testsuites><testcase")

    assert check_test_runs.main([str(good), str(tmp_path / "tensorflow.xml")]) == 1
    assert "tensorflow.xml: missing" in capsys.readouterr().err
    assert check_test_runs.main([str(good), str(tmp_path / "jax.xml")]) == 1
    assert "jax.xml: not a JUnit report" in capsys.readouterr().err


def test_the_parity_and_distributed_reports_need_no_real_data(tmp_path):
    parity = write_report(tmp_path, "parity-jax", [("tests.test_parity", "test_saved", None)])
    distributed = write_report(tmp_path, "distributed-torch", [("tests.distributed.x", "t", None)])
    assert check_test_runs.main([str(parity), str(distributed)]) == 0


def write_runs(folder: Path, accuracies: dict[str, list[float]]) -> Path:
    """tests/test_real_data.py's JSON files: per backend, one test accuracy per seed 0, 1, ..."""
    for backend, per_seed in accuracies.items():
        for seed, accuracy in enumerate(per_seed):
            run = {
                "backend": backend,
                "seed": seed,
                "test_accuracy_per_epoch": [accuracy - 0.01, accuracy],
                "test_accuracy": accuracy,
                "seconds_per_epoch": 10.0,
                "short_review_accuracy": 0.97,
            }
            (folder / f"real-data-{backend}-seed{seed}.json").write_text(json.dumps(run))
    return folder


MET = {"tensorflow": [0.894, 0.895, 0.893], "jax": [0.896, 0.893, 0.894], "torch": [0.89] * 3}


def test_the_goal_met_on_every_backend_passes(tmp_path, capsys):
    assert compare_backends.main(write_runs(tmp_path, MET)) == 0
    out = capsys.readouterr().out
    assert "): met" in out and "jax: mean 0.8943" in out


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"torch": [0.884, 0.896, 0.896]}, "torch seed 0: 0.8840 is below 0.885"),
        ({"jax": [0.889, 0.889, 0.889]}, "jax: mean 0.8890 is below 0.89"),
        ({"tensorflow": [0.894, 0.895]}, "tensorflow: runs for seeds [0, 1], expected [0, 1, 2]"),
        ({"torch": [0.906, 0.906, 0.906]}, "spread 0.0120 > 0.01"),
    ],
)
def test_any_shortfall_from_the_goal_fails(tmp_path, capsys, change, reason):
    assert compare_backends.main(write_runs(tmp_path, {**MET, **change})) == 1
    captured = capsys.readouterr()
    assert "NOT met" in captured.out and reason in captured.err


def test_a_missing_backend_fails(tmp_path, capsys):
    runs = {backend: MET[backend] for backend in ("tensorflow", "torch")}
    assert compare_backends.main(write_runs(tmp_path, runs)) == 1
    assert "jax: runs for seeds [], expected [0, 1, 2]" in capsys.readouterr().err


def test_the_real_data_test_asserts_the_goal_ci_reports():
    from test_real_data import GOAL_RUN

    assert GOAL_RUN == compare_backends.GOAL_RUN


class RecordingSession:
    """What run_pytest asks of a nox session: installs and one pytest run."""

    def __init__(self):
        self.env, self.posargs, self.installed, self.ran = {}, [], [], []

    def install(self, *args):
        self.installed += args

    def run(self, *args):
        self.ran.append(args)


@pytest.mark.parametrize(("prefix", "report"), [(None, "jax.xml"), ("parity", "parity-jax.xml")])
def test_a_pass_with_a_report_prefix_leaves_the_main_reports_alone(monkeypatch, prefix, report):
    noxfile = pytest.importorskip("noxfile", reason="the noxfile needs nox (the test extra has it)")
    if prefix:
        monkeypatch.setenv(noxfile.REPORT_PREFIX_VARIABLE, prefix)
    else:
        monkeypatch.delenv(noxfile.REPORT_PREFIX_VARIABLE, raising=False)
    session = RecordingSession()
    monkeypatch.setattr(noxfile, "ROOT", Path("/checkout"))
    monkeypatch.setattr(Path, "mkdir", lambda *args, **kwargs: None)

    noxfile.run_pytest(session, "jax", report="jax", export=True)

    assert session.ran == [("pytest", f"--junitxml=/checkout/test-results/{report}")]
    # JAX's SavedModel goes through jax2tf: TensorFlow's CPU wheel, beside the export-jax extra.
    assert {"jax", "tensorflow-cpu", ".[test,export-jax]"} <= set(session.installed)


def _own_data_runs(folder: Path, accuracy, skip: tuple = ()) -> str:
    """own-data JSON files for every data set, backend and seed CI expects, but ``skip``;
    ``accuracy`` is every run's, or a list of them in order (JAX, TensorFlow, torch 0-2)."""
    accuracies = iter(accuracy * 2 if isinstance(accuracy, list) else [accuracy] * 10)
    for data in compare_own_data.TARGETS:
        for backend, seeds in compare_own_data.SEEDS.items():
            for seed in seeds:
                if (data, backend, seed) in skip:
                    continue
                run = {"data": data, "backend": backend, "seed": seed, "seconds_per_epoch": 1.0}
                value = next(accuracies)
                run |= {"test_accuracy": value, "test_macro_f1": value}
                path = folder / f"own-data-{data}-{backend}-seed{seed}.json"
                path.write_text(json.dumps(run))
    return str(folder)


def test_own_data_targets_pass_when_met_and_fail_below_or_with_a_run_missing(tmp_path, capsys):
    (tmp_path / "met").mkdir()
    assert compare_own_data.main(_own_data_runs(tmp_path / "met", 0.91)) == 0
    (tmp_path / "low").mkdir()
    assert compare_own_data.main(_own_data_runs(tmp_path / "low", 0.60)) == 1
    assert "rusentiment: mean test_accuracy 0.6000 < 0.68" in capsys.readouterr().err
    (tmp_path / "gap").mkdir()
    missing = (("ag_news", "jax", 0),)
    assert compare_own_data.main(_own_data_runs(tmp_path / "gap", 0.91, missing)) == 1
    assert "ag_news on jax: runs for seeds [], expected [0]" in capsys.readouterr().err


def test_a_mean_below_the_target_fails_only_beyond_two_standard_errors(tmp_path, capsys):
    # The five AG News runs of a real CI: their mean is 0.0004 under 0.90, well within their
    # spread (standard error 0.0008): not met, within chance, so CI passes.
    (tmp_path / "noisy").mkdir()
    noisy = [0.9012, 0.8989, 0.8995, 0.8970, 0.9014]
    assert compare_own_data.main(_own_data_runs(tmp_path / "noisy", noisy)) == 0
    assert (
        "ag_news: mean test_accuracy 0.8996 ± 0.0008 (standard error) of 5 runs; target 0.9 "
        "not met, within chance" in capsys.readouterr().out
    )
    # The same mean from runs that agree, and a lower one, are beyond chance: both fail.
    for name, runs in (
        ("agreeing", [0.8996] * 5),
        ("lower", [0.8982, 0.8959, 0.8965, 0.8940, 0.8984]),
    ):
        (tmp_path / name).mkdir()
        assert compare_own_data.main(_own_data_runs(tmp_path / name, runs)) == 1
        printed = capsys.readouterr()
        assert "ag_news: mean test_accuracy 0.89" in printed.err
        assert "runs; target 0.9 not met\n" in printed.out  # not "within chance"
