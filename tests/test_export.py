"""seqnet export: bundles that ONNX Runtime and TensorFlow run exactly as seqnet predicts."""

from __future__ import annotations

import html
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import unicodedata
from pathlib import Path

import keras
import numpy as np
import pytest
import regex
from conftest import COLOUR_TEXTS, TINY_MODEL, TINY_TEXTS, build_run, varied_reviews

from seqnet import export
from seqnet.cli import main
from seqnet.predict import Classifier

BACKEND = keras.backend.backend()
EXPORTABLE = [name for name in export.FORMATS if BACKEND in export.EXPORTING_BACKENDS[name]]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A two-class (IMDB) run folder, fitted briefly on the tiny reviews."""
    return build_run(tmp_path_factory.mktemp("export-run") / "run", TINY_TEXTS, seed=5)


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


@pytest.fixture
def stand_in_exporter(monkeypatch):
    """ONNX export from any backend, its model a stand-in file: the rest of the bundle is real.

    Returns the monkeypatch, to replace the stand-in again.
    """

    def write_stand_in(model, path, format):
        Path(path).write_bytes(b"a stand-in model")

    monkeypatch.setattr(export, "export_model", write_stand_in)
    monkeypatch.setitem(export.EXPORTING_BACKENDS, "onnx", (BACKEND,))
    monkeypatch.setitem(export.DEPENDENCIES, ("onnx", BACKEND), ())
    return monkeypatch


@pytest.fixture
def run_copy(workdir, tmp_path) -> Path:
    """A copy of the trained run in ``tmp_path/runs/x``, for tests that may destroy it."""
    return Path(shutil.copytree(workdir, tmp_path / "runs" / "x"))


def tree(root: Path) -> dict[str, object]:
    """Every path under ``root`` (itself included) with its kind, mode and, for files, bytes."""
    found: dict[str, object] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        data = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        found[str(path.relative_to(root))] = (stat.S_IFMT(info.st_mode), info.st_mode, data)
    return found


def encode_from_spec(texts: list[str], tokenizer: dict, words: list[str]) -> np.ndarray:
    """tokenizer.json followed step by step, with no seqnet code (html: for entities only)."""
    ids = {word: index + tokenizer["ids"]["first_word_id"] for index, word in enumerate(words)}
    length, reserved = tokenizer["sequence_length"], tokenizer["ids"]
    rows = []
    for text in texts:
        tokens: list[str] = []
        for step in tokenizer["steps"]:
            if "replace" in step:
                flags = regex.IGNORECASE if step["ignore_case"] else 0
                text = regex.sub(step["replace"], step["with"], text, flags=flags)
            elif "unescape_html_entities" in step:
                text = html.unescape(text)
            elif "normalize" in step:
                text = unicodedata.normalize(step["normalize"], text)
            elif "case_fold" in step:
                text = "".join(step["case_fold"].get(c, c) for c in text)
            elif "find_all" in step:
                tokens = regex.findall(step["find_all"], text)
        row = [reserved["start"]] if tokenizer["start_token_prepended"] else []
        row = [*row, *(ids.get(token, reserved["out_of_vocabulary"]) for token in tokens)]
        row = row[-length:] if tokenizer["truncating"] == "pre" else row[:length]
        padding = [reserved["padding"]] * (length - len(row))
        rows.append(padding + row if tokenizer["padding"] == "pre" else row + padding)
    return np.array(rows, dtype=tokenizer["dtype"]).reshape(len(texts), length)


def run_bundle(bundle: Path, token_ids: np.ndarray) -> np.ndarray:
    """Each class's probability from the exported model alone, through ONNX Runtime or
    TensorFlow: ``(texts, classes)``, from its ``(texts, 1)`` sigmoid for two classes."""
    outputs = bundle_outputs(bundle, token_ids)
    if outputs.shape[1] == 1:
        return np.concatenate([1 - outputs, outputs], axis=1)
    return outputs


def bundle_outputs(bundle: Path, token_ids: np.ndarray) -> np.ndarray:
    """The exported model's own output, ``(texts, units)``."""
    if (bundle / "model.onnx").is_file():
        onnxruntime = pytest.importorskip("onnxruntime")
        session = onnxruntime.InferenceSession(str(bundle / "model.onnx"))
        assert [i.name for i in session.get_inputs()] == [export.INPUT_NAME]
        assert session.get_inputs()[0].type == "tensor(int32)"
        assert [o.name for o in session.get_outputs()] == [export.OUTPUT_NAME]
        (probabilities,) = session.run([export.OUTPUT_NAME], {export.INPUT_NAME: token_ids})
        return probabilities
    tf = pytest.importorskip("tensorflow")
    loaded = tf.saved_model.load(str(bundle / "saved_model"))
    signature = loaded.signatures["serving_default"]
    assert list(signature.structured_outputs) == [export.SAVED_MODEL_OUTPUT_KEY]
    by_signature = signature(**{export.INPUT_NAME: tf.constant(token_ids)})
    probabilities = loaded.serve(tf.constant(token_ids)).numpy()
    np.testing.assert_array_equal(by_signature[export.SAVED_MODEL_OUTPUT_KEY], probabilities)
    return probabilities


def test_bundle_holds_the_model_and_its_description(bundle):
    names = {path.name for path in bundle.iterdir()}
    assert names >= {"vocabulary.json", "tokenizer.json", "reference.json", "README.md"}
    assert names >= {"classes.json"} and names & {"model.onnx", "saved_model"}
    assert json.loads((bundle / "classes.json").read_text())["classes"] == ["negative", "positive"]
    readme = (bundle / "README.md").read_text()
    assert "token_ids" in readme and "int32" in readme and "(batch, 24)" in readme
    assert "shape `(batch, 1)`: the probability that the text is `positive`" in readme
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
    expected = np.array([review["probabilities"] for review in reference["reviews"]])
    positive = [review["probability"] for review in reference["reviews"]]  # as in seqnet 0.2

    assert reference["classes"] == ["negative", "positive"]
    assert reference["output"]["shape"] == [None, 1]
    np.testing.assert_array_equal(expected[:, 1], positive)
    np.testing.assert_array_equal(encode_from_spec(texts, tokenizer, words), token_ids)
    np.testing.assert_allclose(classifier.predict_probabilities(texts), expected, atol=1e-7)
    np.testing.assert_allclose(run_bundle(bundle, token_ids), expected, atol=reference["tolerance"])
    assert len(texts) == 8 and any(ids[0] != 1 and ids[0] != 0 for ids in token_ids)


@pytest.fixture(scope="module")
def colour_bundle(colour_run, tmp_path_factory) -> Path:
    """The three-class run exported as ONNX by ``seqnet export``."""
    try:
        export.check_exportable("onnx", BACKEND)
    except (ValueError, export.MissingDependencyError) as error:
        pytest.skip(str(error))
    output = tmp_path_factory.mktemp("colour-export") / "bundle"
    assert _export(colour_run, output) == 0
    return output


def test_a_three_class_bundle_outputs_a_softmax_per_class(colour_bundle, colour_run):
    classifier = Classifier.load(colour_run)
    texts = ["red apple cherry", "grass leaf lime", "sky sea blue", "zyzzyva", ""]
    token_ids = classifier.vocabulary.encode_batch(texts, TINY_MODEL.sequence_length)

    outputs = bundle_outputs(colour_bundle, token_ids)

    assert outputs.shape == (len(texts), 3)  # (batch, num_classes), not (batch, 1)
    np.testing.assert_allclose(outputs, classifier.predict_token_ids(token_ids), atol=1e-5)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, atol=1e-5)
    assert outputs[:3].argmax(axis=1).tolist() == [0, 1, 2]


def test_a_three_class_bundle_lists_its_classes(colour_bundle, colour_run):
    classes = list(COLOUR_TEXTS)
    assert json.loads((colour_bundle / "classes.json").read_text())["classes"] == classes
    reference = json.loads((colour_bundle / "reference.json").read_text(encoding="utf-8"))
    assert reference["classes"] == classes and reference["output"]["shape"] == [None, 3]
    token_ids = np.array([review["token_ids"] for review in reference["reviews"]], np.int32)
    expected = np.array([review["probabilities"] for review in reference["reviews"]])
    assert expected.shape == (8, 3) and "probability" not in reference["reviews"][0]
    np.testing.assert_allclose(bundle_outputs(colour_bundle, token_ids), expected, atol=1e-5)
    readme = (colour_bundle / "README.md").read_text(encoding="utf-8")
    assert "one of 3 classes: `red`, `green`, `blue`" in readme
    assert "shape `(batch, 3)`" in readme and "most probable class" in readme
    assert "0. `red`\n1. `green`\n2. `blue`" in readme
    for imdb_only in ("movie", "review is positive", "positive", "negative", "sentiment"):
        assert imdb_only not in readme


def test_an_existing_bundle_is_kept_without_force(bundle, workdir, capsys):
    before = sorted(path.name for path in bundle.iterdir())
    code = main(["export", "--workdir", str(workdir), "--format", bundle.name.split("-", 1)[1]])

    assert code == 1
    error = capsys.readouterr().err
    assert "already exists" in error and "--force" in error
    assert sorted(path.name for path in bundle.iterdir()) == before


def test_force_replaces_an_earlier_bundle_whole(workdir, tmp_path, stand_in_exporter):
    output = tmp_path / "bundle"
    args = ["export", "--workdir", str(workdir), "--format", "onnx", "--output", str(output)]
    assert main(args) == 0
    (output / "stale.txt").write_text("from an older export")

    assert main([*args, "--force"]) == 0

    assert not (output / "stale.txt").exists() and (output / "model.onnx").is_file()
    assert export.is_bundle(output)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]


def test_a_failed_export_leaves_the_old_output_whole(workdir, tmp_path, stand_in_exporter):
    output = tmp_path / "bundle"
    export.export_run(workdir, "onnx", output)
    before = tree(tmp_path)

    def half_written(model, path, format):
        Path(path).write_bytes(b"half a model")
        raise RuntimeError("interrupted")

    stand_in_exporter.setattr(export, "export_model", half_written)
    with pytest.raises(RuntimeError, match="interrupted"):
        export.export_run(workdir, "onnx", output, force=True)

    assert tree(tmp_path) == before


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


# What --output may name: only a new path, an empty folder, or (with --force) an earlier bundle


def _export(workdir: Path, output: Path, *extra: str) -> int:
    args = ["export", "--workdir", str(workdir), "--format", "onnx", "--output", str(output)]
    return main([*args, *extra])


def _one_line(capsys) -> str:
    error = capsys.readouterr().err
    assert error.startswith("seqnet export: error: ") and error.count("\n") == 1, error
    return error


def test_force_refuses_the_run_every_path_in_it_and_every_folder_above_it(
    run_copy, stand_in_exporter, capsys
):
    (run_copy / "notes").mkdir()
    (run_copy / "notes" / "todo.txt").write_text("keep me")
    root = run_copy.parents[1]
    before = tree(root)
    # All but an earlier bundle (as export-onnx/ may be) and an empty folder: both may go.
    inside = [
        p
        for p in run_copy.rglob("*")
        if not (p.is_dir() and (export.is_bundle(p) or not any(p.iterdir())))
    ]

    for output in [run_copy, run_copy / "." / "model.keras", *inside, *run_copy.parents[:2]]:
        assert _export(run_copy, output, "--force") == 1, output
        _one_line(capsys)

    assert tree(root) == before
    assert _export(run_copy, run_copy, "--force") == 1
    assert "is the run folder" in _one_line(capsys)
    assert _export(run_copy, run_copy.parent, "--force") == 1
    assert "holds the run folder" in _one_line(capsys)


def test_force_never_replaces_the_current_folder(
    workdir, tmp_path, stand_in_exporter, monkeypatch, capsys
):
    export.export_run(workdir, "onnx", tmp_path / "bundle")
    monkeypatch.chdir(tmp_path / "bundle")
    before = tree(tmp_path)

    for output in (Path("."), Path("..")):
        assert _export(workdir, output, "--force") == 1
        assert "the current folder" in _one_line(capsys)

    assert tree(tmp_path) == before


@pytest.mark.parametrize("kind", ["file", "folder", "link to a bundle", "fifo"])
def test_force_replaces_nothing_but_an_earlier_bundle(
    workdir, tmp_path, stand_in_exporter, capsys, kind
):
    output = tmp_path / "out"
    if kind == "file":
        output.write_text("keep me")
    elif kind == "folder":
        output.mkdir()
        (output / "photo.jpg").write_bytes(b"keep me")
    elif kind == "fifo":
        os.mkfifo(output)
    else:
        export.export_run(workdir, "onnx", tmp_path / "bundle")
        output.symlink_to(tmp_path / "bundle")
    before = tree(tmp_path)

    assert _export(workdir, output, "--force") == 1

    assert "--force only ever replaces an earlier seqnet bundle" in _one_line(capsys)
    assert tree(tmp_path) == before


def test_an_output_that_cannot_be_written_is_one_line(workdir, tmp_path, stand_in_exporter, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    before = tree(tmp_path)

    for output in (tmp_path / "notes.txt" / "bundle", tmp_path / "notes.txt" / "a" / "b"):
        assert _export(workdir, output) == 1
        assert "Not a directory" in _one_line(capsys)

    assert tree(tmp_path) == before


def test_a_full_disk_is_one_line_and_leaves_nothing(workdir, tmp_path, stand_in_exporter, capsys):
    def full_disk(model, path, format):
        raise OSError(28, "No space left on device")

    stand_in_exporter.setattr(export, "export_model", full_disk)
    assert _export(workdir, tmp_path / "bundle") == 1

    assert "cannot write" in _one_line(capsys) and list(tmp_path.iterdir()) == []


def test_a_new_path_or_an_empty_folder_needs_no_force(workdir, tmp_path, stand_in_exporter):
    (tmp_path / "empty").mkdir()
    for output in (tmp_path / "empty", tmp_path / "new" / "nested", workdir / "export-other"):
        assert _export(workdir, output) == 0
        assert export.is_bundle(output)
    shutil.rmtree(workdir / "export-other")  # the module's run stays as trained


def test_only_a_folder_with_both_seqnet_descriptions_is_a_bundle(tmp_path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "tokenizer.json").write_text('{"format": "seqnet.tokenizer"}')
    assert not export.is_bundle(folder)
    for text in ("[1]", '{"format": "seqnet.other"}', "{", "[" * 100_000):
        (folder / "reference.json").write_text(text)
        assert not export.is_bundle(folder), text
    (folder / "reference.json").write_text('{"format": "seqnet.reference"}')
    assert export.is_bundle(folder)


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=oct)
def test_a_bundle_follows_the_umask(workdir, tmp_path, stand_in_exporter, umask):
    old = os.umask(umask)
    try:
        bundle = export.export_run(workdir, "onnx", tmp_path / "bundle")
    finally:
        os.umask(old)

    assert stat.S_IMODE(bundle.stat().st_mode) == 0o777 & ~umask
    for path in bundle.rglob("*"):
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == expected, path.name


# Interrupted exports: the earlier bundle whole, no staging folder left


def test_an_interrupted_export_leaves_no_staging_folder(workdir, tmp_path, stand_in_exporter):
    output = export.export_run(workdir, "onnx", tmp_path / "bundle")
    before = tree(tmp_path)

    def interrupted(model, path, format):
        Path(path).write_bytes(b"half a model")
        raise KeyboardInterrupt

    stand_in_exporter.setattr(export, "export_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.export_run(workdir, "onnx", output, force=True)

    assert tree(tmp_path) == before


def test_an_interrupted_swap_puts_the_earlier_bundle_back(workdir, tmp_path, stand_in_exporter):
    output = export.export_run(workdir, "onnx", tmp_path / "bundle")
    before = tree(tmp_path)
    rename = Path.rename

    def interrupted(self, target):
        if "-new-" in self.name and Path(target) == output:  # the new bundle moving in
            raise KeyboardInterrupt
        return rename(self, target)

    stand_in_exporter.setattr(Path, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.export_run(workdir, "onnx", output, force=True)

    assert tree(tmp_path) == before


_PAUSED_EXPORT = """
import sys
from pathlib import Path

import keras

from seqnet import cli, export

workdir, output, point = sys.argv[1:]


def pause():
    print("ready", flush=True)
    sys.stdin.read()  # until killed


def stand_in(model, path, format):
    Path(path).write_bytes(b"a newer model")
    if point == "writing":
        pause()


rename = Path.rename


def pausing_rename(self, target):
    if point == "moving in" and "-new-" in self.name:  # the old bundle is aside, the new not in
        pause()
    moved = rename(self, target)
    if point == "swapping" and "-old-" in Path(target).name:  # the old bundle moved aside
        pause()
    return moved


Path.rename = pausing_rename
export.export_model = stand_in
export.EXPORTING_BACKENDS["onnx"] = (keras.backend.backend(),)
export.DEPENDENCIES["onnx", keras.backend.backend()] = ()
arguments = ["--workdir", workdir, "--format", "onnx", "--output", output, "--force"]
sys.exit(cli.main(["export", *arguments]))
"""


def _paused_export(workdir: Path, output: Path, point: str) -> subprocess.Popen:
    """``seqnet export --force`` to ``output`` in a child process, once it paused at ``point``."""
    package_root = str(Path(export.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": package_root}
    command = [sys.executable, "-c", _PAUSED_EXPORT, str(workdir), str(output), point]
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    lines = iter(child.stdout.readline, b"")
    if b"ready\n" not in lines:  # waits for the pause point
        child.kill()
        raise AssertionError(child.communicate()[1].decode())
    return child


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL on this system")
@pytest.mark.parametrize("point", ["writing", "swapping"])
def test_a_killed_export_is_mended_by_the_next(workdir, tmp_path, stand_in_exporter, point):
    output = export.export_run(workdir, "onnx", tmp_path / "bundle")
    before = tree(tmp_path)
    child = _paused_export(workdir, output, point)
    child.kill()
    child.communicate()
    assert tree(tmp_path) != before  # the kill left its staging folders

    with pytest.raises(ValueError, match="already exists"):
        export.export_run(workdir, "onnx", output)  # without --force: the old bundle is kept

    assert tree(tmp_path) == before


@pytest.mark.parametrize("point", ["writing", "moving in"])
def test_sigterm_stops_an_export_cleanly_with_one_line(workdir, tmp_path, stand_in_exporter, point):
    """SIGTERM while the new bundle is written, or while the old one waits aside: the command
    removes its staging, puts the old bundle back and says so in one line, status 143."""
    output = export.export_run(workdir, "onnx", tmp_path / "bundle")
    before = tree(tmp_path)
    child = _paused_export(workdir, output, point)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 143
    assert "Traceback" not in stderr.decode()
    # The child imports Keras before seqnet's CLI runs, so TensorFlow's notices may precede.
    lines = [line for line in stderr.decode().splitlines() if line.startswith("seqnet")]
    assert lines == ["seqnet export: stopped by SIGTERM. The output is as it was."]
    assert tree(tmp_path) == before


def test_staging_folders_of_running_exports_are_left_alone(workdir, tmp_path, stand_in_exporter):
    running = tmp_path / f".bundle-new-{os.getppid()}-0123abcd"  # the parent process lives
    running.mkdir()

    export.export_run(workdir, "onnx", tmp_path / "bundle")

    assert running.is_dir()
