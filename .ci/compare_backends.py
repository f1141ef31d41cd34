"""Exit non-zero unless the backends' mean real-data test accuracies lie within 0.01; report
against the default recipe's goal (every run 0.885, each backend's mean 0.89).

Reads test-results/real-data-<backend>-seed<seed>.json written by tests/test_real_data.py and
prints the accuracy per backend and seed.
"""

import json
import sys
from pathlib import Path

MAX_SPREAD = 0.01
GOAL_RUN, GOAL_MEAN = 0.885, 0.89  # the default recipe's goal, over seeds 0, 1, 2


def main(folder: Path) -> int:
    runs_by_backend: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("real-data-*-seed*.json")):
        run = json.loads(path.read_text())
        runs_by_backend.setdefault(run["backend"], []).append(run)
    means = {}
    for backend, runs in runs_by_backend.items():
        means[backend] = sum(_accuracy(run) for run in runs) / len(runs)
        per_seed = ", ".join(
            f"seed {run['seed']}: test {_accuracy(run):.4f} (per-epoch validation "
            f"{[round(a, 4) for a in run['test_accuracy_per_epoch']]}), "
            f"{run['seconds_per_epoch']:.1f} s/epoch, short reviews "
            f"{run.get('short_review_accuracy', float('nan')):.3f}"
            for run in runs
        )
        print(f"{backend}: mean {means[backend]:.4f} ({per_seed})")
    if len(means) < 3:
        print(f"expected results from 3 backends, found {sorted(means)}")
        return 1
    spread = max(means.values()) - min(means.values())
    print(f"spread of the per-backend means: {spread:.4f} (allowed {MAX_SPREAD})")
    goal = all(mean >= GOAL_MEAN for mean in means.values()) and all(
        _accuracy(run) >= GOAL_RUN for runs in runs_by_backend.values() for run in runs
    )
    print(
        f"default recipe's goal (each run {GOAL_RUN}, each mean {GOAL_MEAN}): "
        + ("met" if goal else "NOT met")
    )
    return 0 if spread <= MAX_SPREAD else 1


def _accuracy(run: dict) -> float:
    """The whole test split's accuracy; files from before it was recorded give the last epoch's."""
    return run.get("test_accuracy", run["test_accuracy_per_epoch"][-1])


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "test-results")))
