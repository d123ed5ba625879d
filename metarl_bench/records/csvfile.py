"""Results CSV files (leaderboard, probes): validated on every read, appended atomically.

A file is read only if every line fits its schema: the header holds the schema's columns,
every record has as many fields as the header, numeric columns parse, required fields are
filled, the bytes are UTF-8 and the file ends with a newline (a file cut inside its last
field would otherwise look whole).  Anything else raises :class:`CSVSchemaError` naming the
line, and no byte of the file is changed: the next append refuses it too, so a broken line
never becomes a permanent row.

``append_csv`` takes an inter-process lock (``filelock``), reads and validates the current
file, validates the new rows, writes old plus new rows to a temporary file in the same
folder, fsyncs it and renames it over the original, keeping the original's permission bits
(a new file gets the user's umask).  Concurrent writers never lose each other's rows, and a
writer killed at any moment leaves either the old or the new file.
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock


class CSVSchemaError(ValueError):
    """A results CSV that does not fit its schema, or rows that do not; the file is left as it was."""


@dataclass(frozen=True)
class Schema:
    """The columns of one kind of results CSV, in order, and what each must hold."""

    what: str  # "leaderboard", "probe": named in messages
    columns: tuple[str, ...]
    upgrade: str = ""  # how to bring a file of an older schema up to this one, named when a column lacks
    numeric: frozenset[str] = frozenset()  # empty or a finite number
    required: frozenset[str] = frozenset()  # never empty


def _is_number(text: str) -> bool:
    """A finite number: NaN and infinity are refused (an empty field says "no value")."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _check_record(where: str, record: Mapping[str, Any], schema: Schema) -> None:
    for column in schema.required:
        value = record.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "":
            raise CSVSchemaError(f"{where}: required field {column!r} is empty")
    for column in schema.numeric:
        value = record.get(column)
        if value is None or (isinstance(value, str) and value == ""):
            continue
        if isinstance(value, bool) or not _is_number(str(value)):
            raise CSVSchemaError(f"{where}: {column!r} must be a finite number or empty, got {str(value)[:40]!r}")


def validate_text(path: Path, data: bytes, schema: Schema) -> None:
    """Raise CSVSchemaError naming the first line of ``data`` that does not fit ``schema``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CSVSchemaError(f"{path} line {line}: bytes that are not UTF-8 ({exc.reason})") from None
    if not text.endswith("\n"):
        line = text.count("\n") + 1
        raise CSVSchemaError(f"{path} line {line}: the file ends inside a row (cut short?); it must end with a newline")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        missing = [c for c in schema.columns if c not in header]
        if missing:
            hint = f"; {schema.upgrade.format(path=path)}" if schema.upgrade else ""
            raise CSVSchemaError(f"{path} lacks {schema.what} columns {missing}{hint}")
        if len(set(header)) != len(header):
            raise CSVSchemaError(f"{path} line 1: repeated column names in the header")
        for fields in reader:
            where = f"{path} line {reader.line_num}"
            if len(fields) != len(header):
                raise CSVSchemaError(
                    f"{where}: {len(fields)} fields where the header has {len(header)} (a cut or inserted line?)"
                )
            _check_record(where, dict(zip(header, fields, strict=True)), schema)
    except csv.Error as exc:
        raise CSVSchemaError(f"{path} line {reader.line_num}: not valid CSV ({exc})") from None


def read_csv(path: str | Path, schema: Schema) -> pd.DataFrame:
    """The file as a DataFrame in the schema's column order (empty if absent); CSVSchemaError
    if any line does not fit."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(schema.columns))
    if not path.is_file():
        raise CSVSchemaError(f"{path} is not a file")
    validate_text(path, path.read_bytes(), schema)
    df = pd.read_csv(path, keep_default_na=True)
    columns = list(schema.columns)
    return df[columns + [c for c in df.columns if c not in columns]]


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def append_csv(path: str | Path, rows: Iterable[Mapping[str, Any]], schema: Schema) -> int:
    """Append ``rows`` (dicts with exactly the schema's keys) so that no row is lost or half-written."""
    rows = [dict(r) for r in rows]
    for i, r in enumerate(rows):
        unknown, missing = set(r) - set(schema.columns), set(schema.columns) - set(r)
        if unknown or missing:
            raise CSVSchemaError(
                f"row does not fit the {schema.what} schema: unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        _check_record(f"new {schema.what} row {i + 1}", r, schema)
    if not rows:
        return 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=120):
        old = read_csv(path, schema)
        new = pd.DataFrame(rows, columns=list(schema.columns))
        _write_atomically(path, new if old.empty else pd.concat([old, new], ignore_index=True), schema)
    return len(rows)


def replace_csv(path: str | Path, df: pd.DataFrame, schema: Schema) -> None:
    """Replace the file at ``path`` by ``df`` (every line checked first), atomically."""
    path = Path(path)
    for i, record in enumerate(df.to_dict("records")):
        _check_record(f"{path} line {i + 2}", record, schema)
    with FileLock(str(path) + ".lock", timeout=120):
        _write_atomically(path, df[list(schema.columns)], schema)


def _write_atomically(path: Path, df: pd.DataFrame, schema: Schema) -> None:
    """Write ``df`` beside ``path`` and rename it over: a writer killed at any moment leaves the
    old file or the new one, with the old file's permissions."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else _new_file_mode()
    df = df.copy()
    for column in schema.numeric:  # validated: numbers or empty; one dtype, so one format
        df[column] = pd.to_numeric(df[column].replace("", None))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            df.to_csv(f, index=False, float_format="%.6g")
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
