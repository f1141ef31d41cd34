"""How to read a user's labelled text: which columns, which test data, which shares to hold out.

``DataOptions`` belongs in [`seqnet.config`][seqnet.config] beside the other settings; it lives
here until the lead moves it there, with exactly the fields of the shared contract.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataOptions:
    """Where a table file or class folder keeps its texts and labels, and how to split it.

    Attributes:
        text_columns: CSV/TSV columns or JSON Lines keys whose values, joined with one space,
            make a row's text.
        label_column: The column or key holding each row's label.
        test_data: A separate labelled test file or folder, in a form ``read_dataset`` reads;
            None holds out ``test_share`` of the training rows instead.
        class_names: A classes.txt (one name per line) naming integer labels.
        test_share: Share of each class held out as test rows when there is no test data.
        validation_share: Share of each class of the remaining training rows scored after
            each epoch; 0 holds none out.
    """

    text_columns: tuple[str, ...] = ("text",)
    label_column: str = "label"
    test_data: str | None = None
    class_names: str | None = None
    test_share: float = 0.2
    validation_share: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.text_columns, str) or not self.text_columns:
            raise ValueError(
                f"DataOptions.text_columns must be a non-empty tuple of column names, got "
                f"{self.text_columns!r}; e.g. ('title', 'description')."
            )
        for name, share, low_ok in (
            ("test_share", self.test_share, False),
            ("validation_share", self.validation_share, True),
        ):
            if isinstance(share, bool) or not isinstance(share, int | float):
                raise ValueError(f"DataOptions.{name} must be a number, got {share!r}.")
            if not (0 <= share < 1 if low_ok else 0 < share < 1):
                interval = "[0, 1)" if low_ok else "(0, 1)"
                raise ValueError(f"DataOptions.{name} must lie in {interval}, got {share}.")
