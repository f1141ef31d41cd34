"""Exit non-zero unless every backend's mean real-data test accuracy is at least 0.89 and the
backends' means lie within 0.01.

Reads test-results/real-data-<backend>-seed<seed>.json written by tests/test_real_data.py and
prints the accuracy per backend and seed.
"""

import json
import sys
from pathlib import Path

MAX_SPREAD = 0.01
MIN_MEAN = 0.89  # the default recipe's promise, over seeds 0, 1, 2


def main(folder: Path) -> int:
    runs_by_backend: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("real-data-*-seed*.json")):
        run = json.loads(path.read_text())
        runs_by_backend.setdefault(run["backend"], []).append(run)
    means = {}
    for backend, runs in runs_by_backend.items():
        means[backend] = sum(run["test_accuracy_per_epoch"][-1] for run in runs) / len(runs)
        per_seed = ", ".join(
            f"seed {run['seed']}: {[round(a, 4) for a in run['test_accuracy_per_epoch']]}, "
            f"{run['seconds_per_epoch']:.1f} s/epoch"
            for run in runs
        )
        print(f"{backend}: mean {means[backend]:.4f} ({per_seed})")
    if len(means) < 3:
        print(f"expected results from 3 backends, found {sorted(means)}")
        return 1
    spread = max(means.values()) - min(means.values())
    print(f"spread of the per-backend means: {spread:.4f} (allowed {MAX_SPREAD})")
    low = {backend: mean for backend, mean in means.items() if mean < MIN_MEAN}
    if low:
        print(f"mean test accuracy below {MIN_MEAN}: {low}")
    return 0 if spread <= MAX_SPREAD and not low else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "test-results")))
