"""Sessions for seqnet: the same tests, benchmarks and docs under every Keras backend.

Each backend gets its own virtual environment that installs only that backend, and
``KERAS_BACKEND`` is set before anything imports keras. ``nox -l`` lists the sessions.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
BACKENDS = ("tensorflow", "jax", "torch")
BENCH_RESULTS = ROOT / "bench-results"
# The CPU wheel of each backend (optax: the native JAX baseline's optimizer);
# constraints.txt pins their versions.
BACKEND_PACKAGES = {
    "tensorflow": ["tensorflow-cpu"],
    "jax": ["jax", "optax"],
    "torch": ["torch"],
}
# What the tests session adds under a backend so that all its export tests run: ONNX from JAX
# goes through jax2onnx (the export-jax extra), SavedModel through jax2tf, which needs
# TensorFlow (its CPU wheel, as a second package: not a second Keras backend).
EXPORT_EXTRAS = {"tensorflow": (), "jax": ("export-jax",), "torch": ()}
EXPORT_PACKAGES = {"tensorflow": (), "jax": ("tensorflow-cpu",), "torch": ()}
# Set to give a pass's JUnit reports their own names (.ci/run: parity-<backend>.xml), so that a
# second pass over some tests does not overwrite the main suite's reports.
REPORT_PREFIX_VARIABLE = "SEQNET_REPORT_PREFIX"


def install_backend(
    session: nox.Session, backend: str, *extras: str, packages: tuple[str, ...] = ()
) -> None:
    """Install seqnet with ``extras`` and exactly one Keras backend into the session.

    Args:
        session: The nox session.
        backend: The Keras backend, whose package ``BACKEND_PACKAGES`` names.
        extras: seqnet's extras, e.g. ``test``.
        packages: More packages to install alongside, versions from constraints.txt.
    """
    target = f".[{','.join(extras)}]" if extras else "."
    session.install(*CONSTRAINTS, *BACKEND_PACKAGES[backend], *packages, "-e", target)
    session.env["KERAS_BACKEND"] = backend


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Build the docs site into site/ with MkDocs in strict mode: any warning fails."""
    # mkdocstrings reads seqnet's source without importing it, so no backend is needed.
    session.install(*CONSTRAINTS, "-e", ".[docs]")
    session.env["NO_MKDOCS_2_WARNING"] = "1"  # Material's notice about its successor
    session.run("mkdocs", "build", "--strict", *session.posargs)


def run_pytest(
    session: nox.Session, backend: str, *args: str, report: str, export: bool = False
) -> None:
    """pytest under ``backend`` with ``args`` and the session's posargs; JUnit XML in
    test-results/``report``.xml (``$SEQNET_REPORT_PREFIX-report``.xml when set), which .ci/ reads.

    Args:
        session: The nox session.
        backend: The Keras backend to install and select.
        args: pytest's arguments, before the session's posargs.
        report: The JUnit report's name, without folder or ``.xml``.
        export: Also install what ``backend`` needs to export every format.
    """
    extras = ("test", *EXPORT_EXTRAS[backend]) if export else ("test",)
    packages = EXPORT_PACKAGES[backend] if export else ()
    install_backend(session, backend, *extras, packages=packages)
    prefix = os.environ.get(REPORT_PREFIX_VARIABLE)
    name = f"{prefix}-{report}" if prefix else report
    results = ROOT / "test-results"
    results.mkdir(exist_ok=True)
    session.run("pytest", *args, f"--junitxml={results / f'{name}.xml'}", *session.posargs)


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """Run the pytest suite under one backend (set SEQNET_IMDB_ARCHIVE for real-data tests)."""
    run_pytest(session, backend, report=backend, export=True)


@nox.session(default=False)
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def distributed(session: nox.Session, backend: str) -> None:
    """Check data-parallel training under one backend: simulated devices, hosts and torchrun."""
    run_pytest(
        session, backend, "tests/distributed", "-m", "distributed", report=f"distributed-{backend}"
    )


def bench_options(posargs: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Split ``nox -s bench -- ...`` into seqnet's options and arguments for pytest."""
    parser = argparse.ArgumentParser(prog="nox -s bench --", add_help=False)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--data", default=None)
    parser.add_argument("--seeds", default=None)  # time to accuracy's; benchmarks/ has 0,1,2
    parser.add_argument("--compare", default=None)
    return parser.parse_known_args(posargs)


def seqnet_bench_args(options: argparse.Namespace) -> list[str]:
    """The options that ``benchmarks/conftest.py`` reads, passed on to pytest."""
    args = ["--full"] if options.full else []
    for name in ("data", "seeds"):
        if getattr(options, name) is not None:
            args += [f"--{name}", getattr(options, name)]
    return args


@nox.session(default=False)
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def benchmark(session: nox.Session, backend: str) -> None:
    """Time every workload under one backend on each visible device (pytest-benchmark)."""
    install_backend(session, backend, "bench")
    options, pytest_args = bench_options(session.posargs)
    seqnet_args = seqnet_bench_args(options)
    BENCH_RESULTS.mkdir(exist_ok=True)
    session.run(
        "pytest",
        "benchmarks",
        "-v",
        "-p",
        "no:cacheprovider",
        f"--benchmark-json={BENCH_RESULTS / f'{backend}.json'}",
        *seqnet_args,
        *pytest_args,
        # A failed workload leaves a gap in the report, not a missing report.
        success_codes=[0, 1],
    )


@nox.session(default=False, requires=[f"benchmark({backend})" for backend in BACKENDS])
def bench(session: nox.Session) -> None:
    """Benchmark every backend and device, then write bench-results/report.{json,md,png}."""
    # The merge reads JSON and draws a chart: no Keras, no backend, seqnet from the checkout.
    session.install(*CONSTRAINTS, "numpy", "matplotlib")
    options, _ = bench_options(session.posargs)
    compare = ["--compare", options.compare] if options.compare else []
    session.run("python", "-m", "benchmarks.report", str(BENCH_RESULTS), *compare)
