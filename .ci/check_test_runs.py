"""Exit non-zero unless every test expected on each backend ran.

Reads pytest's JUnit reports (``test-results/<report>.xml``, one per nox session) and prints per
report how many tests ran, how many skipped as allowed below and how many skipped unexpectedly.
CI fails on any skip not in ``ALLOWED_SKIPS``, on a report that is missing or ran no tests, and
on a main-suite report whose real-data tests did not run.

    python .ci/check_test_runs.py test-results/tensorflow.xml test-results/jax.xml ...

A report's name says what ran: ``<backend>`` (the main suite), ``parity-<backend>`` or
``distributed-<backend>``.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

MAIN_SUITES = ("tensorflow", "jax", "torch")


@dataclass(frozen=True)
class AllowedSkip:
    """Tests that may skip: ``reports`` and ``test`` are fnmatch patterns on the report's name and
    on ``module::test`` (pytest's dotted classname), ``message`` on pytest's skip reason."""

    reports: tuple[str, ...]
    test: str
    message: str
    reason: str  # why skipping is right there, for the reviewer of this list


# Reviewed: each entry says why its tests cannot run in that environment. Anything else that
# skips in CI is a test that silently stopped checking something, and fails the run.
ALLOWED_SKIPS = (
    AllowedSkip(
        MAIN_SUITES,
        "tests.distributed.test_data_parallel::*",
        "data-parallel tests run apart*",
        "each starts training processes: nox -s distributed runs them",
    ),
    AllowedSkip(
        (*MAIN_SUITES, "distributed-*"),
        "tests.distributed.test_data_parallel::*",
        "needs KERAS_BACKEND=*",
        "a backend's own data-parallel tests run in its distributed session (under -m distributed)",
    ),
    AllowedSkip(
        ("tensorflow", "torch"),
        "tests.test_compilation::test_a_second_jax_process_loads_what_the_first_compiled",
        "JAX is not installed",
        "JAX's compilation cache: only the JAX environment has JAX",
    ),
    AllowedSkip(
        ("tensorflow", "jax"),
        "tests.test_compilation::test_other_backends_are_left_alone[[]torch[]]",
        "torch is not installed",
        "only the torch environment has torch",
    ),
    AllowedSkip(
        ("torch",),
        "tests.test_compilation::test_other_backends_are_left_alone[[]tensorflow[]]",
        "tensorflow is not installed",
        "the torch environment has no TensorFlow (the JAX one has, for its exports)",
    ),
    AllowedSkip(
        ("tensorflow",),
        "tests.test_architecture::test_importing_seqnet_never_imports_tensorflow",
        "no Keras backend but TensorFlow is installed",
        "the TensorFlow backend imports TensorFlow itself; the JAX and torch environments run it",
    ),
    AllowedSkip(
        ("tensorflow",),
        "tests.test_output::test_training_under_another_backend_never_imports_tensorflow",
        "TensorFlow is the backend, so it is imported",
        "training under TensorFlow imports it by design; the JAX and torch environments run it",
    ),
    AllowedSkip(
        ("tensorflow", "jax"),
        "tests.test_export::test_seqnet_export_explains_the_backend_it_needs",
        "this backend exports SavedModel",
        "checks torch's refusal to export SavedModel; these backends export it",
    ),
)


@dataclass
class Counts:
    """One report's outcome: tests that ran, skips allowed, skips not allowed (as test ids)."""

    ran: int = 0
    allowed: int = 0
    unexpected: list[str] = field(default_factory=list)
    real_data_ran: int = 0
    own_data_ran: int = 0


def test_id(case: ElementTree.Element) -> str:
    """``module::name`` of a JUnit testcase, e.g. ``tests.test_data::test_oov[3]``."""
    return f"{case.get('classname', '')}::{case.get('name', '')}"


def allowed(report: str, test: str, message: str) -> AllowedSkip | None:
    """The entry of ``ALLOWED_SKIPS`` that lets ``test`` skip in ``report``, if any.

    Args:
        report: The report's name without ``.xml``, e.g. ``jax`` or ``distributed-torch``.
        test: The test's id, as ``test_id`` gives it.
        message: pytest's skip reason.
    """
    for entry in ALLOWED_SKIPS:
        if (
            any(fnmatchcase(report, pattern) for pattern in entry.reports)
            and fnmatchcase(test, entry.test)
            and fnmatchcase(message, entry.message)
        ):
            return entry
    return None


def count(path: Path) -> Counts:
    """Count what ran and what skipped in the JUnit report at ``path``.

    Args:
        path: A pytest ``--junitxml`` file; its stem names the report.
    """
    counts = Counts()
    for case in ElementTree.parse(path).iter("testcase"):
        skipped = case.find("skipped")
        if skipped is None:
            counts.ran += 1
            counts.real_data_ran += case.get("classname", "") == "tests.test_real_data"
            counts.own_data_ran += case.get("classname", "") == "tests.test_own_data"
            continue
        message = skipped.get("message", "")
        if allowed(path.stem, test_id(case), message):
            counts.allowed += 1
        else:
            counts.unexpected.append(f"{test_id(case)}: {message}")
    return counts


def problems(path: Path) -> list[str]:
    """What is wrong with one report, empty if nothing; prints its counts.

    Args:
        path: The report, which need not exist (a missing report is a problem).
    """
    if not path.is_file():
        return [f"{path}: missing (did its nox session run?)"]
    try:
        counts = count(path)
    except ElementTree.ParseError as error:
        return [f"{path}: not a JUnit report ({error})"]
    print(
        f"{path.stem}: {counts.ran} ran, {counts.allowed} skipped as allowed, "
        f"{len(counts.unexpected)} skipped unexpectedly"
    )
    found = [f"{path}: unexpected skip of {skip}" for skip in counts.unexpected]
    if counts.ran == 0:
        found.append(f"{path}: no test ran")
    if path.stem in MAIN_SUITES and counts.real_data_ran == 0:
        found.append(f"{path}: the real-data tests did not run (set SEQNET_IMDB_ARCHIVE)")
    if path.stem in MAIN_SUITES and counts.own_data_ran == 0:
        found.append(
            f"{path}: the own-data tests did not run (set SEQNET_AG_NEWS and SEQNET_RUSENTIMENT)"
        )
    return found


def main(reports: list[str]) -> int:
    """Check every report named on the command line; 1 if any has a problem."""
    if not reports:
        print("usage: check_test_runs.py REPORT.xml [REPORT.xml ...]", file=sys.stderr)
        return 2
    found = [problem for report in reports for problem in problems(Path(report))]
    for problem in found:
        print(f"FAIL {problem}", file=sys.stderr)
    if found:
        print(
            "A test that skips in CI checks nothing: make it run there, or add it to "
            "ALLOWED_SKIPS in .ci/check_test_runs.py with the reason it cannot.",
            file=sys.stderr,
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
