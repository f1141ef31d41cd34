"""The one place that knows the classification task: its classes, head, loss, metric and decision.

Two classes keep the lecture's head (one sigmoid unit, binary cross-entropy, a threshold on the
probability of the second class); three or more get a softmax over one unit per class,
sparse categorical cross-entropy and the arg-max. Everything downstream (training, ``predict``,
``serve``, ``export``, the pages) asks a ``Task`` rather than testing the number of classes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from seqnet.config import DECISION_THRESHOLD, check_threshold
from seqnet.files import write_atomically

# The run folder's file naming the classes in index order.
CLASSES_FILE = "classes.json"
_FORMAT = "seqnet.classes"
# IMDB's labels: 0 is a negative review, 1 a positive one (keras.datasets.imdb's convention).
IMDB_CLASSES = ("negative", "positive")


def output_units(num_classes: int) -> int:
    """Units of the head: one for two classes (the probability of class 1), else one each."""
    return 1 if num_classes == 2 else num_classes


def output_activation(num_classes: int) -> str:
    return "sigmoid" if num_classes == 2 else "softmax"


def loss_for(num_classes: int, *, from_logits: bool) -> keras.losses.Loss:
    """Cross-entropy of the head: binary for two classes, sparse categorical for more."""
    if num_classes == 2:
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def accuracy_for(num_classes: int, *, from_logits: bool) -> keras.metrics.Metric:
    """The accuracy metric of the head, named ``accuracy`` for either."""
    if num_classes == 2:
        # A logit >= 0 exactly where the probability >= 0.5.
        threshold = 0.0 if from_logits else DECISION_THRESHOLD
        return keras.metrics.BinaryAccuracy(name="accuracy", threshold=threshold)
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


@dataclass(frozen=True)
class Task:
    """A classifier's classes, and how its network's head turns into labels.

    Args:
        class_names: The names of the classes in index order: class ``i`` is
            ``class_names[i]``. At least two, all different and non-empty.

    Examples:
        >>> task = Task(("World", "Sports", "Business", "Sci/Tech"))
        >>> task.output_units, task.binary
        (4, False)
        >>> Task().decide(np.array([[0.3, 0.7]])).tolist()
        [1]
    """

    class_names: tuple[str, ...] = IMDB_CLASSES

    def __post_init__(self) -> None:
        names = tuple(self.class_names)
        object.__setattr__(self, "class_names", names)
        if len(names) < 2:
            raise ValueError(
                f"A classifier needs at least two classes, got {len(names)}: {list(names)}."
            )
        if not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"Class names must be non-empty strings, got {list(names)}.")
        if len(set(names)) != len(names):
            repeated = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"Class names must differ; repeated: {repeated}.")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def binary(self) -> bool:
        """Two classes: the lecture's single sigmoid unit."""
        return self.num_classes == 2

    @property
    def output_units(self) -> int:
        return output_units(self.num_classes)

    def probabilities(self, outputs) -> np.ndarray:
        """Class probabilities, ``(texts, num_classes)`` float32, from the portable network's
        outputs: ``(texts, 1)`` sigmoid probabilities of class 1, or ``(texts, k)`` softmax."""
        outputs = np.asarray(outputs, dtype=np.float32)
        if self.binary:
            positive = outputs.reshape(len(outputs), -1)[:, :1]
            return np.concatenate([1.0 - positive, positive], axis=1)
        return outputs.reshape(len(outputs), self.num_classes)

    def decide(self, probabilities, threshold: float = DECISION_THRESHOLD) -> np.ndarray:
        """The class index of each row of ``probabilities``, ``(texts,)`` int64.

        Two classes: class 1 where its probability reaches ``threshold``. More: the most
        probable class, ties to the first.
        """
        threshold = self.checked_threshold(threshold)
        probabilities = np.asarray(probabilities)
        if self.binary:
            return (probabilities[:, 1] >= threshold).astype(np.int64)
        return np.argmax(probabilities, axis=1)

    def checked_threshold(self, threshold: float) -> float:
        """``threshold`` as a float, or a ValueError: it must lie in (0, 1), and only two
        classes have one (more take the most probable class)."""
        if not self.binary and threshold != DECISION_THRESHOLD:
            raise ValueError(
                f"A threshold applies to two classes only; this classifier picks the most "
                f"probable of its {self.num_classes} classes."
            )
        return check_threshold(threshold)

    def index_of(self, name: str) -> int:
        """The index of the class called ``name``."""
        if name not in self.class_names:
            raise ValueError(f"No class {name!r}; the classes are {list(self.class_names)}.")
        return self.class_names.index(name)

    def to_json(self) -> dict:
        """The classes as ``classes.json`` holds them."""
        return {"format": _FORMAT, "classes": list(self.class_names)}

    @classmethod
    def from_json(cls, payload) -> Task:
        """Read [`to_json`][seqnet.task.Task.to_json]'s dict back, or say what is wrong."""
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"Not a seqnet classes file (expected format {_FORMAT!r}).")
        classes = payload.get("classes")
        if not isinstance(classes, list):
            raise ValueError("A seqnet classes file needs a list of class names in 'classes'.")
        return cls(tuple(classes))

    def save(self, path: str | os.PathLike) -> None:
        """Write ``classes.json`` atomically."""
        text = json.dumps(self.to_json(), ensure_ascii=False, indent=1)
        write_atomically(Path(path), text.encode())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Task:
        """Read a ``classes.json``; a run folder of seqnet 0.2, which has none, is IMDB's."""
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None


def decide_one(probabilities, threshold: float = DECISION_THRESHOLD) -> int:
    """The class index of one text's ``probabilities``, as
    [`Task.decide`][seqnet.task.Task.decide] gives it for a row."""
    if len(probabilities) == 2:
        return int(probabilities[1] >= threshold)
    return max(range(len(probabilities)), key=probabilities.__getitem__)  # first of ties
