"""Labelled text in tables: CSV and TSV (a header row, then one row per text) and JSON Lines.

CSV is read by the csv module (quoted fields may hold commas, quotes and line breaks); TSV the
same with tabs, quotes honoured as spreadsheets and pandas write them. A JSON Lines file holds
one object per line. Every file is UTF-8 (a leading byte-order mark is skipped). A row whose
text (its text columns joined with one space) or label is empty is refused and counted; a row
of the wrong width, bad JSON or bytes that are not UTF-8 stop the reading with the line.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from seqnet.config import DataOptions
from seqnet.data.rows import TextRows

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_JSON_TYPES = {bool: "a JSON boolean", float: "a JSON number", list: "an array", dict: "an object"}


def read_table(path: Path, options: DataOptions) -> TextRows:
    """The rows of a CSV, TSV or JSON Lines file, by its suffix.

    Args:
        path: The file.
        options: Which columns hold the text and the label.

    Raises:
        ValueError: If the file is empty or not UTF-8, lacks a column (the message lists
            those found), has a malformed row (naming its line), or every row is refused.
    """
    content = decode_file(path)
    if not content.strip():
        raise ValueError(f"{path} is empty: it holds no header and no rows.")
    kind = TABLE_SUFFIXES[path.suffix.lower()]
    if kind == "jsonl":
        rows = _read_jsonl(content, str(path), options)
    else:
        rows = _read_delimited(content, str(path), options, "\t" if kind == "tsv" else ",")
    rows.check_not_empty()
    return rows


def decode_file(path: Path) -> str:
    """A file's text, or a ValueError naming the line of the first byte that is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}.") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 (byte {data[error.start]:#04x} at offset "
            f"{error.start}); save the file as UTF-8, e.g. iconv -f LATIN1 -t UTF-8."
        ) from None


def _missing_columns(wanted: list[str], found: list[str], source: str, where: str) -> None:
    missing = [name for name in wanted if name not in found]
    if missing:
        raise ValueError(
            f"{source} has no {where} {missing[0]!r}; found {', '.join(map(repr, found))}. "
            "Name the columns with --text-column and --label-column."
        )


def _read_delimited(content: str, source: str, options: DataOptions, delimiter: str) -> TextRows:
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter, strict=True)
    rows = TextRows(source)
    try:
        header = next(reader)
        wanted = [*options.text_columns, options.label_column]
        _missing_columns(wanted, header, source, "column")
        repeated = [name for name in dict.fromkeys(wanted) if header.count(name) > 1]
        if repeated:  # which of the two holds the text? Guessing would lose one silently
            raise ValueError(f"{source}: the header names the column {repeated[0]!r} twice.")
        text_at = [header.index(name) for name in options.text_columns]
        label_at = header.index(options.label_column)
        line = reader.line_num + 1  # where the next record starts
        for fields in reader:
            if fields:  # csv gives [] for a blank line
                if len(fields) != len(header):
                    raise ValueError(
                        f"{source}:{line}: expected {len(header)} fields, got {len(fields)}; "
                        "quote fields that hold a delimiter, a quote or a line break."
                    )
                text = " ".join(fields[at] for at in text_at)
                rows.add(text, fields[label_at].strip(), f"{source}:{line}")
            line = reader.line_num + 1
    except csv.Error as error:
        raise ValueError(f"{source}:{reader.line_num}: not valid CSV ({error}).") from None
    if not rows.read:
        raise ValueError(f"{source} has a header but no rows: nothing to train or test on.")
    return rows


def _read_jsonl(content: str, source: str, options: DataOptions) -> TextRows:
    rows = TextRows(source)
    found: dict[str, None] = {}  # keys in order of first use, for the missing-key error
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{source}:{number}: not valid JSON ({error.msg}, column {error.colno}); JSON "
                'Lines holds one object per line, e.g. {"text": "...", "label": "sports"}.'
            ) from None
        if not isinstance(row, dict):
            raise ValueError(f"{source}:{number}: expected a JSON object, got {_json_type(row)}.")
        found.update(dict.fromkeys(row))
        _add_json_row(rows, row, options, f"{source}:{number}")
    wanted = [*options.text_columns, options.label_column]
    if not all(name in found for name in wanted):  # else rows lacking a key are refused
        _missing_columns(wanted, list(found), source, "key")
    return rows


def _add_json_row(rows: TextRows, row: dict, options: DataOptions, place: str) -> None:
    missing = [name for name in (*options.text_columns, options.label_column) if name not in row]
    if missing:
        rows.refuse(f"no key {missing[0]!r}", place)
        return
    parts = [_json_text(row[name], name, place) for name in options.text_columns]
    label = row[options.label_column]
    if isinstance(label, bool) or not isinstance(label, str | int | float | None):
        raise ValueError(
            f"{place}: label {options.label_column!r} holds "
            f"{_json_type(label)}; labels are strings or integers."
        )
    rows.add(" ".join(parts), "" if label is None else str(label).strip(), place)


def _json_text(value, name: str, place: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(
            f"{place}: {name!r} holds {_json_type(value)}, not a string; texts are JSON strings."
        )
    return value


def _json_type(value) -> str:
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), type(value).__name__)
