"""Benchmark the installed backend without nox: ``python -m benchmarks [--full] [--output DIR]``.

Run from a checkout (``benchmarks/`` is not installed with seqnet). ``nox -s bench`` runs the
same workloads for every backend under pytest-benchmark and merges the reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import keras

from benchmarks.report import build_report, markdown_table, write_report
from benchmarks.workloads import BenchConfig, run_benchmarks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--full", action="store_true", help="measure longer (more rounds)")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("bench-results") / "cli",
        help="folder for report.json, report.md and report.png (default: bench-results/cli)",
    )
    args = parser.parse_args(argv)
    config = BenchConfig.full() if args.full else BenchConfig()
    records = run_benchmarks(config, progress=lambda message: print(message, flush=True))
    report = build_report(records, expected_backends=[keras.backend.backend()])
    write_report(report, args.output)
    print(markdown_table(report))
    print(f"Written: {args.output}/report.json, report.md, report.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
