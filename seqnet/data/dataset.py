"""The arrays every data source produces: padded token ids, class indices and their names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from seqnet.data.checks import check_labels, check_token_ids
from seqnet.text import Vocabulary

IMDB_CLASS_NAMES = ("negative", "positive")  # class 0 negative, class 1 positive


@dataclass(frozen=True)
class Dataset:
    """Padded train and test arrays, the vocabulary that produced them and the class names.

    Attributes:
        x_train: Token ids, int32 of shape ``(texts, maxlen)``.
        y_train: Class indices, int32 of shape ``(texts,)``: ``class_names[y]`` is the class.
        x_test: Token ids of the test split, like ``x_train``.
        y_test: Class indices of the test split, like ``y_train``.
        vocabulary: The word -> id mapping, or None for .npz data that carries none.
        source: The source the arrays were read from, e.g. ``"synthetic"`` or a path.
        class_names: The classes in index order; IMDB's are ``("negative", "positive")``.
        x_validation: Rows held out of the training data for per-epoch validation (user
            data sources), or None for the IMDB sources, whose per-epoch validation is a
            sample of the test split.
        y_validation: Class indices of ``x_validation``, or None with it.
        report: A JSON-ready account of the reading: rows read, kept and refused per file,
            the shares held out and their seed, the columns used, the classes and their
            counts per split, and the sizes fitted to the data.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    vocabulary: Vocabulary | None
    source: str
    class_names: tuple[str, ...] = IMDB_CLASS_NAMES
    x_validation: np.ndarray | None = None
    y_validation: np.ndarray | None = None
    report: dict = field(default_factory=dict, compare=False)

    @property
    def num_classes(self) -> int:
        """How many classes a model of this data chooses between."""
        return len(self.class_names)

    def splits(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """The arrays as ``(x_train, y_train), (x_test, y_test)``, as ``load_imdb`` returns them."""
        return (self.x_train, self.y_train), (self.x_test, self.y_test)

    def checked(self, vocabulary_size: int, sequence_length: int) -> Dataset:
        """The same data with every array checked to fit a model of these sizes.

        Raises:
            ValueError: As [`check_token_ids`][seqnet.data.check_token_ids] and
                [`check_labels`][seqnet.data.check_labels] do, naming the split.
        """
        checked = {}
        for split in ("train", "test", "validation"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x is None or (split == "validation" and len(x) == 0):
                continue  # no validation rows: nothing a model could choke on
            x = check_token_ids(x, vocabulary_size, sequence_length, name=f"x_{split}")
            checked[f"x_{split}"] = x
            checked[f"y_{split}"] = check_labels(
                y, len(x), num_classes=self.num_classes, name=f"y_{split}"
            )
        return dataclasses.replace(self, **checked)


ImdbDataset = Dataset  # the name of seqnet 0.2, when every data set was IMDB
