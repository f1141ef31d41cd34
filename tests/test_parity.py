"""Same weights, same answers: a model saved under one backend predicts the same under another.

Each backend's session saves its model here; every session then loads all the models present.
With SEQNET_PARITY_DIR shared between the three ``nox -s tests`` sessions and a second pass
(``.ci/run`` does this), every backend loads every other's model: the full 3x3 matrix, written
to ``matrix-<backend>.json`` in that folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from seqnet import build_imdb_cnn
from seqnet.data import make_synthetic
from seqnet.saving import load_model, save_model

BACKENDS = ("tensorflow", "jax", "torch")
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def parity_dir(tmp_path_factory):
    configured = os.environ.get("SEQNET_PARITY_DIR")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("parity")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_save_a_seeded_model_for_the_other_backends(parity_dir):
    keras.utils.set_random_seed(2026)
    model = build_imdb_cnn()
    token_ids = make_synthetic(samples=64, seed=3).x_test
    backend = keras.backend.backend()
    save_model(model, parity_dir / f"{backend}.keras")
    np.savez(
        parity_dir / f"{backend}.npz",
        token_ids=token_ids,
        probabilities=model.predict(token_ids, verbose=0),
    )


def test_models_saved_by_every_backend_predict_the_same(parity_dir):
    differences = {}
    for saved_by in BACKENDS:
        if not (parity_dir / f"{saved_by}.keras").is_file():
            continue
        with np.load(parity_dir / f"{saved_by}.npz", allow_pickle=False) as expected:
            loaded = load_model(parity_dir / f"{saved_by}.keras")
            predicted = loaded.predict(expected["token_ids"], verbose=0)
            differences[saved_by] = float(np.abs(predicted - expected["probabilities"]).max())
    backend = keras.backend.backend()
    (parity_dir / f"matrix-{backend}.json").write_text(json.dumps(differences, indent=2))
    print(f"loaded under {backend}: max |difference| by saving backend {differences}")
    assert backend in differences
    if os.environ.get("SEQNET_PARITY_REQUIRE_ALL"):
        assert set(differences) == set(BACKENDS), (
            f"models missing: {set(BACKENDS) - set(differences)}"
        )
    assert all(difference <= TOLERANCE for difference in differences.values()), differences
