"""Sessions for seqnet: the same tests, benchmarks and docs under every Keras backend.

Each backend gets its own virtual environment that installs only that backend, and
``KERAS_BACKEND`` is set before anything imports keras. ``nox -l`` lists the sessions.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
BACKENDS = ("tensorflow", "jax", "torch")
# The CPU wheel of each backend; constraints.txt pins their versions.
BACKEND_PACKAGES = {
    "tensorflow": ["tensorflow-cpu"],
    "jax": ["jax"],
    "torch": ["torch"],
}


def install_backend(session: nox.Session, backend: str, *extras: str) -> None:
    """Install seqnet with ``extras`` and exactly one Keras backend into the session."""
    target = f".[{','.join(extras)}]" if extras else "."
    session.install(*CONSTRAINTS, *BACKEND_PACKAGES[backend], "-e", target)
    session.env["KERAS_BACKEND"] = backend


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """Run the pytest suite under one backend (set SEQNET_IMDB_ARCHIVE for real-data tests)."""
    install_backend(session, backend, "test")
    results = ROOT / "test-results"
    results.mkdir(exist_ok=True)
    session.run(
        "pytest",
        f"--junitxml={results / f'{backend}.xml'}",
        *session.posargs,
    )
