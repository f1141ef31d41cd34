"""The benchmark code itself: FLOP counts, the report merger and the regression check.

No timing is asserted here; figures come from planted numbers.
"""

import copy
import json

import pytest

from benchmarks.report import (
    build_report,
    compare,
    markdown_table,
    read_results,
    read_scaling,
    write_report,
)
from benchmarks.workloads import BenchConfig, figures, flop_count, run_benchmarks
from seqnet.config import ModelConfig


def test_flop_count_matches_a_hand_calculation():
    config = ModelConfig(
        vocabulary_size=20,
        sequence_length=10,
        embedding_dim=4,
        filters=5,
        kernel_size=3,
        hidden_units=6,
    )
    # conv: 8 positions * 5 filters * 3 taps * 4 channels = 480 multiply-adds;
    # dense layers: 5 * 6 + 6 * 1 = 36; one multiply-add is 2 FLOPs, training is 3x forward.
    assert flop_count(config).forward == 2 * (480 + 36)
    assert flop_count(config).training == 3 * 2 * (480 + 36)
    assert flop_count(config).convolution_training == 3 * 2 * 480


def test_lecture_model_costs_about_30_mflop_forward():
    forward = flop_count(ModelConfig()).forward
    assert forward == 2 * (398 * 250 * 3 * 50 + 250 * 250 + 250)
    assert 29e6 < forward < 31e6


def _record(backend, device, training=1000.0, latency=5.0):
    planted = {
        "training": {
            "samples_per_second": training,
            "gflops": training * 0.09,
            "first_step_seconds": 2.0,
        },
        "lecture_training": {"samples_per_second": 800.0},
        "native_training": {"samples_per_second": 500.0},
        "inference": {"samples_per_second": 4000.0},
        "latency": {"p50_ms": latency, "p95_ms": 2 * latency},
        "matmul": {"gflops": 180.0},
    }
    return {
        "backend": backend,
        "device": device,
        "device_name": "test CPU",
        "versions": {"keras": "3"},
        "batch_size": 32,
        "sequence_length": 400,
        "jit_compile": "True",
        "date": "2026-11-29",
        "peak_rss_mb": 900.0,
        "figures": planted,
    }


def _pytest_benchmark_json(records):
    entries = []
    for record in records:
        for name, values in record["figures"].items():
            info = {**record, "figures": {name: values}}
            entries.append({"name": f"test_workload[{name}]", "extra_info": info})
    return {"benchmarks": entries}


def test_merger_derives_ratios_and_peak_fraction():
    row = build_report([_record("jax", "cpu:0")])["rows"][0]
    assert row["vs_lecture_keras"] == pytest.approx(1000 / 800)
    assert row["vs_native"] == pytest.approx(2.0)
    assert row["percent_of_peak"] == pytest.approx(100 * 90 / 180)


def test_merger_handles_a_missing_backend_and_device(tmp_path):
    records = [
        _record("tensorflow", "cpu:0"),
        _record("tensorflow", "gpu:0"),
        _record("torch", "cpu:0"),
    ]
    (tmp_path / "tensorflow.json").write_text(json.dumps(_pytest_benchmark_json(records[:2])))
    (tmp_path / "torch.json").write_text(json.dumps(_pytest_benchmark_json(records[2:])))
    report = build_report(read_results(tmp_path))
    assert [(r["backend"], r["device"]) for r in report["rows"]] == [
        ("tensorflow", "cpu:0"),
        ("tensorflow", "gpu:0"),
        ("torch", "cpu:0"),
    ]
    assert report["missing_backends"] == ["jax"]
    assert "| jax | no result |" in markdown_table(report)


def test_merger_leaves_gaps_for_missing_workloads(tmp_path):
    record = _record("torch", "cpu:0")
    del record["figures"]["native_training"]
    report = build_report([record])
    assert report["rows"][0]["vs_native"] is None
    write_report(report, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"report.json", "report.md", "report.png"}
    assert "| – |" in (tmp_path / "report.md").read_text()


def test_profile_splits_a_step_into_convolution_native_rest_and_keras():
    record = _record("torch", "cpu:0", training=800.0)  # 40 ms per step of 32
    record["figures"]["convolution"] = {"samples_per_second": 1600.0, "gflops": 90.0}  # 20 ms
    # native: 500 samples/s is 64 ms per step, so Keras and seqnet save 24 ms
    table = markdown_table(build_report([record]))
    assert "torch cpu:0: 40.0 ms per step of 32" in table
    assert "forward and backward: 20.0 ms, 50 % of the matmul peak" in table
    assert "(embedding, dropout, pooling, dense layers, loss, Adam): 44.0 ms" in table
    assert "Keras and seqnet on top of that: -24.0 ms" in table


def test_serving_speedup_is_keras_predict_over_seqnet_latency():
    record = _record("jax", "cpu:0", latency=5.0)
    record["figures"]["keras_predict_latency"] = {"p50_ms": 50.0, "p95_ms": 60.0}
    (row,) = build_report([record])["rows"]
    assert row["serving_speedup"] == pytest.approx(10.0)
    assert "| 5.0 / 10.0 | 10.0 |" in markdown_table(build_report([record]))


def test_comparison_flags_a_planted_20_percent_regression():
    baseline = build_report([_record("jax", "cpu:0"), _record("torch", "cpu:0")])
    worse = build_report(
        [_record("jax", "cpu:0", training=800.0), _record("torch", "cpu:0", latency=6.0)]
    )
    regressions = compare(worse, baseline)
    assert any(
        "jax cpu:0 training samples_per_second" in r and "20% worse" in r for r in regressions
    )
    assert any("torch cpu:0 latency p50_ms" in r for r in regressions)
    assert compare(copy.deepcopy(baseline), baseline) == []


def test_small_changes_are_not_regressions():
    baseline = build_report([_record("jax", "cpu:0")])
    assert compare(build_report([_record("jax", "cpu:0", training=950.0)]), baseline) == []


def test_figures_turn_rounds_into_throughput():
    from benchmarks.workloads import Workload

    config = BenchConfig()
    workload = Workload("training", lambda: None, samples_per_run=100, first_step_seconds=3.0)
    result = figures(workload, [0.5, 0.4, 0.6], config)
    assert result["samples_per_second"] == pytest.approx(200.0)  # the median round
    assert result["gflops"] == pytest.approx(200.0 * flop_count(config.model).training / 1e9)


def test_every_workload_runs_on_a_tiny_config():
    tiny = ModelConfig(
        vocabulary_size=50, sequence_length=12, embedding_dim=4, filters=4, hidden_units=4
    )
    config = BenchConfig(
        batch_size=8,
        train_samples=32,
        rounds=1,
        inference_samples=16,
        latency_calls=3,
        matmul_size=32,
        model=tiny,
    )
    (record,) = run_benchmarks(config, ["cpu:0"], progress=lambda message: None)
    assert set(record["figures"]) == {
        "matmul",
        "training",
        "training_default_batch",
        "lecture_training",
        "native_training",
        "convolution",
        "inference",
        "latency",
        "keras_predict_latency",
    }
    for name in ("training", "lecture_training", "native_training", "convolution", "inference"):
        assert record["figures"][name]["samples_per_second"] > 0
    default_batch = record["figures"]["training_default_batch"]
    assert default_batch["batch_size"] == config.default_batch_size
    assert default_batch["samples_per_second"] > 0 and default_batch["first_step_seconds"] > 0
    assert record["figures"]["latency"]["p95_ms"] >= record["figures"]["latency"]["p50_ms"] > 0


def test_scaling_rows_are_merged_into_the_report(tmp_path):
    scaling_entry = {
        "name": "test_data_parallel_scaling",
        "extra_info": {
            "backend": "jax",
            "simulated": True,
            "scaling": [
                {"devices": 1, "samples_per_second": 400.0, "speedup": 1.0, "efficiency": 1.0},
                {"devices": 2, "samples_per_second": 440.0, "speedup": 1.1, "efficiency": 0.55},
            ],
        },
    }
    payload = _pytest_benchmark_json([_record("jax", "cpu:0")])
    payload["benchmarks"].append(scaling_entry)
    (tmp_path / "jax.json").write_text(json.dumps(payload))
    report = build_report(read_results(tmp_path), scaling=read_scaling(tmp_path))
    table = markdown_table(report)
    assert "| jax | 2 | 440 | 1.10 | 0.55 |" in table
    assert "functional check" in table


def test_time_to_accuracy_reports_epochs_and_seconds():
    from benchmarks.workloads import time_to_accuracy

    result = time_to_accuracy("synthetic", target=0.0, epochs=2)
    assert result["epochs"] == 1 and result["seconds"] == result["seconds_per_epoch"][0] > 0
    unreachable = time_to_accuracy("synthetic", target=1.1, epochs=1)
    assert unreachable["seconds"] is None and len(unreachable["test_accuracy_per_epoch"]) == 1
    row = build_report([{**_record("jax", "cpu:0"), "figures": {"time_to_accuracy": result}}])[
        "rows"
    ][0]
    table = markdown_table({"rows": [row], "missing_backends": []})
    assert f"time to 0.885 test accuracy: seqnet {result['seconds']:.0f} s (1 epoch)," in table
    lecture = {**result, "workload": "lecture_time_to_accuracy", "seconds": 4 * result["seconds"]}
    row["figures"]["lecture_time_to_accuracy"] = lecture
    table = markdown_table({"rows": [row], "missing_backends": []})
    assert ": 0.25× the lecture's time" in table
