"""Export a trained run as a self-describing bundle: ONNX or TensorFlow SavedModel, plus tokenizer.

The bundle holds everything another runtime or language needs to classify raw text the way
[`Classifier`][seqnet.predict.Classifier] does: the network (written by Keras' own
``model.export``), the vocabulary, the class names, a JSON description of the tokenization,
reference texts with their ids and every class's probability, and a README.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import stat
from importlib import resources
from pathlib import Path

import keras

from seqnet.files import create_folder, describe, write_atomically
from seqnet.model import PORTABLE_OUTPUT, portable_model
from seqnet.predict import Classifier
from seqnet.saving import VOCABULARY_FILE
from seqnet.task import CLASSES_FILE, IMDB_CLASSES
from seqnet.text import tokenizer_spec

FORMATS = ("onnx", "saved-model")
_KERAS_FORMATS = {"onnx": "onnx", "saved-model": "tf_saved_model"}
MODEL_NAMES = {"onnx": "model.onnx", "saved-model": "saved_model"}
# The backends from which Keras 3.15's model.export writes each format. From torch, SavedModel
# goes through torch_xla, whose wheels pin their own torch release (and it is experimental).
EXPORTING_BACKENDS = {"onnx": ("tensorflow", "jax", "torch"), "saved-model": ("tensorflow", "jax")}
# The modules each exporter imports; their pip names are the same.
DEPENDENCIES = {
    ("onnx", "tensorflow"): ("onnx", "tf2onnx"),
    ("onnx", "jax"): ("onnx", "jax2onnx"),
    ("onnx", "torch"): ("onnx", "onnxscript"),
    ("saved-model", "tensorflow"): ("tensorflow",),
    ("saved-model", "jax"): ("tensorflow",),  # through jax2tf
}
INPUT_NAME = "token_ids"  # the model's input layer's name, kept by every exporter
OUTPUT_NAME = PORTABLE_OUTPUT  # the ONNX output is renamed to it: exporters name it at random
SAVED_MODEL_OUTPUT_KEY = "output_0"  # Keras' key in the SavedModel's serving_default signature
TOKENIZER_FILE, REFERENCE_FILE, README_FILE = "tokenizer.json", "reference.json", "README.md"
# An ONNX bundle's in-browser page: bundle name -> file in seqnet/static. `npm install` in the
# bundle adds onnxruntime-web, which package.json pins.
BROWSER_PAGE_FILES = {
    "index.html": "browser.html",
    "seqnet.js": "seqnet.js",
    "page.css": "page.css",
    "page.js": "page.js",
    "package.json": "package.json",
}
# What marks a folder as a bundle that --force may replace: JSON files only an export writes.
BUNDLE_MARKERS = {TOKENIZER_FILE: "seqnet.tokenizer", REFERENCE_FILE: "seqnet.reference"}
# A bundle is built in a "new" staging folder beside its output, and an earlier bundle waits in
# an "old" one while they swap; the PID in the name tells a killed export's leftovers.
_STAGING_KINDS = ("new", "old")
REFERENCE_TOLERANCE = 1e-5
REFERENCE_REVIEWS = (
    "A wonderful, moving film. The acting is superb and I loved every minute of it.",
    "Terrible. Boring plot, wooden acting &amp; a waste of two hours.<br /><br />Avoid.",
    "It was OK; not great, not bad.",
    "<i>Don't</i> miss it: the director's best work since 1999!",
    "Zyzzyva quixotically flummoxed the caf&eacute; gobbledygook.",
    "",
    "GREAT GREAT GREAT",
    # Longer than the model's 400 ids, so truncation (which drops the start id) is shown too.
    " ".join(["A long review that keeps going, well past the sequence length."] * 60),
)


class MissingDependencyError(ImportError):
    """An exporter's optional package is not installed; the message gives the pip command."""


def default_output(workdir: str | Path, format: str) -> Path:
    """Where ``seqnet export`` writes a bundle by default: ``workdir/export-<format>``.

    Args:
        workdir: The run folder.
        format: One of ``FORMATS``.
    """
    return Path(workdir) / f"export-{format}"


def export_run(
    workdir: str | Path, format: str, output: str | Path | None = None, *, force: bool = False
) -> Path:
    """Export the run in ``workdir`` as a bundle folder, built aside and renamed into place.

    ``output`` may be a new path, an empty folder or, with ``force``, an earlier bundle; never
    the run folder, anything else in it, a folder holding it or the current folder.

    Args:
        workdir: A run folder written by ``seqnet train`` (model.keras, vocabulary.json).
        format: ``"onnx"`` or ``"saved-model"`` (TensorFlow SavedModel).
        output: The bundle folder; by default [`default_output`][seqnet.export.default_output].
        force: Replace an earlier bundle at ``output``.

    Returns:
        The bundle folder.

    Raises:
        ValueError: If the format is unknown, the backend cannot export it, or ``output``
            is not a path the bundle may take (see above).
        MissingDependencyError: If the exporter's package is not installed.
        FileNotFoundError: If ``workdir`` holds no trained run.
    """
    check_exportable(format, keras.backend.backend(), workdir)
    given = Path(output) if output is not None else default_output(workdir, format)
    target = given.resolve()
    remove_stale_staging(target)  # first: it may put an earlier bundle back at the output
    check_output(given, workdir, force)
    classifier = Classifier.load(workdir)  # before any writing: a bad run leaves no trace
    try:
        _build_in_place(classifier, format, target)
    except OSError as error:  # a full disk, a read-only folder: the output is as it was
        raise ValueError(f"cannot write {given}: {error.strerror or error}.") from None
    return given


def _build_in_place(classifier: Classifier, format: str, output: Path) -> None:
    """Write the bundle in a staging folder beside ``output``, then swap it in."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = create_folder(output.parent, _staging_prefix(output, "new"))
    try:
        write_bundle(staging, classifier, format)
        _move_into_place(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_exportable(format: str, backend: str, workdir: str | Path = "DIR") -> None:
    """Raise unless ``backend`` can export ``format`` with the packages installed.

    Args:
        format: One of ``FORMATS``.
        backend: A Keras backend name.
        workdir: The run folder, only to spell out the command to use instead.

    Raises:
        ValueError: If the format is unknown or ``backend`` cannot export it.
        MissingDependencyError: If a package the exporter imports is missing.
    """
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of {', '.join(FORMATS)}.")
    able = EXPORTING_BACKENDS[format]
    if backend not in able:
        title = "ONNX" if format == "onnx" else "SavedModel"
        raise ValueError(
            f"{title} export needs the {' or '.join(able)} backend, not {backend}: "
            f"KERAS_BACKEND={able[0]} seqnet export --workdir {workdir} --format {format}"
        )
    missing = [name for name in DEPENDENCIES[format, backend] if not _installed(name)]
    if missing:
        raise MissingDependencyError(
            f"Exporting {format} from the {backend} backend needs {', '.join(missing)}: "
            f"pip install {' '.join(missing)}"
        )


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_output(output: Path, workdir: str | Path, force: bool) -> None:
    """Refuse an ``output`` that a bundle may not replace.

    Args:
        output: The bundle folder asked for.
        workdir: The run folder being exported.
        force: Whether an earlier bundle at ``output`` may be replaced.

    Raises:
        ValueError: If ``output`` is or holds the run folder or the current folder, exists
            and is not a folder, is a non-empty folder that is not a bundle, or is a bundle
            while ``force`` is false.
    """
    _check_not_around(output, workdir)
    try:
        mode = output.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as error:  # e.g. a path through a regular file
        raise ValueError(f"cannot use --output {output}: {error.strerror or error}.") from None
    if stat.S_ISDIR(mode) and not any(output.iterdir()):
        return  # replacing an empty folder loses nothing
    if not stat.S_ISDIR(mode) or not is_bundle(output):
        what = "a folder that is not a bundle" if stat.S_ISDIR(mode) else describe(mode)
        raise ValueError(
            f"--output {output} exists and is {what}; --force only ever replaces an earlier "
            "seqnet bundle (a folder with its tokenizer.json and reference.json). Name a new "
            "folder, or move this one away yourself."
        )
    if not force:
        raise ValueError(
            f"{output} already exists and holds an earlier export; pass --force to replace "
            "it, or --output to write elsewhere."
        )


def _check_not_around(output: Path, workdir: str | Path) -> None:
    """Refuse an ``output`` that is, or holds, the run folder or the current folder."""
    target, run = output.resolve(), Path(workdir).resolve()
    if target == run or run.is_relative_to(target):
        what = "is the run folder" if target == run else f"holds the run folder {workdir}"
        raise ValueError(
            f"--output {output} {what}, which the bundle would replace; name a new folder "
            "(by default, export-FORMAT inside the run folder)."
        )
    if Path.cwd().resolve().is_relative_to(target):
        raise ValueError(
            f"--output {output} is or holds the current folder, which the bundle would "
            "replace; run seqnet export from another folder, or name a new one."
        )


def is_bundle(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier export: its JSON files say so in their format field.

    Args:
        folder: An existing folder.
    """
    for name, format in BUNDLE_MARKERS.items():
        try:
            payload = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # missing, not JSON, or nested too deep
            return False
        if not isinstance(payload, dict) or payload.get("format") != format:
            return False
    return True


def _staging_prefix(output: Path, kind: str) -> str:
    """A staging folder's name up to its random part: ``.NAME-KIND-PID-``."""
    return f".{output.name}-{kind}-{os.getpid()}-"


def remove_stale_staging(output: Path) -> None:
    """Mend what killed exports to ``output`` left: delete their staging folders, and put back
    an earlier bundle that was moved aside when the export died before the new one moved in.

    Args:
        output: The bundle folder (resolved).
    """
    kinds = "|".join(_STAGING_KINDS)
    pattern = re.compile(
        rf"\.{re.escape(output.name)}-(?P<kind>{kinds})-(?P<pid>\d+)-[0-9a-f]{{8}}"
    )
    if not output.parent.is_dir():
        return
    for path in sorted(output.parent.iterdir()):
        found = pattern.fullmatch(path.name)
        if found is None or not path.is_dir() or _running(int(found["pid"])):
            continue
        if found["kind"] == "old" and not os.path.lexists(output):
            path.rename(output)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether process ``pid`` is alive (this one included), so its staging is in use."""
    if pid == os.getpid() or os.name == "nt":  # on Windows, os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _move_into_place(staging: Path, output: Path) -> None:
    """Rename the finished bundle to ``output``, first moving an earlier one aside.

    A rename cannot replace a non-empty folder, so the earlier bundle goes to a staging name
    beside it, comes back if the new one cannot move in, and is deleted only once it has.
    """
    if output.is_dir() and not output.is_symlink() and not any(output.iterdir()):
        output.rmdir()
    aside = None
    if os.path.lexists(output):
        aside = output.with_name(_staging_prefix(output, "old") + secrets.token_hex(4))
        output.rename(aside)
    try:
        staging.rename(output)
    except BaseException:
        if aside is not None:
            aside.rename(output)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def write_bundle(folder: Path, classifier: Classifier, format: str) -> None:
    """Write the exported model, vocabulary, classes, tokenizer spec, references and README.

    Args:
        folder: An existing, empty folder.
        classifier: The trained run, from [`Classifier.load`][seqnet.predict.Classifier.load].
        format: One of ``FORMATS``.
    """
    # A fresh stock network of the run's config: fixed length, whatever model it was given.
    network = portable_model(classifier.model, classifier.config, from_training=False)
    export_model(network, folder / MODEL_NAMES[format], format)
    classifier.vocabulary.save(folder / VOCABULARY_FILE)
    classifier.task.save(folder / CLASSES_FILE)
    spec = tokenizer_spec(classifier.vocabulary.num_words, classifier.sequence_length)
    _write_json(folder / TOKENIZER_FILE, spec)
    _write_json(folder / REFERENCE_FILE, reference(classifier))
    text = readme(
        format,
        classifier.sequence_length,
        classifier.task.class_names,
        classifier.config.architecture,
    )
    (folder / README_FILE).write_text(text, "utf-8")
    if format == "onnx":
        write_browser_page(folder)


def write_browser_page(folder: Path) -> None:
    """Add the page that classifies texts in the browser from the bundle's ONNX model."""
    static = resources.files("seqnet").joinpath("static")
    for name, source in BROWSER_PAGE_FILES.items():
        (folder / name).write_bytes(static.joinpath(source).read_bytes())


def export_model(model: keras.Model, path: Path, format: str) -> None:
    """``model.export`` with a named int32 input of any batch size, then name the output.

    Args:
        model: A portable network (stock layers, probabilities out).
        path: The ``.onnx`` file or SavedModel folder to write.
        format: One of ``FORMATS``.
    """
    # Explicit, so the batch stays dynamic and the ids stay int32 on every backend.
    signature = [
        keras.InputSpec(shape=(None, model.input_shape[1]), dtype="int32", name=INPUT_NAME)
    ]
    model.export(str(path), format=_KERAS_FORMATS[format], verbose=False, input_signature=signature)
    if format == "onnx":
        rename_onnx_output(path, OUTPUT_NAME)


def rename_onnx_output(path: Path, name: str) -> None:
    """Give the ONNX graph's single output ``name``, whatever the exporter called it.

    tf2onnx, torch.onnx and jax2onnx each name it after an internal tensor ("Identity:0",
    a number, "sigmoid_out_0"); one fixed name lets a consumer ask for it on every backend.

    Args:
        path: The ``.onnx`` file, rewritten in place.
        name: The output's new name.
    """
    import onnx

    model = onnx.load(str(path))
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.input[:] = [name if value == old else value for value in node.input]
        node.output[:] = [name if value == old else value for value in node.output]
    model.graph.output[0].name = name
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def reference(classifier: Classifier) -> dict:
    """Reference texts with their padded ids and every class's probability seqnet gives them.

    Args:
        classifier: The trained run.

    Returns:
        A JSON-ready dict: the classes, the model's input and output, a tolerance and the
        texts (under ``reviews``, its name since seqnet 0.2), each with ``probabilities`` in
        class order and, for two classes, ``probability``: the second class's, which is what
        the model outputs.
    """
    texts = list(REFERENCE_REVIEWS)
    token_ids = classifier.vocabulary.encode_batch(texts, classifier.sequence_length)
    probabilities = classifier.predict_token_ids(token_ids)  # (texts, classes)
    task = classifier.task
    return {
        "format": "seqnet.reference",
        "classes": list(task.class_names),
        "input": {
            "name": INPUT_NAME,
            "dtype": "int32",
            "shape": [None, classifier.sequence_length],
        },
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [None, task.output_units]},
        "tolerance": REFERENCE_TOLERANCE,
        "reviews": [
            _reference_text(text, ids, row, task.binary)
            for text, ids, row in zip(texts, token_ids, probabilities.tolist(), strict=True)
        ],
    }


def _reference_text(text: str, token_ids, probabilities: list[float], binary: bool) -> dict:
    entry = {"text": text, "token_ids": token_ids.tolist(), "probabilities": probabilities}
    if binary:
        entry["probability"] = probabilities[1]  # the model's one output, as in seqnet 0.2
    return entry


def _write_json(path: Path, payload: dict) -> None:
    write_atomically(path, json.dumps(payload, indent=2, ensure_ascii=False).encode())


_README = """# seqnet text classifier ({title})

Classifies a text as one of {count} classes: {classes}. A seqnet `{architecture}` network,
exported by seqnet {version} from the {backend} backend with Keras' `model.export`.

## Files

- `{model}`: the network, {model_about}
- `classes.json`: `classes`, the class names in index order.
- `vocabulary.json`: `words`, commonest first; a word's id is its index + 4.
- `tokenizer.json`: how raw text becomes ids, step by step (patterns, reserved ids,
  padding), for reimplementing it in any language.
- `reference.json`: the classes, and {reviews} texts with their ids and each class's
  probability as seqnet gives them; a reimplementation should match the ids exactly and the
  probabilities within {tolerance}.

## Classes

{class_table}

## Input

`{input}`: int32 token ids, shape `(batch, {length})`, any batch size. Each row is one
text: the start id 1, then one id per word (out-of-vocabulary words 2); a longer text
keeps its last {length} ids, a shorter one is padded with 0 in front.

## Output

{output}: float32, {output_about}

## Use

{usage}
"""

_ONNX_USAGE = """```python
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession("model.onnx")
(probability,) = session.run(["probability"], {"token_ids": token_ids.astype(np.int32)})
```

### In a browser

`index.html` classifies texts in the page itself: `seqnet.js` tokenizes them by
`tokenizer.json` and runs `model.onnx` in ONNX Runtime Web (WebAssembly); no text leaves the
computer. It shows each text's label, score and every class's probability. Install the
runtime that `package.json` pins, then serve the folder:

```sh
npm install
python -m http.server 8080   # or any static file server; then open http://localhost:8080
```

On load the page checks itself against `reference.json` and says so. From JavaScript:
`const classifier = await Classifier.load()` (from `./seqnet.js`), then
`await classifier.predict(texts)`."""

_SAVED_MODEL_USAGE = """```python
import tensorflow as tf
model = tf.saved_model.load("saved_model")
probability = model.serve(tf.constant(token_ids, tf.int32))
```"""


def readme(
    format: str,
    sequence_length: int,
    classes: tuple[str, ...] = IMDB_CLASSES,
    architecture: str = "cnn",
) -> str:
    """The bundle's README.md: its classes and files, the model's input and output, and how
    to run it.

    Args:
        format: One of ``FORMATS``.
        sequence_length: Token ids per text.
        classes: The class names, in index order.
        architecture: The network's body, by its registered name.

    Returns:
        Markdown text.
    """
    from seqnet import __version__

    onnx = format == "onnx"
    return _README.format(
        title="ONNX" if onnx else "TensorFlow SavedModel",
        count=len(classes),
        classes=", ".join(f"`{name}`" for name in classes),
        architecture=architecture,
        class_table="\n".join(f"{index}. `{name}`" for index, name in enumerate(classes)),
        output_about=_output_about(classes),
        version=__version__,
        backend=keras.backend.backend(),
        model=MODEL_NAMES[format],
        model_about="for ONNX Runtime and other ONNX runtimes."
        if onnx
        else "a SavedModel whose `serve` function (and `serving_default` signature) runs it.",
        reviews=len(REFERENCE_REVIEWS),
        tolerance=REFERENCE_TOLERANCE,
        input=INPUT_NAME,
        length=sequence_length,
        output=f"`{OUTPUT_NAME}`"
        if onnx
        else f"returned by `serve`; key `{SAVED_MODEL_OUTPUT_KEY}` of `serving_default`",
        usage=_ONNX_USAGE if onnx else _SAVED_MODEL_USAGE,
    )


def _output_about(classes: tuple[str, ...]) -> str:
    """What the model's output means, for the README: one sigmoid unit, or a softmax."""
    if len(classes) == 2:
        first, second = (f"`{name}`" for name in classes)
        return (
            f"shape `(batch, 1)`: the probability that the text is {second} (class 1); that "
            f"of {first} is 1 minus it. seqnet labels a text {second} from 0.5, else {first}."
        )
    return (
        f"shape `(batch, {len(classes)})`: each class's probability (a softmax), in the order "
        "of `classes.json`. seqnet labels a text with the most probable class, the first of "
        "ties."
    )
