"""Exit non-zero unless every backend met the default recipe's goal on the real data (every run
0.885 test accuracy, each backend's mean over seeds 0, 1 and 2 at least 0.89) and the backends'
means lie within 0.01 of each other.

Reads test-results/real-data-<backend>-seed<seed>.json written by tests/test_real_data.py and
prints the accuracy per backend and seed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
SEEDS = (0, 1, 2)
MAX_SPREAD = 0.01
GOAL_RUN, GOAL_MEAN = 0.885, 0.89  # tests/test_real_data.py asserts GOAL_RUN on each run


def read_runs(folder: Path) -> dict[str, list[dict]]:
    """Each backend's recorded runs, sorted by seed.

    Args:
        folder: Where tests/test_real_data.py wrote its JSON files.
    """
    runs_by_backend: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("real-data-*-seed*.json")):
        run = json.loads(path.read_text())
        runs_by_backend.setdefault(run["backend"], []).append(run)
    return {
        backend: sorted(runs, key=lambda r: r["seed"]) for backend, runs in runs_by_backend.items()
    }


def describe(backend: str, runs: list[dict]) -> str:
    """One line: the backend's mean and, per seed, its accuracies and speed."""
    per_seed = ", ".join(
        f"seed {run['seed']}: test {_accuracy(run):.4f} (per-epoch validation "
        f"{[round(a, 4) for a in run['test_accuracy_per_epoch']]}), "
        f"{run['seconds_per_epoch']:.1f} s/epoch, short reviews "
        f"{run.get('short_review_accuracy', float('nan')):.3f}"
        for run in runs
    )
    return f"{backend}: mean {_mean(runs):.4f} ({per_seed})"


def shortfalls(runs_by_backend: dict[str, list[dict]]) -> list[str]:
    """Why the goal is not met, one reason a line; empty when it is.

    Args:
        runs_by_backend: As ``read_runs`` gives them.
    """
    found = []
    for backend in BACKENDS:
        runs = runs_by_backend.get(backend, [])
        seeds = tuple(run["seed"] for run in runs)
        if seeds != SEEDS:
            found.append(f"{backend}: runs for seeds {list(seeds)}, expected {list(SEEDS)}")
            continue
        if _mean(runs) < GOAL_MEAN:
            found.append(f"{backend}: mean {_mean(runs):.4f} is below {GOAL_MEAN}")
        found += [
            f"{backend} seed {run['seed']}: {_accuracy(run):.4f} is below {GOAL_RUN}"
            for run in runs
            if _accuracy(run) < GOAL_RUN
        ]
    means = [_mean(runs) for backend, runs in runs_by_backend.items() if backend in BACKENDS]
    if means and max(means) - min(means) > MAX_SPREAD:
        found.append(f"the backends' means spread {max(means) - min(means):.4f} > {MAX_SPREAD}")
    return found


def main(folder: Path) -> int:
    """Print every backend's runs and the verdict; 1 unless the goal is met."""
    runs_by_backend = read_runs(folder)
    for backend, runs in runs_by_backend.items():
        print(describe(backend, runs))
    found = shortfalls(runs_by_backend)
    goal = f"each run {GOAL_RUN}, each backend's mean {GOAL_MEAN}, means within {MAX_SPREAD}"
    print(f"default recipe's goal ({goal}): " + ("NOT met" if found else "met"))
    for reason in found:
        print(f"FAIL {reason}", file=sys.stderr)
    return 1 if found else 0


def _mean(runs: list[dict]) -> float:
    return sum(_accuracy(run) for run in runs) / len(runs)


def _accuracy(run: dict) -> float:
    """The whole test split's accuracy; files from before it was recorded give the last epoch's."""
    return run.get("test_accuracy", run["test_accuracy_per_epoch"][-1])


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "test-results")))
