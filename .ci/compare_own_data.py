"""Exit non-zero unless seqnet met the own-data targets on AG News and RuSentiment on every
backend: the mean over its seeds (three under torch, one under each other backend) at least
scikit-learn's TF-IDF + logistic regression on the same splits.

Reads test-results/own-data-<data>-<backend>-seed<seed>.json written by tests/test_own_data.py
and prints each run's figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SEEDS = {"tensorflow": (0,), "jax": (0,), "torch": (0, 1, 2)}
# Per data set: the figures held to a target (tests/test_own_data.py names the same).
TARGETS = {
    "ag_news": {"test_accuracy": 0.90},
    "rusentiment": {"test_macro_f1": 0.62, "test_accuracy": 0.68},
}


def read_runs(folder: Path) -> dict[tuple[str, str], list[dict]]:
    """The recorded runs per (data set, backend), sorted by seed."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(folder.glob("own-data-*-seed*.json")):
        run = json.loads(path.read_text())
        runs.setdefault((run["data"], run["backend"]), []).append(run)
    return {key: sorted(found, key=lambda run: run["seed"]) for key, found in runs.items()}


def shortfalls(runs: dict[tuple[str, str], list[dict]]) -> list[str]:
    """Why a target is not met, one reason a line; empty when every one is."""
    found = []
    for data, targets in TARGETS.items():
        for backend, seeds in SEEDS.items():
            done = runs.get((data, backend), [])
            if tuple(run["seed"] for run in done) != seeds:
                ran = [run["seed"] for run in done]
                found.append(f"{data} on {backend}: runs for seeds {ran}, expected {list(seeds)}")
                continue
            for name, target in targets.items():
                mean = sum(run[name] for run in done) / len(done)
                print(f"{data} on {backend}: mean {name} {mean:.4f} (target {target})")
                if mean < target:
                    found.append(f"{data} on {backend}: mean {name} {mean:.4f} < {target}")
    return found


def main(folder: str) -> int:
    runs = read_runs(Path(folder))
    for (data, backend), done in sorted(runs.items()):
        for run in done:
            print(
                f"{data} {backend} seed {run['seed']}: accuracy {run['test_accuracy']:.4f}, "
                f"macro-F1 {run['test_macro_f1']:.4f}, {run['seconds_per_epoch']:.1f} s/epoch"
            )
    found = shortfalls(runs)
    for reason in found:
        print(f"FAIL {reason}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "test-results"))
