"""Time series read from CSV files: ``{file: data/ev_sales.csv, column: tonnes}``.

Anywhere a model accepts a time series {year: value}, it may name a CSV file (relative to the
model file) with a ``year`` column (or ``year_column: …``) and the column holding the values. The
reference is replaced by the series before validation, so every later check sees ordinary data.
Files hold one row per year: a missing year inside the range is an error, not an interpolation.

A model file may come from someone else, so the files it names are read with care
(:func:`open_data_file`): they must lie inside the model's folder (after following symbolic links
and ``..``) unless the user allows files outside it (``--allow-outside-files``); they must be
regular files of at most :data:`MAX_DATA_FILE_BYTES` bytes (``/dev/zero``, a pipe or a folder is
refused before reading); and error messages name lines and columns, never a file's content.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError, Problem
from critflow.model.source import SourceMap, decode_utf8, read_limited
from critflow.model.tables import MAX_TABLE_BYTES, parse_csv

KEYS = {"file", "column", "year_column"}

MAX_DATA_FILE_BYTES = MAX_TABLE_BYTES
"""Largest data file (series, empirical samples) a model may name, in bytes."""

OUTSIDE_FLAG = "--allow-outside-files"
"""The command-line option that lets a model read files outside its folder."""


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and "file" in value and set(value) <= KEYS


def open_data_file(
    name: Any, base: Path, where: str, allow_outside_files: bool = False
) -> tuple[str, str]:
    """The text of a data file a model names, and the name to show in messages.

    ``name`` is resolved against ``base`` (the model's folder); unless ``allow_outside_files``,
    the resolved file must lie inside ``base``. Raises a CritflowError that names ``where`` (the
    field of the model) and the file as the model wrote it — never the file's content."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise CritflowError(
            where,
            "'file' must be the path of a CSV file, relative to the model file",
            "Write for example file: data/ev_sales.csv.",
        )
    shown = name
    root = base.resolve()
    path = (base / name).resolve()  # follows symbolic links and '..'
    if not allow_outside_files and not path.is_relative_to(root):
        written = Path(name)
        how = (
            "an absolute path"
            if written.is_absolute()
            else "'..' leads out of it"
            if ".." in written.parts
            else "a symbolic link leads out of it"
        )
        raise CritflowError(
            where,
            f"the data file '{shown}' lies outside the model's folder ({how})",
            "A model reads files in its own folder and below, so a model from someone else "
            "cannot read other files on this machine. Copy the file next to the model, or, if you "
            f"trust the model, pass {OUTSIDE_FLAG} (Python: allow_outside_files=True).",
        )
    raw = read_limited(
        path,
        MAX_DATA_FILE_BYTES,
        f"{where}: the data file '{shown}'",
        missing_fix="Give a path relative to the model file, for example data/ev_sales.csv.",
        large_fix="A data file a model names is at most "
        f"{MAX_DATA_FILE_BYTES // 2**20} MiB; check that this is the file you meant.",
    )
    if b"\x00" in raw:
        raise CritflowError(
            f"{shown}",
            "is a binary file, not CSV text",
            "Save the data as CSV (in Excel: File → Save As → 'CSV UTF-8').",
        )
    return decode_utf8(raw, shown), shown


def resolve_series_files(
    data: Any, source: SourceMap, base: Path, allow_outside_files: bool = False
) -> Any:
    """``data`` with every file reference replaced by its {year: value} series."""
    problems: list[Problem] = []

    def walk(value: Any, path: tuple) -> Any:
        if _is_reference(value):
            try:
                return read_series(value, base, source.where(path), allow_outside_files)
            except CritflowError as exc:
                problems.extend(exc.problems)
                return value
        if isinstance(value, dict):
            if not any(isinstance(v, dict | list) for v in value.values()):
                return dict(value)  # plain values (a time series): no reference inside
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    resolved = walk(data, ())
    if problems:
        raise CritflowError(problems)
    return resolved


def read_series(
    reference: dict[str, Any], base: Path, where: str, allow_outside_files: bool = False
) -> dict[int, float]:
    """Read one ``{file, column, year_column}`` reference as {year: value}."""
    if "column" not in reference:
        raise CritflowError(
            where, "a file series needs 'column'", "Add column: the header of the values."
        )
    column = str(reference["column"])
    year_column = str(reference.get("year_column", "year"))
    text, shown = open_data_file(reference["file"], base, where, allow_outside_files)
    table = parse_csv(text, shown)
    y, c = table.column(year_column), table.column(column)
    series: dict[int, float] = {}
    for line, cells in table.rows:
        if not re.fullmatch(r"\s*\d{1,4}\s*", cells[y]):
            raise CritflowError(
                f"{shown}, line {line}",
                f"the cell in column '{year_column}' is not a year",
                "Write whole years such as 2025 (four digits at most).",
            )
        year = int(cells[y])
        value = table.number(line, cells[c], column)
        if year in series:
            raise CritflowError(
                f"{shown}, line {line}", f"year {year} appears twice", "Keep one row per year."
            )
        series[year] = value
    if not series:
        raise CritflowError(shown, "has a header but no rows", "Add one row per year.")
    missing = sorted(set(range(min(series), max(series) + 1)) - set(series))
    if missing:
        raise CritflowError(
            shown,
            f"has no row for {', '.join(map(str, missing[:5]))}"
            + (" …" if len(missing) > 5 else "")
            + f" (a gap in {min(series)}–{max(series)})",
            "Give every year in the range; critflow does not fill gaps in data files.",
        )
    return dict(sorted(series.items()))
