"""Measure resume after SIGKILL at random instants: ``python tests/kill_loop.py --kills 70``.

Under the backend KERAS_BACKEND names, trains ``checkpoint_worker.KILL_RUN`` once straight,
then again and again, each time killed at a random instant of its training and resumed until
it completes, and compares every completed run's weights and losses with the straight one.
Prints one JSON line: kills, completed runs, runs bit-identical to the straight one, kills
that lost a checkpoint (fewer epochs done after than before) and resumes refused as mixed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from checkpoint_worker import epochs_done, run_killed_at  # noqa: E402

from seqnet.saving import load_model  # noqa: E402


def same_run(one: Path, other: Path) -> bool:
    """Bit-identical weights and the very same validation losses."""
    weights = zip(
        load_model(one / "model.keras").get_weights(),
        load_model(other / "model.keras").get_weights(),
        strict=True,
    )
    if not all(np.array_equal(a, b) for a, b in weights):
        return False
    histories = [json.loads((run / "metrics.json").read_text())["history"] for run in (one, other)]
    return [e["val_loss"] for e in histories[0]] == [e["val_loss"] for e in histories[1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=70, help="kills to make (default: 70)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=60, help="stop killing after this")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="seqnet-kill-loop-"))
    figures = {"backend": os.environ.get("KERAS_BACKEND"), "kills": 0, "completed_runs": 0}
    figures.update(bit_identical_runs=0, lost=0, refused_as_mixed=0)
    try:
        deadline = time.monotonic() + 60 * args.minutes
        run_killed_at(root / "straight", args.epochs, seconds=3600)
        # The instants fall in the training itself (epochs, checkpoints, the final save), not
        # in the seconds of importing that precede it: the epochs' time, with a margin.
        straight = json.loads((root / "straight" / "metrics.json").read_text())
        duration = 1.2 * sum(epoch["seconds"] for epoch in straight["history"])
        rng = np.random.default_rng()
        while figures["kills"] < args.kills and time.monotonic() < deadline:
            workdir = root / f"run-{figures['completed_runs']}"
            while figures["kills"] < args.kills and time.monotonic() < deadline:
                before = epochs_done(workdir)
                outcome = run_killed_at(workdir, args.epochs, rng.uniform(0, duration), check=False)
                if outcome == "mixed":
                    figures["refused_as_mixed"] += 1
                    break
                if outcome == "done":
                    break
                figures["kills"] += 1
                figures["lost"] += epochs_done(workdir) < before
            if not (workdir / "metrics.json").is_file():
                while run_killed_at(workdir, args.epochs, seconds=3600, check=False) == "killed":
                    pass
            figures["completed_runs"] += 1
            figures["bit_identical_runs"] += same_run(workdir, root / "straight")
            shutil.rmtree(workdir)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
