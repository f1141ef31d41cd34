"""seqnet export: bundles that ONNX Runtime and TensorFlow run exactly as seqnet predicts."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import TINY_MODEL, train_tiny_run, varied_reviews

from seqnet import export
from seqnet.cli import main
from seqnet.predict import Classifier

BACKEND = keras.backend.backend()
EXPORTABLE = [name for name in export.FORMATS if BACKEND in export.EXPORTING_BACKENDS[name]]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A run folder trained for one epoch on the tiny aclImdb look-alike."""
    return train_tiny_run(tmp_path_factory.mktemp("export-run"), batch_size=4, seed=5)


@pytest.fixture(scope="module")
def classifier(workdir) -> Classifier:
    return Classifier.load(workdir)


@pytest.fixture(scope="module")
def reviews(classifier) -> list[str]:
    return varied_reviews(list(classifier.vocabulary.words))


@pytest.fixture(scope="module", params=EXPORTABLE)
def bundle(request, workdir) -> Path:
    """The run exported by ``seqnet export`` to its default folder, once per format."""
    try:
        export.check_exportable(request.param, BACKEND)
    except export.MissingDependencyError as error:
        pytest.skip(str(error))
    assert main(["export", "--workdir", str(workdir), "--format", request.param]) == 0
    return export.default_output(workdir, request.param)


def encode_from_spec(texts: list[str], tokenizer: dict, words: list[str]) -> np.ndarray:
    """tokenizer.json followed step by step, with no seqnet code (html: for entities only)."""
    ids = {word: index + tokenizer["ids"]["first_word_id"] for index, word in enumerate(words)}
    length, reserved = tokenizer["sequence_length"], tokenizer["ids"]
    rows = []
    for text in texts:
        tokens: list[str] = []
        for step in tokenizer["steps"]:
            if "replace" in step:
                flags = re.IGNORECASE if step["ignore_case"] else 0
                text = re.sub(step["replace"], step["with"], text, flags=flags)
            elif "unescape_html_entities" in step:
                text = html.unescape(text)
            elif "lower_case" in step:
                text = text.lower()
            elif "find_all" in step:
                tokens = re.findall(step["find_all"], text)
        row = [reserved["start"]] if tokenizer["start_token_prepended"] else []
        row = [*row, *(ids.get(token, reserved["out_of_vocabulary"]) for token in tokens)]
        row = row[-length:] if tokenizer["truncating"] == "pre" else row[:length]
        padding = [reserved["padding"]] * (length - len(row))
        rows.append(padding + row if tokenizer["padding"] == "pre" else row + padding)
    return np.array(rows, dtype=tokenizer["dtype"]).reshape(len(texts), length)


def run_bundle(bundle: Path, token_ids: np.ndarray) -> np.ndarray:
    """Probabilities from the exported model alone, through ONNX Runtime or TensorFlow."""
    if (bundle / "model.onnx").is_file():
        onnxruntime = pytest.importorskip("onnxruntime")
        session = onnxruntime.InferenceSession(str(bundle / "model.onnx"))
        assert [i.name for i in session.get_inputs()] == [export.INPUT_NAME]
        assert session.get_inputs()[0].type == "tensor(int32)"
        assert [o.name for o in session.get_outputs()] == [export.OUTPUT_NAME]
        (probabilities,) = session.run([export.OUTPUT_NAME], {export.INPUT_NAME: token_ids})
        return probabilities[:, 0]
    tf = pytest.importorskip("tensorflow")
    loaded = tf.saved_model.load(str(bundle / "saved_model"))
    signature = loaded.signatures["serving_default"]
    assert list(signature.structured_outputs) == [export.SAVED_MODEL_OUTPUT_KEY]
    by_signature = signature(**{export.INPUT_NAME: tf.constant(token_ids)})
    probabilities = loaded.serve(tf.constant(token_ids)).numpy()[:, 0]
    np.testing.assert_array_equal(by_signature[export.SAVED_MODEL_OUTPUT_KEY][:, 0], probabilities)
    return probabilities


def test_bundle_holds_the_model_and_its_description(bundle):
    names = {path.name for path in bundle.iterdir()}
    assert names >= {"vocabulary.json", "tokenizer.json", "reference.json", "README.md"}
    assert names & {"model.onnx", "saved_model"}
    readme = (bundle / "README.md").read_text()
    assert "token_ids" in readme and "int32" in readme and "(batch, 24)" in readme
    assert not list(bundle.parent.glob(".export-*"))  # no staging folder left behind


def test_exported_model_matches_the_classifier(bundle, classifier, reviews):
    token_ids = classifier.vocabulary.encode_batch(reviews, TINY_MODEL.sequence_length)
    expected = classifier.predict_probabilities(reviews)

    got = run_bundle(bundle, token_ids)

    difference = float(np.max(np.abs(got - expected)))
    print(f"PARITY backend={BACKEND} format={bundle.name} max_abs_diff={difference:.3g}")
    assert difference <= 1e-5


def test_tokenizer_json_reproduces_the_ids(bundle, classifier, reviews):
    tokenizer = json.loads((bundle / "tokenizer.json").read_text())
    words = json.loads((bundle / "vocabulary.json").read_text(encoding="utf-8"))["words"]

    got = encode_from_spec(reviews, tokenizer, words)

    expected = classifier.vocabulary.encode_batch(reviews, TINY_MODEL.sequence_length)
    np.testing.assert_array_equal(got, expected)
    assert tokenizer["num_words"] == classifier.vocabulary.num_words


def test_reference_reviews_agree_with_the_exported_model(bundle, classifier):
    reference = json.loads((bundle / "reference.json").read_text(encoding="utf-8"))
    tokenizer = json.loads((bundle / "tokenizer.json").read_text())
    words = json.loads((bundle / "vocabulary.json").read_text(encoding="utf-8"))["words"]
    texts = [review["text"] for review in reference["reviews"]]
    token_ids = np.array([review["token_ids"] for review in reference["reviews"]], np.int32)
    expected = np.array([review["probability"] for review in reference["reviews"]])

    np.testing.assert_array_equal(encode_from_spec(texts, tokenizer, words), token_ids)
    np.testing.assert_allclose(classifier.predict_probabilities(texts), expected, atol=1e-7)
    np.testing.assert_allclose(run_bundle(bundle, token_ids), expected, atol=reference["tolerance"])
    assert len(texts) == 8 and any(ids[0] != 1 and ids[0] != 0 for ids in token_ids)


def test_an_existing_bundle_is_kept_without_force(bundle, workdir, capsys):
    before = sorted(path.name for path in bundle.iterdir())
    code = main(["export", "--workdir", str(workdir), "--format", bundle.name.split("-", 1)[1]])

    assert code == 1
    error = capsys.readouterr().err
    assert "already exists" in error and "--force" in error
    assert sorted(path.name for path in bundle.iterdir()) == before


@pytest.mark.skipif("onnx" not in EXPORTABLE, reason=f"no ONNX export from {BACKEND}")
def test_force_replaces_a_bundle_whole(workdir, tmp_path):
    output = tmp_path / "bundle"
    output.mkdir()
    (output / "stale.txt").write_text("from an older export")
    args = ["export", "--workdir", str(workdir), "--format", "onnx", "--output", str(output)]
    try:
        export.check_exportable("onnx", BACKEND)
    except export.MissingDependencyError as error:
        pytest.skip(str(error))

    assert main([*args, "--force"]) == 0

    assert not (output / "stale.txt").exists() and (output / "model.onnx").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]


def test_a_failed_export_leaves_the_old_output_whole(workdir, tmp_path, monkeypatch):
    output = tmp_path / "bundle"
    output.mkdir()
    (output / "old.txt").write_text("keep me")

    def half_written(model, path, format):
        Path(path).write_bytes(b"half a model")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(export, "export_model", half_written)
    monkeypatch.setitem(export.EXPORTING_BACKENDS, "onnx", (BACKEND,))
    monkeypatch.setitem(export.DEPENDENCIES, ("onnx", BACKEND), ())
    with pytest.raises(RuntimeError, match="interrupted"):
        export.export_run(workdir, "onnx", output, force=True)

    assert [path.name for path in output.iterdir()] == ["old.txt"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.parametrize(
    ("format", "backend", "needed"),
    [
        ("saved-model", "torch", "tensorflow or jax"),
        ("onnx", "numpy", "tensorflow or jax or torch"),
    ],
)
def test_a_backend_that_cannot_export_names_one_that_can(format, backend, needed):
    with pytest.raises(ValueError, match=f"needs the {needed} backend") as raised:
        export.check_exportable(format, backend, "runs/x")
    assert f"KERAS_BACKEND=tensorflow seqnet export --workdir runs/x --format {format}" in str(
        raised.value
    )


@pytest.mark.skipif(
    BACKEND in export.EXPORTING_BACKENDS["saved-model"], reason="this backend exports SavedModel"
)
def test_seqnet_export_explains_the_backend_it_needs(workdir, capsys):
    assert main(["export", "--workdir", str(workdir), "--format", "saved-model"]) == 1
    assert "KERAS_BACKEND=tensorflow seqnet export" in capsys.readouterr().err
    assert not export.default_output(workdir, "saved-model").exists()


def test_a_missing_exporter_package_gives_the_pip_command(workdir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(export.EXPORTING_BACKENDS, "onnx", (BACKEND,))
    monkeypatch.setitem(export.DEPENDENCIES, ("onnx", BACKEND), ("onnx", "seqnet_no_such_module"))
    output = tmp_path / "bundle"

    with pytest.raises(export.MissingDependencyError, match="pip install seqnet_no_such_module"):
        export.export_run(workdir, "onnx", output)
    args = ["export", "--workdir", str(workdir), "--format", "onnx", "--output", str(output)]
    assert main(args) == 1

    assert "pip install seqnet_no_such_module" in capsys.readouterr().err
    assert not output.exists()
