"""The benchmark code itself: FLOP counts, the report merger and the regression check.

No timing is asserted here; figures come from planted numbers.
"""

import copy
import json

import keras
import numpy as np
import pytest
from conftest import write_tiny_archive

from benchmarks.baselines import tfidf_logistic_regression
from benchmarks.report import (
    build_report,
    compare,
    markdown_table,
    read_results,
    read_scaling,
    records_from_pytest_benchmark,
    summarize_runs,
    write_report,
)
from benchmarks.step_profile import (
    REMAINDER,
    RUNGS,
    noise,
    rung_inputs,
    rung_model,
    step_profile,
)
from benchmarks.workloads import (
    BenchConfig,
    bucketed_training_workload,
    data_load_seconds,
    figures,
    flop_count,
    run_benchmarks,
    time_to_accuracy,
)
from seqnet.config import ModelConfig, TrainConfig


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
    # seqnet's arg-max backward: the two gradients read 1 window per filter, not all 8.
    assert flop_count(config).sparse_training == 2 * (480 + 36) + 2 * 2 * (60 + 36)


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
        "training_default_batch": {
            "samples_per_second": 1200.0,
            "first_step_seconds": 2.5,
            "batch_size": 64,
        },
        "bucketed_training": {"samples_per_second": 1500.0, "mean_tokens": 249.6},
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
    # native: 500 samples/s is 64 ms per step, so seqnet's step is 24 ms shorter
    table = markdown_table(build_report([record]))
    assert "torch cpu:0: seqnet 40.0 ms per step of 32" in table
    assert "dense backward 64.0 ms = the convolution's forward and backward 20.0 ms" in table
    assert "50 % of the matmul peak + the rest" in table
    assert "(embedding, dropout, pooling, dense layers, loss, Adam) 44.0 ms" in table
    assert "seqnet's step differs by -24.0 ms" in table
    assert "Warning" not in table


TINY_NETWORK = ModelConfig(
    vocabulary_size=50, sequence_length=12, embedding_dim=4, filters=4, hidden_units=4
)


def test_each_rung_of_the_step_profile_takes_away_what_it_names():
    models = {rung.name: rung_model(rung, TINY_NETWORK) for rung in RUNGS}

    def trainable(name):
        return {layer.name for layer in models[name].layers if layer.trainable_weights}

    def dropout_rates(name):
        return {layer.rate for layer in models[name].layers if hasattr(layer, "rate")}

    everything = {"embedding", "convolution", "hidden", "logit"}
    assert trainable("seqnet's step") == trainable("dropout's masks") == everything
    assert isinstance(models["seqnet's step"].optimizer, keras.optimizers.Adam)
    assert isinstance(models["Adam's moments"].optimizer, keras.optimizers.SGD)
    assert dropout_rates("Adam's moments") == {TINY_NETWORK.dropout_rate}
    assert dropout_rates("dropout's masks") == {0.0}
    assert trainable("embedding's gradient") == everything - {"embedding"}
    assert trainable("convolution's backward") == {"hidden", "logit"}
    train = {rung.name: rung.train for rung in RUNGS}
    assert train["convolution's backward"] and not train["dense layers' backward"]
    reviews = (np.ones((8, TINY_NETWORK.sequence_length), "int32"), np.ones((8, 1), "float32"))
    lengths = [rung_inputs(rung, TINY_NETWORK, reviews)[0].shape[1] for rung in RUNGS[-2:]]
    assert lengths == [TINY_NETWORK.sequence_length, TINY_NETWORK.kernel_size]


def test_the_step_profile_pieces_sum_to_the_step():
    profile = step_profile(TINY_NETWORK, batch_size=8, samples=32, rounds=2)
    assert list(profile["pieces"]) == [rung.name for rung in RUNGS[1:]] + [REMAINDER]
    assert sum(profile["pieces"].values()) == pytest.approx(profile["step_ms"])
    assert profile["step_ms"] == profile["rungs"]["seqnet's step"] > 0
    assert profile["pieces"][REMAINDER] == profile["rungs"][RUNGS[-1].name]
    assert list(profile["noise"]) == list(profile["pieces"])
    assert all(error >= 0 for error in profile["noise"].values())
    with pytest.raises(ValueError, match="at least 2 rounds"):
        step_profile(TINY_NETWORK, batch_size=8, samples=32, rounds=1)


def test_a_pieces_noise_adds_the_gaps_between_its_rungs_two_best_rounds():
    times = {"step": [10.0, 12.0, 11.0], "less": [9.0, 5.0, 6.5], "least": [2.5, 2.0, 3.0]}
    assert noise(times) == {"less": 2.5, "least": 2.0, REMAINDER: 0.5}


def test_the_step_profile_renders_as_a_table_per_backend():
    record = _record("jax", "cpu:0")
    pieces = {"Adam's moments": -0.5, "dropout's masks": 3.0, REMAINDER: 7.5}
    record["figures"]["step_profile"] = {
        "batch_size": 32,
        "tokens": 400,
        "step_ms": 10.0,
        "rounds": 5,
        "pieces": pieces,
        "noise": {"Adam's moments": 0.5, "dropout's masks": 0.25, REMAINDER: 0.1},
    }
    table = markdown_table(build_report([record, _record("torch", "cpu:0")]))
    assert "at batch 32 x 400 tokens" in table and "best of 5 rounds" in table
    assert "| piece | jax cpu:0 |" in table  # torch has no profile: no empty column
    assert "| Adam's moments | -0.50 ± 0.50 (within noise) |" in table
    assert "| dropout's masks | 3.00 ± 0.25 (30 %) |" in table
    assert "| the whole step | **10.00** |" in table


def test_a_rate_above_the_peak_is_flagged_not_printed_bare():
    record = _record("jax", "cpu:0")
    record["figures"]["matmul"] = {"gflops": 60.0, "peak_method": "best of 10 rounds"}
    record["figures"]["convolution"] = {"samples_per_second": 1600.0, "gflops": 90.0}
    table = markdown_table(build_report([record]))
    assert "peak 60 GFLOP/s, jax's float32 matmul, best of 10 rounds" in table
    assert "Warning: training ran at 150 % of that peak" in table
    assert "Warning: the convolution ran at 150 % of that peak" in table


def test_the_peak_is_the_fastest_backends_matmul_on_the_device():
    slow_blas = _record("torch", "cpu:0")
    slow_blas["figures"]["matmul"] = {"gflops": 90.0}
    rows = build_report([_record("jax", "cpu:0"), slow_blas])["rows"]
    assert [row["matmul_peak_gflops"] for row in rows] == [180.0, 180.0]
    assert rows[1]["percent_of_peak"] == pytest.approx(100 * 90 / 180)  # not 100 % of its own
    table = markdown_table(build_report([_record("jax", "cpu:0"), slow_blas]))
    assert "torch cpu:0: peak 180 GFLOP/s, jax's float32 matmul" in table
    assert "torch's own matmul: 90 GFLOP/s" in table


def test_the_peak_is_the_best_round():
    from benchmarks.workloads import Workload

    config = BenchConfig()
    result = figures(Workload("matmul", lambda: None, samples_per_run=1), [0.5, 0.2, 0.4], config)
    assert result["gflops"] == pytest.approx(2 * config.matmul_size**3 / 0.2 / 1e9)
    assert result["peak_method"] == "best of 3 rounds"


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
    # seqnet's own step counts the work its arg-max backward does; the lecture's the dense.
    assert result["gflops"] == pytest.approx(200.0 * flop_count(config.model).sparse_training / 1e9)
    lecture = figures(Workload("lecture_training", lambda: None, 100), [0.5], config)
    assert lecture["gflops"] == pytest.approx(200.0 * flop_count(config.model).training / 1e9)


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
        "bucketed_training",
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
    assert record["figures"]["bucketed_training"]["samples_per_second"] > 0


def test_bucketed_training_runs_the_trimmed_batches_seqnet_train_runs():
    network = ModelConfig(
        vocabulary_size=50, sequence_length=120, embedding_dim=4, filters=4, hidden_units=4
    )
    config = BenchConfig(batch_size=8, train_samples=64, model=network)
    workload = bucketed_training_workload(config, "cpu:0")
    result = figures(workload, [0.5], config)
    # Reviews of 30 to 120 tokens in buckets of 50: batches of 50, 100 and 120 tokens.
    assert 50 < result["mean_tokens"] < network.sequence_length
    assert result["samples_per_second"] == pytest.approx(64 / 0.5) and "gflops" not in result


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


def test_time_to_accuracy_reports_epochs_seconds_seed_and_final_accuracy():
    result = time_to_accuracy("synthetic", target=0.0, epochs=2, seed=1, device="cpu:0")
    assert result["epochs"] == 1 and result["seconds"] == result["seconds_per_epoch"][0] > 0
    assert result["seed"] == 1
    assert result["final_accuracy"] == result["test_accuracy_per_epoch"][-1]
    unreachable = time_to_accuracy("synthetic", target=1.1, epochs=1, lecture=True)
    assert unreachable["seconds"] is None and len(unreachable["test_accuracy_per_epoch"]) == 1
    assert unreachable["workload"] == "lecture_time_to_accuracy"


def _run(workload, seed, seconds, accuracy=0.889, epochs=2):
    """One seed's time-to-accuracy result as ``time_to_accuracy`` returns it."""
    return {
        "workload": workload,
        "target": 0.885,
        "seconds": seconds,
        "epochs": epochs,
        "seed": seed,
        "final_accuracy": accuracy,
        "seconds_per_epoch": [seconds or 50.0] * epochs,
        "test_accuracy_per_epoch": [0.87] * (epochs - 1) + [accuracy],
    }


def _seed_entries(seqnet_seconds, lecture_seconds):
    """pytest-benchmark entries as benchmarks/test_time_to_accuracy.py writes them, one per
    seed; None stands for a seed that never reached the target."""
    entries = []
    for seed, (ours, theirs) in enumerate(zip(seqnet_seconds, lecture_seconds, strict=True)):
        runs = [
            _run("time_to_accuracy", seed, ours),
            _run("lecture_time_to_accuracy", seed, theirs),
        ]
        figures = {run["workload"]: summarize_runs([run]) for run in runs}
        entries.append({"extra_info": {**_record("jax", "cpu:0"), "figures": figures}})
    return entries


def read_results_from(entries):
    """Records merged from pytest-benchmark entries, as ``read_results`` merges a file's."""
    return records_from_pytest_benchmark({"benchmarks": entries})


def test_time_to_accuracy_is_the_mean_over_seeds_with_a_ratio_of_means(tmp_path):
    payload = _pytest_benchmark_json([_record("jax", "cpu:0")])
    payload["benchmarks"] += _seed_entries([60.0, 70.0, 80.0], [100.0, 140.0, 120.0])
    (tmp_path / "jax.json").write_text(json.dumps(payload))
    (row,) = build_report(read_results(tmp_path))["rows"]
    assert [run["seed"] for run in row["figures"]["time_to_accuracy"]["runs"]] == [0, 1, 2]
    assert row["time_to_accuracy_seconds"] == pytest.approx(70.0)
    assert row["lecture_time_to_accuracy_seconds"] == pytest.approx(120.0)
    assert row["time_to_accuracy_ratio"] == pytest.approx(70 / 120)
    table = markdown_table(build_report(read_results(tmp_path)))
    assert "| jax | cpu:0 | 1 | 70 | 2 | 0.889 | 140 | 2 | 0.889 |  |" in table
    assert (
        "| jax | cpu:0 | mean | 70 (3 of 3 reached) | 2.0 | 0.889 | 120 (3 of 3 reached)" in table
    )
    assert "| 120 (3 of 3 reached) | 2.0 | 0.889 | 0.58× |" in table


def test_a_seed_that_never_reaches_the_target_is_counted_and_drops_the_ratio():
    entries = _seed_entries([60.0, None, 80.0], [100.0, 140.0, 120.0])
    (row,) = build_report(read_results_from(entries))["rows"]
    summary = row["figures"]["time_to_accuracy"]
    assert summary["reached"] == 2 and len(summary["runs"]) == 3
    assert row["time_to_accuracy_seconds"] == pytest.approx(70.0)  # over the seeds that did
    assert row["time_to_accuracy_ratio"] is None
    table = markdown_table(build_report(read_results_from(entries)))
    assert "| jax | cpu:0 | 1 | not reached | 2 |" in table
    assert "| 70 (2 of 3 reached) |" in table and table.rstrip().endswith("| – |")


# A report.json row as written before seeds, the default batch and the data load were measured
# (the merge of 2026-11-29): one time-to-accuracy run per side, no training_default_batch.
OLD_FORMAT_ROW = {
    "backend": "tensorflow",
    "device": "cpu:0",
    "device_name": "AMD EPYC",
    "versions": {"python": "3.11.7", "keras": "3.15.1", "tensorflow": "2.21.0"},
    "batch_size": 32,
    "sequence_length": 400,
    "jit_compile": "False",
    "date": "2026-11-29T21:18:37+00:00",
    "peak_rss_mb": 1402.0,
    "device_peak_mb": None,
    "figures": {
        "training": {
            "workload": "training",
            "rounds": 5,
            "seconds": 1.28,
            "first_step_seconds": 0.9,
            "samples_per_second": 797.0,
            "gflops": 71.7,
        },
        "latency": {"workload": "latency", "rounds": 1, "p50_ms": 0.8, "p95_ms": 1.0},
        "inference": {"workload": "inference", "samples_per_second": 5139.0},
        "time_to_accuracy": {
            "workload": "time_to_accuracy",
            "target": 0.885,
            "seconds": 59.0,
            "epochs": 2,
            "seconds_per_epoch": [30.0, 29.0],
            "test_accuracy_per_epoch": [0.879, 0.889],
        },
        "lecture_time_to_accuracy": {
            "workload": "lecture_time_to_accuracy",
            "target": 0.885,
            "seconds": 42.0,
            "epochs": 1,
            "seconds_per_epoch": [42.0],
            "test_accuracy_per_epoch": [0.888],
        },
    },
    "train_samples_per_second": 797.0,
    "first_step_seconds": 0.9,
    "time_to_accuracy_seconds": 59.0,
    "lecture_time_to_accuracy_seconds": 42.0,
}


def test_a_report_written_before_this_format_still_compares_and_renders():
    old_report = {"rows": [OLD_FORMAT_ROW], "missing_backends": ["jax", "torch"], "scaling": []}
    new_record = copy.deepcopy(OLD_FORMAT_ROW)
    new_record["figures"]["training"]["samples_per_second"] = 600.0
    new_record["figures"]["training_default_batch"] = {"samples_per_second": 1.0, "batch_size": 64}
    regressions = compare(build_report([new_record]), old_report)
    # training fell from 797 to 600; the default batch, absent from the old report, is skipped
    assert [r.split(": ")[0] for r in regressions] == [
        "tensorflow cpu:0 training samples_per_second"
    ]
    (row,) = build_report([OLD_FORMAT_ROW])["rows"]  # an old row's figures, merged again
    assert row["time_to_accuracy_ratio"] == pytest.approx(59 / 42)
    table = markdown_table(build_report([OLD_FORMAT_ROW]))
    assert "| tensorflow | cpu:0 | 0 | 59 | 2 | 0.889 | 42 | 1 | 0.888 |  |" in table
    assert "| 797 | – | – | 0.90 / – |" in table  # nor bucketed training


def test_both_batches_are_shown_with_their_first_steps():
    (row,) = build_report([_record("torch", "cpu:0")])["rows"]
    assert row["default_batch_samples_per_second"] == 1200.0 and row["default_batch_size"] == 64
    table = markdown_table(build_report([_record("torch", "cpu:0")]))
    assert "| torch | cpu:0 | 1,000 | 1,200 (64) | 1,500 (250 tokens) | 2.00 / 2.50 |" in table
    assert BenchConfig().default_batch_size == TrainConfig().batch_size


def test_data_load_is_timed_cold_then_warm(tiny_archive, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    result = data_load_seconds(str(tiny_archive), cache)
    assert result["cold_seconds"] > 0 and result["warm_seconds"] > 0
    assert result["source"] == "aclImdb_v1.tar.gz" and any(cache.iterdir())
    with pytest.raises(ValueError, match="empty"):
        data_load_seconds(str(tiny_archive), cache)  # no longer cold
    record = _record("jax", "cpu:0")
    record["figures"]["data_load"] = {**result, "cold_seconds": 7.12, "warm_seconds": 0.214}
    assert (
        "`read_dataset` of aclImdb_v1.tar.gz: cold (empty cache) 7.1 s, warm (cached) 0.21 s"
        in (markdown_table(build_report([record])))
    )


def test_a_serving_load_record_renders():
    """The hook for benchmarks/serving_load.py, fed a synthetic figure."""
    record = _record("jax", "gpu:0")
    record["figures"]["serving"] = {
        "workload": "serving",
        "requests_per_second": 410.0,
        "reviews_per_second": 3280.0,
        "p50_ms": 9.5,
        "p95_ms": 14.04,
        "p99_ms": 21.2,
        "concurrency": 8,
        "reviews_per_request": 8,
    }
    (row,) = build_report([record])["rows"]
    assert row["serving_reviews_per_second"] == 3280.0 and row["serving_p99_ms"] == 21.2
    assert (
        "- jax gpu:0: 410 requests/s, 3,280 reviews/s; latency p50 / p95 / p99 9.5 / 14.0 / "
        "21.2 ms (8 concurrent clients, 8 reviews per request)"
    ) in markdown_table(build_report([record]))
    slower = copy.deepcopy(record)
    slower["figures"]["serving"]["reviews_per_second"] = 2000.0
    assert any(
        "serving reviews_per_second" in r
        for r in compare(build_report([slower]), build_report([record]))
    )


def test_seeds_option_and_nox_pass_through():
    from benchmarks.conftest import parse_seeds

    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3") == [3]
    with pytest.raises(pytest.UsageError):
        parse_seeds("0,one")
    pytest.importorskip("nox")
    from noxfile import bench_options, seqnet_bench_args

    options, rest = bench_options(["--full", "--data", "a.tar.gz", "--seeds", "0,1", "-k", "x"])
    assert seqnet_bench_args(options) == ["--full", "--data", "a.tar.gz", "--seeds", "0,1"]
    assert rest == ["-k", "x"]


def test_scaling_settings_reach_the_worker_whole():
    from dataclasses import FrozenInstanceError, asdict

    from benchmarks.scaling import ScalingSettings

    settings = ScalingSettings(model=ModelConfig(filters=8, dropout_rate=0.0))
    # The worker gets the model as JSON on its command line.
    assert ModelConfig(**json.loads(json.dumps(asdict(settings.model)))) == settings.model
    with pytest.raises(FrozenInstanceError):
        settings.steps = 1
    with pytest.raises(ValueError):
        ScalingSettings(device_counts=(1, 3), batch_size=32)  # 32 is no multiple of 3


# Words only one class uses, in every split: the baseline must read texts and labels together.
BASELINE_REVIEWS = {
    (split, label): [f"{words} film number {i}" for i in range(4)]
    for split in ("train", "test")
    for label, words in (("pos", "great superb moving"), ("neg", "awful dull boring"))
}


def test_practitioner_baseline_scores_the_archive_and_joins_the_report(tmp_path):
    archive = write_tiny_archive(tmp_path / "aclImdb_v1.tar.gz", reviews=BASELINE_REVIEWS)
    baseline = tfidf_logistic_regression(archive)
    assert baseline["test_accuracy"] == 1.0 and baseline["seconds"] > 0
    assert baseline["features"] > 0 and "TfidfVectorizer(ngram_range=(1, 2)" in baseline["baseline"]

    entries = _seed_entries([60.0], [100.0])
    entries.append(
        {"extra_info": {**_record("jax", "cpu:0"), "figures": {"tfidf_baseline": baseline}}}
    )
    table = markdown_table(build_report(read_results_from(entries)))
    assert "The practitioner's baseline on the same archive and cores, scikit-learn" in table
    assert f"test accuracy 1.000 after {baseline['seconds']:.1f} s of vectorizing" in table


def test_the_side_by_side_scripts_run_end_to_end(capsys):
    """``python -m benchmarks.sparse_pooling`` and ``benchmarks.step_profile`` at a short
    length: benchmark code no test runs breaks unseen."""
    from benchmarks import sparse_pooling
    from benchmarks import step_profile as step_profile_script

    assert sparse_pooling.main(["--rounds", "1", "--repeats", "1", "--lengths", "12"]) == 0
    assert step_profile_script.main(["--rounds", "2", "--samples", "32", "--lengths", "12"]) == 0
    printed = capsys.readouterr().out
    assert "| training step | 12 |" in printed
    assert "| **the whole step** |" in printed
