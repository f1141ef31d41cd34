"""Merge per-backend benchmark results into one report: JSON, a Markdown table and a bar chart.

Imports neither keras nor any backend, so the merge runs in an environment without one.
Run as ``python -m benchmarks.report RESULTS_FOLDER [--compare OLD_REPORT]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
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
    # Absent from reports written before seqnet measured the default recipe's batch: skipped.
    ("training_default_batch", "samples_per_second"): True,
    ("training_default_batch", "first_step_seconds"): False,
    ("bucketed_training", "samples_per_second"): True,
    ("serving", "reviews_per_second"): True,
    ("serving", "p95_ms"): False,
}
# Workloads measured once per seed; the merge gathers their runs into one mean.
TIME_TO_ACCURACY = ("time_to_accuracy", "lecture_time_to_accuracy")
# The hook for benchmarks/serving_load.py: a pytest-benchmark entry whose extra_info holds
# environment(...), memory(...) and figures={"serving": {...}} with these fields (optional
# ones: concurrency, reviews_per_request) is merged and rendered like every other workload.
SERVING_FIELDS = ("requests_per_second", "reviews_per_second", "p50_ms", "p95_ms", "p99_ms")


def records_from_pytest_benchmark(payload: dict) -> list[dict]:
    """Group a pytest-benchmark JSON's entries into one record per (backend, device)."""
    records: dict[tuple[str, str], dict] = {}
    for entry in payload.get("benchmarks", []):
        info = dict(entry.get("extra_info", {}))
        if "figures" not in info:
            continue
        key = (info["backend"], info["device"])
        record = records.setdefault(key, {**info, "figures": {}})
        merge_figures(record["figures"], info["figures"])
        for memory in ("peak_rss_mb", "device_peak_mb"):
            if info.get(memory) is not None:
                record[memory] = max(record.get(memory) or 0.0, info[memory])
    return list(records.values())


def merge_figures(into: dict, figures: dict) -> None:
    """Add one entry's figures to a record's; runs of time to accuracy (one entry per seed)
    are gathered and averaged instead of replacing each other."""
    for name, figure in figures.items():
        if name in TIME_TO_ACCURACY and name in into:
            figure = summarize_runs(runs(into[name]) + runs(figure))
        into[name] = figure


def runs(figure: dict) -> list[dict]:
    """The single-seed runs behind a time-to-accuracy figure; a report written before seeds
    were averaged holds one run (seed 0) as the figure itself."""
    return figure.get("runs", [{"seed": 0, **figure}])


def summarize_runs(seed_runs: list[dict]) -> dict:
    """Time to accuracy over seeds: the mean seconds and epochs of the runs that reached the
    target (a run that never did has no time to average), how many did, and every run."""
    reached = [run for run in seed_runs if run["seconds"] is not None]
    finals = [_final_accuracy(run) for run in seed_runs]
    return {
        "workload": seed_runs[0]["workload"],
        "target": seed_runs[0]["target"],
        "seconds": _mean([run["seconds"] for run in reached]),
        "epochs": _mean([run["epochs"] for run in reached]),
        "final_accuracy": _mean(finals),
        "reached": len(reached),
        "runs": sorted(seed_runs, key=lambda run: run["seed"]),
    }


def _final_accuracy(run: dict) -> float | None:
    """The test accuracy after a run's last epoch (old reports have only the per-epoch list)."""
    accuracies = run.get("test_accuracy_per_epoch") or [None]
    return run.get("final_accuracy", accuracies[-1])


def _mean(values: list) -> float | None:
    """The mean of the values that are not None; None when there are none."""
    values = [value for value in values if value is not None]
    return sum(values) / len(values) if values else None


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
    rows = _with_device_peaks([_row(record) for record in records])
    present = {row["backend"] for row in rows}
    return {
        "rows": sorted(rows, key=lambda row: (BACKENDS.index(row["backend"]), row["device"])),
        "missing_backends": [b for b in expected_backends if b not in present],
        "scaling": list(scaling),
    }


def _row(record: dict) -> dict:
    """One table row: the record with the figures the table, the ratios and --compare use."""
    figures = record["figures"]

    def figure(workload: str, name: str):
        return figures.get(workload, {}).get(name)

    return {
        **{key: value for key, value in record.items() if key != "figures"},
        "figures": figures,
        **_training_fields(figure),
        "inference_samples_per_second": figure("inference", "samples_per_second"),
        "latency_p50_ms": figure("latency", "p50_ms"),
        "latency_p95_ms": figure("latency", "p95_ms"),
        "keras_predict_p50_ms": figure("keras_predict_latency", "p50_ms"),
        "serving_speedup": _ratio(
            figure("keras_predict_latency", "p50_ms"), figure("latency", "p50_ms")
        ),
        **{f"serving_{name}": figure("serving", name) for name in SERVING_FIELDS},
        **_accuracy_fields(figures),
        "data_load_cold_seconds": figure("data_load", "cold_seconds"),
        "data_load_warm_seconds": figure("data_load", "warm_seconds"),
    }


def _with_device_peaks(rows: list[dict]) -> list[dict]:
    """Rows whose peak is the device's, the best matmul rate any backend reached on it, and
    the training and bare convolution rates as percentages of it.

    Backends call different BLAS libraries (torch's MKL runs at half speed on AMD CPUs), so a
    backend's own matmul would make a slower library look closer to the chip's limit.
    """
    best: dict[str, dict] = {}
    for row in rows:
        own = row["figures"].get("matmul", {}).get("gflops")
        leader = best.get(row["device_name"])
        if own and (leader is None or own > leader["gflops"]):
            best[row["device_name"]] = {"gflops": own, "backend": row["backend"]}
    for row in rows:
        leader = best.get(row["device_name"], {})
        peak = leader.get("gflops")
        convolution = row["figures"].get("convolution", {}).get("gflops")
        row["matmul_peak_gflops"], row["peak_backend"] = peak, leader.get("backend")
        row["percent_of_peak"] = _ratio(row["achieved_gflops"], peak, 100.0)
        row["convolution_percent_of_peak"] = _ratio(convolution, peak, 100.0)
    return rows


def _training_fields(figure) -> dict:
    """Training throughput at both batches and bucketed, the first steps, and the ratios to
    baselines."""
    training = figure("training", "samples_per_second")
    achieved = figure("training", "gflops")
    return {
        "train_samples_per_second": training,
        "first_step_seconds": figure("training", "first_step_seconds"),
        "default_batch_size": figure("training_default_batch", "batch_size"),
        "default_batch_samples_per_second": figure("training_default_batch", "samples_per_second"),
        "default_batch_first_step_seconds": figure("training_default_batch", "first_step_seconds"),
        "bucketed_samples_per_second": figure("bucketed_training", "samples_per_second"),
        "bucketed_mean_tokens": figure("bucketed_training", "mean_tokens"),
        "vs_lecture_keras": _ratio(training, figure("lecture_training", "samples_per_second")),
        "vs_native": _ratio(training, figure("native_training", "samples_per_second")),
        "achieved_gflops": achieved,  # the peak and percentages: _with_device_peaks
    }


def _accuracy_fields(figures: dict) -> dict:
    """Mean time to accuracy per side; their ratio only when every seed reached the target on
    both sides, since a mean that leaves out a failed seed flatters that side."""
    seqnet, lecture = (
        summarize_runs(runs(figures[name])) if name in figures else None
        for name in TIME_TO_ACCURACY
    )
    complete = all(s is not None and s["reached"] == len(s["runs"]) for s in (seqnet, lecture))
    return {
        "time_to_accuracy_seconds": seqnet and seqnet["seconds"],
        "lecture_time_to_accuracy_seconds": lecture and lecture["seconds"],
        "time_to_accuracy_ratio": (
            _ratio(seqnet["seconds"], lecture["seconds"]) if complete else None
        ),
    }


def _ratio(numerator, denominator, scale: float = 1.0):
    if numerator is None or not denominator:
        return None
    return scale * numerator / denominator


def _pair(first: str, second: str, form: str) -> Callable[[dict], str]:
    """A cell showing two row fields as "a / b", each "–" where it was not measured."""

    def cell(row: dict) -> str:
        values = (row.get(first), row.get(second))
        if values == (None, None):
            return "–"
        return " / ".join("–" if value is None else form.format(value) for value in values)

    return cell


def _default_batch_cell(row: dict) -> str:
    """Training samples/s at the default recipe's batch, with that batch in brackets."""
    rate, batch = row.get("default_batch_samples_per_second"), row.get("default_batch_size")
    return "–" if rate is None else f"{rate:,.0f} ({batch})"


def _bucketed_cell(row: dict) -> str:
    """Training samples/s in length-bucketed batches, with their mean tokens per review."""
    rate, tokens = row.get("bucketed_samples_per_second"), row.get("bucketed_mean_tokens")
    return "–" if rate is None else f"{rate:,.0f} ({tokens:.0f} tokens)"


# (title, row field, format); a callable instead of a field renders the whole cell.
COLUMNS = (
    ("backend", "backend", "{}"),
    ("device", "device", "{}"),
    ("train samples/s", "train_samples_per_second", "{:,.0f}"),
    ("at default batch", _default_batch_cell, None),
    ("bucketed", _bucketed_cell, None),
    (
        "first step s, both batches",
        _pair("first_step_seconds", "default_batch_first_step_seconds", "{:.2f}"),
    ),
    ("× plain Keras", "vs_lecture_keras", "{:.2f}"),
    ("× native", "vs_native", "{:.2f}"),
    ("inference samples/s", "inference_samples_per_second", "{:,.0f}"),
    ("latency p50 / p95 ms", _pair("latency_p50_ms", "latency_p95_ms", "{:.1f}")),
    ("× model.predict", "serving_speedup", "{:.1f}"),
    ("GFLOP/s", "achieved_gflops", "{:.1f}"),
    ("% of matmul peak", "percent_of_peak", "{:.0f} %"),
    ("matmul peak GFLOP/s", "matmul_peak_gflops", "{:.0f}"),
    ("peak RSS MB", "peak_rss_mb", "{:,.0f}"),
)


def _cell(row: dict, key: str | Callable[[dict], str], form: str | None = None) -> str:
    """One field of ``row`` formatted with ``form``, or a callable's own rendering of the row."""
    if callable(key):
        return key(row)
    value = row.get(key)
    return "–" if value is None else form.format(value)


def markdown_table(report: dict) -> str:
    """The report as a Markdown table, with the run's settings and versions beneath it."""
    lines = [
        "| " + " | ".join(column[0] for column in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in report["rows"]:
        lines.append("| " + " | ".join(_cell(row, *column[1:]) for column in COLUMNS) + " |")
    for backend in report["missing_backends"]:
        lines.append(f"| {backend} | no result | " + "– | " * (len(COLUMNS) - 2))
    rows = report["rows"]
    lines += ["", *_settings_lines(rows), *_accuracy_lines(rows), *_data_load_lines(rows)]
    lines += _serving_lines(rows) + _profile_lines(rows) + _step_profile_lines(rows)
    lines += _peak_lines(rows)
    lines += _scaling_lines(report.get("scaling", []))
    return "\n".join(lines)


def _profile_lines(rows: list[dict]) -> list[str]:
    """Where a training step goes: the bare convolution, the rest of native code, and what
    seqnet's step differs by (its sparse backward saves, Keras' per-step work adds)."""
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
        peak = row["convolution_percent_of_peak"]
        at_peak = "" if peak is None else f", {peak:.0f} % of the matmul peak"
        lines.append(
            f"- {row['backend']} {row['device']}: seqnet {step:.1f} ms per step of "
            f"{row['batch_size']}; the same step hand-written with the stock dense backward "
            f"{native:.1f} ms = the convolution's forward and backward {convolution:.1f} ms"
            f"{at_peak} + the rest (embedding, dropout, pooling, dense layers, loss, Adam) "
            f"{native - convolution:.1f} ms. seqnet's step differs by {step - native:+.1f} ms: "
            "its arg-max backward saves part of the convolution's backward and Keras' "
            "per-step work adds; negative where the saving is the larger."
        )
    return ["", "Where a training step goes (side-by-side rounds):", ""] + lines if lines else []


def _step_profile_lines(rows: list[dict]) -> list[str]:
    """A table of each piece of seqnet's step (benchmarks/step_profile.py), per backend."""
    profiled = [row for row in rows if "step_profile" in row["figures"]]
    if not profiled:
        return []
    profiles = [row["figures"]["step_profile"] for row in profiled]
    first = profiles[0]
    header = " | ".join(f"{row['backend']} {row['device']}" for row in profiled)
    lines = [
        "",
        f"seqnet's training step piece by piece, at batch {first['batch_size']} x "
        f"{first['tokens']} tokens: what taking each piece away saves, in this order "
        f"(benchmarks/step_profile.py; ms per step, best of {first['rounds']} rounds, ± the "
        "gaps between the two best rounds of the rungs a piece is the difference of, share of "
        "the step, or within noise):",
        "",
        f"| piece | {header} |",
        "|---|" + "---|" * len(profiled),
    ]
    for piece in first["pieces"]:
        cells = [
            piece_cell(profile, piece) if piece in profile["pieces"] else "–"
            for profile in profiles
        ]
        lines.append(f"| {piece} | " + " | ".join(cells) + " |")
    steps = " | ".join(f"**{profile['step_ms']:.2f}**" for profile in profiles)
    return [*lines, f"| the whole step | {steps} |"]


def piece_cell(profile: dict, name: str) -> str:
    """``"3.72 ± 0.40 (11 %)"``: a step profile's piece (benchmarks/step_profile.py), in
    milliseconds, with its noise and its share of the step, or ``"within noise"`` for the
    share of a piece no larger than its noise."""
    ms, error = profile["pieces"][name], profile["noise"][name]
    share = "within noise" if abs(ms) <= error else f"{100 * ms / profile['step_ms']:.0f} %"
    return f"{ms:.2f} ± {error:.2f} ({share})"


def _peak_lines(rows: list[dict]) -> list[str]:
    """How the peak was measured, and a warning for any rate above it."""
    lines = []
    for row in rows:
        if not row["matmul_peak_gflops"]:
            continue
        matmul = row["figures"].get("matmul", {})
        own = matmul.get("gflops")
        own_rate = "" if own is None else f"; {row['backend']}'s own matmul: {own:.0f} GFLOP/s"
        lines.append(
            f"- {row['backend']} {row['device']}: peak {row['matmul_peak_gflops']:.0f} GFLOP/s, "
            f"{row['peak_backend']}'s float32 matmul, "
            f"{matmul.get('peak_method', 'median round')}{own_rate}."
        )
        rates = {
            "training": row["percent_of_peak"],
            "the convolution": row["convolution_percent_of_peak"],
        }
        for name, percent in rates.items():
            if percent is not None and percent > 100:
                lines.append(
                    f"  - Warning: {name} ran at {percent:.0f} % of that peak. A rate cannot "
                    "pass what the chip does, so the peak's rounds were slowed by other work "
                    "on the machine: rerun on a quiet one before trusting these percentages."
                )
    head = "GFLOP/s count the work each side does (seqnet's arg-max backward reads one window"
    head += " per filter, the others all of them). The peak is the device's: the fastest"
    head += " backend's matmul on it, since their BLAS libraries differ:"
    return ["", head, "", *lines] if lines else []


def _accuracy_lines(rows: list[dict]) -> list[str]:
    """Time to the target test accuracy, where a --full run with --data measured it: each
    seed's run side by side, then the means and their ratio (lower is better for seqnet)."""
    measured = [row for row in rows if any(name in row["figures"] for name in TIME_TO_ACCURACY)]
    if not measured:
        return []
    target = next(
        row["figures"][name]["target"]
        for row in measured
        for name in TIME_TO_ACCURACY
        if name in row["figures"]
    )
    return [
        "",
        f"Time to {target} test accuracy (training only, compilation included; the mean is "
        "over the seeds that reached it, the ratio only where every seed did on both sides):",
        "",
        "| backend | device | seed | seqnet s | epochs | final accuracy "
        "| lecture's Keras s | epochs | final accuracy | seqnet / lecture |",
        "|" + "---|" * 10,
        *(line for row in measured for line in _accuracy_rows(row)),
        *_baseline_lines(rows),
    ]


def _baseline_lines(rows: list[dict]) -> list[str]:
    """The practitioner's baseline, measured once per backend's run: every measurement."""
    baselines = [
        row["figures"]["tfidf_baseline"] for row in rows if "tfidf_baseline" in row["figures"]
    ]
    if not baselines:
        return []
    seconds = ", ".join(f"{baseline['seconds']:.1f}" for baseline in baselines)
    accuracy = baselines[0]["test_accuracy"]  # deterministic: the same in every run
    return [
        "",
        f"The practitioner's baseline on the same archive and cores, {baselines[0]['baseline']}: "
        f"test accuracy {accuracy:.3f} after {seconds} s of vectorizing and fitting (one figure "
        "per backend's run; reading the archive is not counted, as above).",
    ]


def _accuracy_rows(row: dict) -> list[str]:
    """One backend and device: a line per seed, then the means and the ratio of means."""
    sides = [
        summarize_runs(runs(row["figures"][name])) if name in row["figures"] else None
        for name in TIME_TO_ACCURACY
    ]
    by_seed = [{run["seed"]: run for run in side["runs"]} if side else {} for side in sides]
    lines = [
        _accuracy_row(row, str(seed), [_run_cells(side.get(seed)) for side in by_seed], "")
        for seed in sorted(set(by_seed[0]) | set(by_seed[1]))
    ]
    ratio = row["time_to_accuracy_ratio"]
    ratio_cell = "–" if ratio is None else f"{ratio:.2f}×"
    return [*lines, _accuracy_row(row, "mean", [_mean_cells(side) for side in sides], ratio_cell)]


def _accuracy_row(row: dict, seed: str, sides: list[list[str]], ratio: str) -> str:
    """A line of the time-to-accuracy table: seqnet's cells, then the lecture's."""
    cells = [row["backend"], row["device"], seed, *sides[0], *sides[1], ratio]
    return "| " + " | ".join(cells) + " |"


def _run_cells(run: dict | None) -> list[str]:
    """Seconds, epochs and final accuracy of one seed's run."""
    if run is None:
        return ["not measured", "–", "–"]
    seconds = "not reached" if run["seconds"] is None else f"{run['seconds']:.0f}"
    accuracy = _final_accuracy(run)
    return [seconds, str(run["epochs"]), "–" if accuracy is None else f"{accuracy:.3f}"]


def _mean_cells(summary: dict | None) -> list[str]:
    """Mean seconds with how many seeds reached the target, mean epochs, mean accuracy."""
    if summary is None:
        return ["not measured", "–", "–"]
    count = f"{summary['reached']} of {len(summary['runs'])} reached"
    seconds = "–" if summary["seconds"] is None else f"{summary['seconds']:.0f}"
    epochs = "–" if summary["epochs"] is None else f"{summary['epochs']:.1f}"
    accuracy = summary["final_accuracy"]
    return [f"{seconds} ({count})", epochs, "–" if accuracy is None else f"{accuracy:.3f}"]


def _data_load_lines(rows: list[dict]) -> list[str]:
    """Reading the real data set cold (archive parsed, then cached) and warm (from the cache)."""
    lines = []
    for row in rows:
        if row["data_load_cold_seconds"] is None:
            continue
        source = row["figures"]["data_load"].get("source", "the archive")
        lines.append(
            f"- {row['backend']} {row['device']}: `read_dataset` of {source}: cold (empty "
            f"cache) {row['data_load_cold_seconds']:.1f} s, warm (cached) "
            f"{row['data_load_warm_seconds']:.2f} s"
        )
    return ["", "Data load:", "", *lines] if lines else []


SERVING_LOAD_LABELS = {
    "concurrency": "concurrent clients",
    "reviews_per_request": "reviews per request",
    "load_generator": "as the load generator",  # httpx, in Python, leaves the server less CPU
}


def _serving_lines(rows: list[dict]) -> list[str]:
    """Serving under load (benchmarks/serving_load.py), where it was measured."""
    lines = []
    for row in rows:
        if row["serving_requests_per_second"] is None:
            continue
        serving = row["figures"]["serving"]
        load = ", ".join(
            f"{serving[name]} {label}"
            for name, label in SERVING_LOAD_LABELS.items()
            if serving.get(name) is not None
        )
        lines.append(
            f"- {row['backend']} {row['device']}: {row['serving_requests_per_second']:,.0f} "
            f"requests/s, {row['serving_reviews_per_second']:,.0f} reviews/s; latency p50 / p95 "
            f"/ p99 {row['serving_p50_ms']:.1f} / {row['serving_p95_ms']:.1f} / "
            f"{row['serving_p99_ms']:.1f} ms" + (f" ({load})" if load else "")
        )
    return ["", "Serving under load:", "", *lines] if lines else []


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
    default_batch = next(
        (row["default_batch_size"] for row in rows if row["default_batch_size"]), "default"
    )
    series = (
        ("seqnet", "training"),
        (f"seqnet, batch {default_batch} (default recipe)", "training_default_batch"),
        ("seqnet, length-bucketed batches", "bucketed_training"),
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
        offset = (index - (len(series) - 1) / 2) * width  # the group centred on its label
        bars = axes.bar(positions + offset, values, width, label=label)
        axes.bar_label(bars, fmt="%.0f", fontsize=8)
    axes.set_xticks(positions, labels)
    axes.set_ylabel("training samples / s (higher is better)")
    batch = rows[0]["batch_size"] if rows else "?"
    axes.set_title(f"IMDB CNN training throughput, batch {batch} x 400 tokens unless stated")
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
