"""Merge per-backend benchmark results into one report: JSON, a Markdown table and a bar chart.

Imports neither keras nor any backend, so the merge runs in an environment without one.
Run as ``python -m benchmarks.report RESULTS_FOLDER [--compare OLD_REPORT]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from seqnet.files import write_atomically
from seqnet.plot import save_figure

BACKENDS = ("tensorflow", "jax", "torch")
REGRESSION_TOLERANCE = 0.10
# Figures compared between reports; True where higher is better.
COMPARED = {
    ("training", "samples_per_second"): True,
    ("inference", "samples_per_second"): True,
    ("training", "gflops"): True,
    ("latency", "p50_ms"): False,
    ("latency", "p95_ms"): False,
    ("training", "first_step_seconds"): False,
}


def records_from_pytest_benchmark(payload: dict) -> list[dict]:
    """Group a pytest-benchmark JSON's entries into one record per (backend, device)."""
    records: dict[tuple[str, str], dict] = {}
    for entry in payload.get("benchmarks", []):
        info = dict(entry.get("extra_info", {}))
        if "figures" not in info:
            continue
        key = (info["backend"], info["device"])
        record = records.setdefault(key, {**info, "figures": {}})
        record["figures"].update(info["figures"])
        for memory in ("peak_rss_mb", "device_peak_mb"):
            if info.get(memory) is not None:
                record[memory] = max(record.get(memory) or 0.0, info[memory])
    return list(records.values())


def scaling_from_pytest_benchmark(payload: dict) -> list[dict]:
    """Rows of the data-parallel scaling table, one per backend and device count."""
    rows = []
    for entry in payload.get("benchmarks", []):
        info = entry.get("extra_info", {})
        for point in info.get("scaling", []):
            rows.append({"backend": info["backend"], "simulated": info["simulated"], **point})
    return rows


def _payloads(folder: Path):
    for backend in BACKENDS:
        path = folder / f"{backend}.json"
        if path.is_file():
            try:
                yield json.loads(path.read_text())
            except json.JSONDecodeError:
                print(f"warning: {path} is not valid JSON; leaving {backend} out", file=sys.stderr)


def read_results(folder: Path) -> list[dict]:
    """Every record in ``folder/<backend>.json``; missing or unreadable files are skipped."""
    return [
        record for payload in _payloads(folder) for record in records_from_pytest_benchmark(payload)
    ]


def read_scaling(folder: Path) -> list[dict]:
    return [row for payload in _payloads(folder) for row in scaling_from_pytest_benchmark(payload)]


def build_report(
    records: Iterable[dict],
    expected_backends: Iterable[str] = BACKENDS,
    scaling: Iterable[dict] = (),
) -> dict:
    """Rows with the derived ratios, which expected backends produced no result, and the
    data-parallel scaling rows where they were measured."""
    rows = [_row(record) for record in records]
    present = {row["backend"] for row in rows}
    return {
        "rows": sorted(rows, key=lambda row: (BACKENDS.index(row["backend"]), row["device"])),
        "missing_backends": [b for b in expected_backends if b not in present],
        "scaling": list(scaling),
    }


def _row(record: dict) -> dict:
    figures = record["figures"]

    def figure(workload: str, name: str):
        return figures.get(workload, {}).get(name)

    training = figure("training", "samples_per_second")
    peak = figure("matmul", "gflops")
    achieved = figure("training", "gflops")
    return {
        **{key: value for key, value in record.items() if key != "figures"},
        "figures": figures,
        "train_samples_per_second": training,
        "first_step_seconds": figure("training", "first_step_seconds"),
        "vs_lecture_keras": _ratio(training, figure("lecture_training", "samples_per_second")),
        "vs_native": _ratio(training, figure("native_training", "samples_per_second")),
        "inference_samples_per_second": figure("inference", "samples_per_second"),
        "latency_p50_ms": figure("latency", "p50_ms"),
        "latency_p95_ms": figure("latency", "p95_ms"),
        "keras_predict_p50_ms": figure("keras_predict_latency", "p50_ms"),
        "serving_speedup": _ratio(
            figure("keras_predict_latency", "p50_ms"), figure("latency", "p50_ms")
        ),
        "achieved_gflops": achieved,
        "matmul_peak_gflops": peak,
        "percent_of_peak": _ratio(achieved, peak, scale=100.0),
        "time_to_accuracy_seconds": figure("time_to_accuracy", "seconds"),
        "lecture_time_to_accuracy_seconds": figure("lecture_time_to_accuracy", "seconds"),
    }


def _ratio(numerator, denominator, scale: float = 1.0):
    if numerator is None or not denominator:
        return None
    return scale * numerator / denominator


COLUMNS = (
    ("backend", "backend", "{}"),
    ("device", "device", "{}"),
    ("train samples/s", "train_samples_per_second", "{:,.0f}"),
    ("first step, s", "first_step_seconds", "{:.2f}"),
    ("× plain Keras", "vs_lecture_keras", "{:.2f}"),
    ("× native", "vs_native", "{:.2f}"),
    ("inference samples/s", "inference_samples_per_second", "{:,.0f}"),
    ("latency p50 / p95 ms", None, None),
    ("× model.predict", "serving_speedup", "{:.1f}"),
    ("GFLOP/s", "achieved_gflops", "{:.1f}"),
    ("% of matmul peak", "percent_of_peak", "{:.0f} %"),
    ("matmul peak GFLOP/s", "matmul_peak_gflops", "{:.0f}"),
    ("peak RSS MB", "peak_rss_mb", "{:,.0f}"),
)


def _cell(row: dict, key: str | None, form: str | None) -> str:
    if key is None:  # the latency pair
        p50, p95 = row.get("latency_p50_ms"), row.get("latency_p95_ms")
        return "–" if p50 is None else f"{p50:.1f} / {p95:.1f}"
    value = row.get(key)
    return "–" if value is None else form.format(value)


def markdown_table(report: dict) -> str:
    """The report as a Markdown table, with the run's settings and versions beneath it."""
    lines = [
        "| " + " | ".join(title for title, _, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in report["rows"]:
        lines.append("| " + " | ".join(_cell(row, key, form) for _, key, form in COLUMNS) + " |")
    for backend in report["missing_backends"]:
        lines.append(f"| {backend} | no result | " + "– | " * (len(COLUMNS) - 2))
    lines += ["", *_settings_lines(report["rows"]), *_accuracy_lines(report["rows"])]
    lines += _profile_lines(report["rows"])
    lines += _scaling_lines(report.get("scaling", []))
    return "\n".join(lines)


def _profile_lines(rows: list[dict]) -> list[str]:
    """Where a training step goes: the bare convolution, the rest of native code, Keras."""
    lines = []
    for row in rows:
        figures = row["figures"]
        rates = [
            figures.get(name, {}).get("samples_per_second")
            for name in ("training", "native_training", "convolution")
        ]
        if not all(rates):
            continue
        step, native, convolution = (1000 * row["batch_size"] / rate for rate in rates)
        peak = _ratio(figures["convolution"].get("gflops"), row["matmul_peak_gflops"], 100.0)
        at_peak = "" if peak is None else f", {peak:.0f} % of the matmul peak"
        lines.append(
            f"- {row['backend']} {row['device']}: {step:.1f} ms per step of "
            f"{row['batch_size']}. The convolution alone, forward and backward: "
            f"{convolution:.1f} ms{at_peak}. The rest of the hand-written step (embedding, "
            f"dropout, pooling, dense layers, loss, Adam): {native - convolution:.1f} ms. "
            f"Keras and seqnet on top of that: {step - native:+.1f} ms."
        )
    return ["", "Where a training step goes (side-by-side rounds):", ""] + lines if lines else []


def _accuracy_lines(rows: list[dict]) -> list[str]:
    """Time to 0.885 test accuracy, where a --full run with --data measured it."""
    lines = []
    for row in rows:
        seqnet, lecture = (
            row["figures"].get("time_to_accuracy"),
            row["figures"].get("lecture_time_to_accuracy"),
        )
        if seqnet is None and lecture is None:
            continue

        def shown(result):
            if result is None:
                return "not measured"
            epochs = f"{result['epochs']} epoch{'s' if result['epochs'] != 1 else ''}"
            if result["seconds"] is None:
                return f"not reached in {epochs}"
            return f"{result['seconds']:.0f} s ({epochs})"

        ratio = _ratio(
            (seqnet or {}).get("seconds"), (lecture or {}).get("seconds")
        )  # lower is better
        lines.append(
            f"- {row['backend']} time to 0.885 test accuracy: seqnet {shown(seqnet)}, "
            f"lecture's plain Keras {shown(lecture)}"
            + ("" if ratio is None else f": {ratio:.2f}× the lecture's time")
        )
    return [""] + lines if lines else []


def _scaling_lines(scaling: list[dict]) -> list[str]:
    if not scaling:
        return []
    simulated = any(row["simulated"] for row in scaling)
    lines = [
        "",
        "Data-parallel scaling (global batch fixed; "
        + (
            "simulated devices sharing the same CPU cores: a functional check, not a speed-up)"
            if simulated
            else "real devices)"
        ),
        "",
        "| backend | devices | samples/s | speed-up | efficiency |",
        "|---|---|---|---|---|",
    ]
    for row in scaling:
        lines.append(
            f"| {row['backend']} | {row['devices']} | {row['samples_per_second']:,.0f} | "
            f"{row['speedup']:.2f} | {row['efficiency']:.2f} |"
        )
    return lines


def _settings_lines(rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        versions = ", ".join(f"{name} {version}" for name, version in row["versions"].items())
        lines.append(
            f"- {row['backend']} on {row['device']} ({row['device_name']}): {versions}; "
            f"batch {row['batch_size']}, sequence length {row['sequence_length']}, "
            f"jit_compile={row['jit_compile']}; {row['date']}"
        )
    return lines


def plot_report(report: dict, path: Path) -> None:
    """Training throughput per backend and device: seqnet beside plain Keras and native code."""
    rows = report["rows"]
    series = (
        ("seqnet", "training"),
        ("plain Keras (lecture)", "lecture_training"),
        ("native framework", "native_training"),
    )
    labels = [f"{row['backend']}\n{row['device']}" for row in rows]
    positions = np.arange(len(rows))
    width = 0.8 / len(series)
    figure = Figure(figsize=(max(6, 2.2 * len(rows) + 2), 4.2), layout="constrained")
    axes = figure.subplots()
    for index, (label, workload) in enumerate(series):
        values = [row["figures"].get(workload, {}).get("samples_per_second") or 0 for row in rows]
        bars = axes.bar(positions + (index - 1) * width, values, width, label=label)
        axes.bar_label(bars, fmt="%.0f", fontsize=8)
    axes.set_xticks(positions, labels)
    axes.set_ylabel("training samples / s (higher is better)")
    batch = rows[0]["batch_size"] if rows else "?"
    axes.set_title(f"IMDB CNN training throughput, batch {batch}")
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    save_figure(figure, path)


def compare(report: dict, baseline: dict, tolerance: float = REGRESSION_TOLERANCE) -> list[str]:
    """Each figure that got more than ``tolerance`` worse than in ``baseline``, described."""
    previous = {(row["backend"], row["device"]): row for row in baseline.get("rows", [])}
    regressions = []
    for row in report["rows"]:
        old_row = previous.get((row["backend"], row["device"]))
        if old_row is None:
            continue
        for (workload, name), higher_is_better in COMPARED.items():
            new = row["figures"].get(workload, {}).get(name)
            old = old_row["figures"].get(workload, {}).get(name)
            if new is None or not old:
                continue
            change = (new - old) / old if higher_is_better else (old - new) / old
            if change < -tolerance:
                regressions.append(
                    f"{row['backend']} {row['device']} {workload} {name}: {old:.4g} -> {new:.4g} "
                    f"({abs(change):.0%} worse)"
                )
    return regressions


def write_report(report: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / "report.json", json.dumps(report, indent=2).encode())
    write_atomically(folder / "report.md", (markdown_table(report) + "\n").encode())
    plot_report(report, folder / "report.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Merge per-backend benchmark results.")
    parser.add_argument("folder", type=Path, help="folder with <backend>.json results")
    parser.add_argument("--compare", type=Path, help="an earlier report.json to compare with")
    args = parser.parse_args(argv)
    report = build_report(read_results(args.folder), scaling=read_scaling(args.folder))
    write_report(report, args.folder)
    print(markdown_table(report))
    print(f"\nWritten: {args.folder}/report.json, report.md, report.png")
    if args.compare is None:
        return 0
    regressions = compare(report, json.loads(args.compare.read_text()))
    for regression in regressions:
        print(f"REGRESSION {regression}")
    print(
        f"{len(regressions)} figures more than {REGRESSION_TOLERANCE:.0%} worse than {args.compare}"
    )
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
