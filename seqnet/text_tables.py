"""Tables of texts in and out: plain text, CSV and JSON Lines files for ``seqnet predict``.

A [`TextTable`][seqnet.text_tables.TextTable] keeps every column of the file it came from, so
predictions can be written beside them, row for row, in the input's order.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seqnet.files import refuse_unless_regular, write_atomically

INPUT_FORMATS = ("text", "csv", "jsonl")
OUTPUT_FORMATS = ("csv", "jsonl")
# What a prediction adds to each row: the label and its score; for two classes the probability
# of the second (as seqnet 0.2 wrote it); the known words (0: the model knew none).
PREDICTION_COLUMNS = ("label", "score", "probability", "known_words")
PROBABILITY_PREFIX = "probability_"  # one column per class with all_probabilities
DEFAULT_TEXT_COLUMN = "text"
STDIN = "-"
_EXTENSION_FORMATS = {
    ".txt": "text",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
# Not .json: a file of JSON Lines is not one JSON document, and should not be named as one.
_OUTPUT_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_JSON_TYPES = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}
_SNIFF_BYTES = 8192  # enough to catch a model, an archive or an image passed by mistake
# OWASP's CSV injection rule: a cell starting so is a formula to a spreadsheet, which may run
# commands (=cmd|...) or fetch pages (=HYPERLINK); a leading ' makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain number such as -1.5 may start with + or -: a spreadsheet reads it as that number.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class TextTable:
    """Rows of a file of texts, each a dict of its columns, one of which holds the text.

    Args:
        columns: Column names in file order (for JSON Lines: keys in order of first use).
        rows: One dict per text, in file order.
        text_column: The column holding the text.
        source: Where the rows came from, for error messages.
    """

    columns: tuple[str, ...]
    rows: tuple[dict, ...]
    text_column: str = DEFAULT_TEXT_COLUMN
    source: str = "<texts>"

    @property
    def texts(self) -> list[str]:
        """The texts, in row order."""
        return [row[self.text_column] for row in self.rows]


def table_from_texts(texts: Sequence[str], source: str = "<texts>") -> TextTable:
    """A one-column table (``text``) of the given texts.

    Args:
        texts: Texts.
        source: Where they came from, for error messages.

    Returns:
        A table with one row per text.
    """
    rows = tuple({DEFAULT_TEXT_COLUMN: text} for text in texts)
    return TextTable((DEFAULT_TEXT_COLUMN,), rows, DEFAULT_TEXT_COLUMN, source)


def input_format(path: str | Path, override: str | None = None) -> str:
    """The format to read ``path`` in: ``override`` if given, else by extension.

    Args:
        path: The input file, or ``-`` for standard input.
        override: One of ``text``, ``csv``, ``jsonl``, or None.

    Returns:
        ``override``, or the extension's format; ``text`` for stdin and other extensions.

    Raises:
        ValueError: If ``override`` is not a known format.
    """
    if override is not None:
        return _known(override, INPUT_FORMATS)
    return _EXTENSION_FORMATS.get(Path(path).suffix.lower(), "text")


def output_format(path: str | Path, override: str | None = None) -> str:
    """The format to write ``path`` in: ``override`` if given, else by extension.

    Args:
        path: The output file.
        override: ``csv``, ``jsonl`` or None.

    Returns:
        ``csv`` or ``jsonl``.

    Raises:
        ValueError: If ``override`` is unknown or the extension tells no format.
    """
    if override is not None:
        return _known(override, OUTPUT_FORMATS)
    found = _OUTPUT_EXTENSIONS.get(Path(path).suffix.lower())
    if found is None:
        raise ValueError(
            f"cannot tell which format to write {path} in; name it .csv or .jsonl, "
            "or pass --output-format csv or jsonl."
        )
    return found


def _known(format: str, formats: tuple[str, ...]) -> str:
    """``format`` if it is one of ``formats``, else a ValueError listing them."""
    if format not in formats:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(formats)}.")
    return format


def read_texts(
    path: str | Path,
    *,
    format: str | None = None,
    text_column: str = DEFAULT_TEXT_COLUMN,
    stdin: io.IOBase | None = None,
) -> TextTable:
    """Read a file of texts: plain text (one text per line), CSV or JSON Lines.

    Args:
        path: The file, or ``-`` for standard input.
        format: ``text``, ``csv`` or ``jsonl``; None chooses by extension (stdin: ``text``).
        text_column: The CSV column or JSON key holding the text.
        stdin: The stream ``-`` reads (default ``sys.stdin``).

    Returns:
        The file's rows, in order.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is not UTF-8 text, is empty, or is not valid in its format.
    """
    source = "standard input" if str(path) == STDIN else str(path)
    data = _read_stdin(stdin) if str(path) == STDIN else _read_file(Path(path))
    content = decode_text(data, source)
    chosen = input_format(path, format)
    if chosen == "text":
        return parse_text(content, source)
    parse = parse_csv if chosen == "csv" else parse_jsonl
    return parse(content, source, text_column)


def _read_file(path: Path) -> bytes:
    """The bytes of ``path``, with a one-line error for a missing or unreadable file."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass a file of texts (.txt, .csv or .jsonl).")
    if not path.is_file():
        raise FileNotFoundError(f"No file at {path}.")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}.") from None


def _read_stdin(stdin: io.IOBase | None) -> bytes:
    """Standard input as bytes, so it is checked for binary data like a file."""
    stream = stdin if stdin is not None else sys.stdin
    binary = getattr(stream, "buffer", None)  # a replaced sys.stdin may be text only
    return binary.read() if binary is not None else stream.read().encode("utf-8")


def decode_text(data: bytes, source: str) -> str:
    """Decode UTF-8 text, refusing binary files passed by mistake.

    Args:
        data: The file's bytes.
        source: The file's name, for error messages.

    Returns:
        The text, without a byte-order mark.

    Raises:
        ValueError: If ``data`` has a NUL byte or is not valid UTF-8.
    """
    _refuse_nul(data, source)
    try:
        return data.decode("utf-8-sig")  # -sig: spreadsheets often start CSV with a BOM
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{source} is not UTF-8 text (invalid byte at offset {error.start}); "
            "save it as UTF-8, or convert it, e.g. with iconv -t UTF-8."
        ) from None


def _refuse_nul(data: bytes, source: str) -> None:
    """Refuse a NUL byte anywhere: text never holds one (bytes.find scans at memory speed)."""
    nul = data.find(b"\0")
    if nul < 0:
        return
    line = data.count(b"\n", 0, nul) + 1
    if nul < _SNIFF_BYTES:  # a .keras zip, a tar archive or a PNG has one within a few bytes
        raise ValueError(
            f"{source} is not a text file (line {line} has a NUL byte (offset {nul}), as a "
            "model, archive or image would); pass UTF-8 text, CSV or JSON Lines with one "
            "text per row."
        )
    raise ValueError(
        f"{source}, line {line} has a NUL byte (offset {nul}), which text never holds; "
        "remove it, e.g. with tr -d '\\000'."
    )


def _split_lines(content: str) -> list[str]:
    """Lines at \\n, \\r\\n or \\r only: str.splitlines also splits at form feeds and the like,
    which can occur inside a text."""
    return content.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_text(content: str, source: str) -> TextTable:
    """One text per non-blank line.

    Args:
        content: The file's text.
        source: The file's name, for error messages.

    Returns:
        A one-column (``text``) table.

    Raises:
        ValueError: If there is no non-blank line.
    """
    texts = [line for line in _split_lines(content) if line.strip()]
    if not texts:
        raise ValueError(f"{source} is empty: it holds no text to classify.")
    return table_from_texts(texts, source)


def parse_csv(content: str, source: str, text_column: str = DEFAULT_TEXT_COLUMN) -> TextTable:
    """A CSV file with a header row; quoted fields may hold commas, quotes and newlines.

    Args:
        content: The file's text.
        source: The file's name, for error messages.
        text_column: The column holding the text.

    Returns:
        A table with the file's columns and rows.

    Raises:
        ValueError: If the file is empty, has no ``text_column``, repeats a column name,
            has a row with another number of fields than the header, or is not valid CSV.
    """
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise ValueError(f"{source} is empty: a CSV file needs a header row.")
        _check_csv_header(header, source, text_column)
        # csv gives [] for a blank line, e.g. the trailing ones many editors leave.
        rows = tuple(
            _csv_row(header, fields, source, reader.line_num) for fields in reader if fields
        )
    except csv.Error as error:
        raise ValueError(f"{source}, line {reader.line_num}: not valid CSV ({error}).") from None
    if not rows:
        raise ValueError(f"{source} has a header but no rows: no text to classify.")
    return TextTable(tuple(header), rows, text_column, source)


def _check_csv_header(header: list[str], source: str, text_column: str) -> None:
    """Refuse a header without the text column, or with a name twice (one would be lost)."""
    if text_column not in header:
        raise ValueError(
            f"{source} has no column {text_column!r}; its columns are "
            f"{', '.join(map(repr, header))}. Name the text column with --text-column."
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"{source} repeats the column(s) {', '.join(map(repr, repeated))}.")


def _csv_row(header: list[str], fields: list[str], source: str, line: int) -> dict:
    """One CSV row as a dict; a row of another width means a quote or comma went astray."""
    if len(fields) != len(header):
        raise ValueError(
            f"{source}, line {line}: {len(fields)} fields, but the header has {len(header)}; "
            "quote fields that contain commas."
        )
    return dict(zip(header, fields, strict=True))


def parse_jsonl(content: str, source: str, text_column: str = DEFAULT_TEXT_COLUMN) -> TextTable:
    """JSON Lines: one JSON object per line, its ``text_column`` key holding the text.

    Args:
        content: The file's text.
        source: The file's name, for error messages.
        text_column: The key holding the text.

    Returns:
        A table whose columns are the objects' keys in order of first use.

    Raises:
        ValueError: If a line is not a JSON object, lacks ``text_column`` or its value is not
            a string (naming the line), or if there is no line.
    """
    rows = []
    for number, line in enumerate(_split_lines(content), start=1):
        if line.strip():
            rows.append(_jsonl_row(line, f"{source}, line {number}", text_column))
    if not rows:
        raise ValueError(f"{source} is empty: it holds no text to classify.")
    columns = dict.fromkeys(key for row in rows for key in row)  # ordered, no repeats
    return TextTable(tuple(columns), tuple(rows), text_column, source)


def _jsonl_row(line: str, where: str, text_column: str) -> dict:
    """One JSON Lines object, checked to hold a string text under ``text_column``."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{where}: not valid JSON ({error.msg}, column {error.colno}); JSON Lines needs "
            f'one object per line, e.g. {{"{text_column}": "A great film."}}.'
        ) from None
    if not isinstance(row, dict):
        raise ValueError(
            f"{where}: expected a JSON object, got {_json_type(row)}; JSON Lines needs "
            f'one object per line, e.g. {{"{text_column}": "A great film."}}.'
        )
    if text_column not in row:
        raise ValueError(
            f"{where} has no key {text_column!r} (its keys: {', '.join(map(repr, row)) or 'none'}"
            "); name the text key with --text-column."
        )
    if not isinstance(row[text_column], str):
        raise ValueError(
            f"{where}: {text_column!r} holds {_json_type(row[text_column])}, not a string."
        )
    return row


def _json_type(value) -> str:
    """What JSON calls the type of a parsed value: 'a JSON number', 'null', ..."""
    if value is None:
        return "null"
    return f"a JSON {_JSON_TYPES.get(type(value), type(value).__name__)}"


def prediction_columns(
    classes: Sequence[str], *, all_probabilities: bool = False
) -> tuple[str, ...]:
    """The columns a prediction adds to each row, in order.

    Args:
        classes: The run's class names, in index order.
        all_probabilities: Add ``probability_<class>`` for every class.

    Returns:
        ``label``, ``score``, ``probability`` (two classes only), ``known_words``, then the
        per-class columns if asked.
    """
    columns = [name for name in PREDICTION_COLUMNS if len(classes) == 2 or name != "probability"]
    if all_probabilities:
        columns += [PROBABILITY_PREFIX + name for name in classes]
    return tuple(columns)


def check_output(
    output: str | Path,
    table: TextTable,
    source: str | Path | None,
    columns: Sequence[str] = PREDICTION_COLUMNS,
    *,
    force: bool = False,
) -> None:
    """Refuse an output that would overwrite the input, the input's own columns, or (unless
    ``force``) any file already there, such as a run's own ``metrics.json``.

    Args:
        output: The file predictions go to.
        table: The texts being classified.
        source: The input file, or None (or ``-``) for texts not from a file.
        columns: The columns the predictions add
            ([`prediction_columns`][seqnet.text_tables.prediction_columns]).
        force: Allow replacing an existing regular file other than the input.

    Raises:
        ValueError: If ``output`` exists and is not a regular file (a FIFO, a device, a
            folder), is the input file, exists without ``force``, or the input already has
            one of ``columns``.
    """
    refuse_unless_regular(Path(output))
    if source is not None and str(source) != STDIN and _same_file(Path(output), Path(source)):
        raise ValueError(
            f"--output {output} is the input file; write the predictions to another file, "
            "so the texts are never lost."
        )
    if Path(output).exists() and not force:
        raise ValueError(
            f"--output {output} exists; replace it with --force or choose another path."
        )
    clashes = [name for name in columns if name in table.columns]
    if clashes:
        raise ValueError(
            f"{table.source} already has the column(s) {', '.join(map(repr, clashes))}, which "
            "the predictions would overwrite; rename them in the input, e.g. to 'true_label'."
        )


def _same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file, also through links; a missing one names no file."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return first.resolve() == second.resolve()


def prediction_rows(
    table: TextTable, predictions: Sequence, *, all_probabilities: bool = False
) -> list[dict]:
    """Each input row with its prediction's columns
    ([`prediction_columns`][seqnet.text_tables.prediction_columns]).

    Args:
        table: The texts.
        predictions: One [`Prediction`][seqnet.predict.Prediction] per row, in order.
        all_probabilities: Add each class's probability as ``probability_<class>``.

    Returns:
        New dicts: the row's columns, then the prediction's.
    """
    return [
        {**row, **_prediction_cells(p, all_probabilities)}
        for row, p in zip(table.rows, predictions, strict=True)
    ]


def _prediction_cells(prediction, all_probabilities: bool) -> dict:
    """One prediction as flat cells: its JSON without the text, the probabilities spread
    over one column per class."""
    cells = prediction.to_json(all_probabilities=all_probabilities)
    del cells["text"]
    for name, probability in cells.pop("probabilities", {}).items():
        cells[PROBABILITY_PREFIX + name] = probability
    return cells


def format_csv(columns: Sequence[str], rows: Sequence[dict], *, raw: bool = False) -> str:
    """Rows as CSV with a header; a JSON value that is not a string is written as JSON.

    Args:
        columns: The header, in order.
        rows: Dicts; a missing column is written empty.
        raw: Write every cell verbatim; by default a text cell (header included) that a
            spreadsheet would run as a formula gets a leading ``'``
            ([`neutralise_formula`][seqnet.text_tables.neutralise_formula]).

    Returns:
        The CSV text.
    """

    def cell(value):
        value = _csv_cell(value)
        return value if raw else neutralise_formula(value)

    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([cell(name) for name in columns])
    for row in rows:
        writer.writerow([cell(row.get(name)) for name in columns])
    return buffer.getvalue()


def _csv_cell(value) -> str | int | float:
    """A CSV cell: strings and numbers as they are, None empty, lists and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value
    return json.dumps(value, ensure_ascii=False)  # true/false and nested values, as in JSON


def neutralise_formula(cell):
    """``cell`` with a ``'`` in front if it is text a spreadsheet would take for a formula.

    OWASP's rule for CSV injection: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or
    a carriage return is prefixed with a single quote, which spreadsheets show as text. A
    plain number (``-1.5``) and values that are not strings are kept as they are.

    Args:
        cell: A CSV cell's value.

    Returns:
        The value to write.
    """
    formula = isinstance(cell, str) and cell.startswith(FORMULA_STARTS)
    return "'" + cell if formula and not _PLAIN_NUMBER.fullmatch(cell) else cell


def format_jsonl(rows: Sequence[dict]) -> str:
    """Rows as JSON Lines, one object per line, non-ASCII text kept readable.

    Args:
        rows: JSON-ready dicts.

    Returns:
        The JSON Lines text, ending with a newline.
    """
    return "".join(_json_line(row) + "\n" for row in rows)


def _json_line(row: dict) -> str:
    """One object on one line; U+2028 and U+2029 escaped, as str.splitlines breaks at them."""
    line = json.dumps(row, ensure_ascii=False)
    return line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def write_predictions(
    path: str | Path,
    table: TextTable,
    predictions: Sequence,
    format: str,
    *,
    raw_csv: bool = False,
    all_probabilities: bool = False,
) -> None:
    """Write every input column plus the predictions' columns, atomically.

    The file appears complete or not at all: an interrupted run leaves no half-written file.

    Args:
        path: The output file.
        table: The texts, as read.
        predictions: One prediction per row, in order.
        format: ``csv`` or ``jsonl``.
        raw_csv: Write CSV cells verbatim, even those a spreadsheet would run as formulas
            (see [`format_csv`][seqnet.text_tables.format_csv]); JSON Lines are always verbatim.
        all_probabilities: Add each class's probability as ``probability_<class>``.

    Raises:
        ValueError: If the file cannot be written, or exists and is not a regular file.
    """
    rows = prediction_rows(table, predictions, all_probabilities=all_probabilities)
    if format == "csv":
        classes = predictions[0].classes if predictions else ()
        added = prediction_columns(classes, all_probabilities=all_probabilities)
        text = format_csv([*table.columns, *added], rows, raw=raw_csv)
    else:
        text = format_jsonl(rows)
    try:
        write_atomically(Path(path), text.encode("utf-8"))
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}.") from None
