"""Time series read from CSV files: ``{file: data/ev_sales.csv, column: tonnes}``.

Anywhere a model accepts a time series {year: value}, it may name a CSV file (relative to the
model file) with a ``year`` column (or ``year_column: …``) and the column holding the values. The
reference is replaced by the series before validation, so every later check sees ordinary data.
Files hold one row per year: a missing year inside the range is an error, not an interpolation.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError, Problem, known, nearest
from critflow.model.source import SourceMap

KEYS = {"file", "column", "year_column"}


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and "file" in value and set(value) <= KEYS


def resolve_series_files(data: Any, source: SourceMap, base: Path) -> Any:
    """``data`` with every file reference replaced by its {year: value} series."""
    problems: list[Problem] = []

    def walk(value: Any, path: tuple) -> Any:
        if _is_reference(value):
            try:
                return read_series(value, base, source.where(path))
            except CritflowError as exc:
                problems.extend(exc.problems)
                return value
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    resolved = walk(data, ())
    if problems:
        raise CritflowError(problems)
    return resolved


def read_series(reference: dict[str, Any], base: Path, where: str) -> dict[int, float]:
    """Read one ``{file, column, year_column}`` reference as {year: value}."""
    if "column" not in reference:
        raise CritflowError(
            where, "a file series needs 'column'", "Add column: the header of the values."
        )
    path = base / str(reference["file"])
    column = str(reference["column"])
    year_column = str(reference.get("year_column", "year"))
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [r for r in csv.reader(handle) if r and not r[0].lstrip().startswith("#")]
    except OSError as exc:
        raise CritflowError(
            where,
            f"the series file '{path}' cannot be read ({exc.strerror or exc})",
            "Give a path relative to the model file, for example data/ev_sales.csv.",
        ) from None
    if not rows:
        raise CritflowError(
            f"{path}", "is empty", f"Write a header with '{year_column}' and '{column}'."
        )
    header = [h.strip() for h in rows[0]]
    for needed in (year_column, column):
        if needed not in header:
            raise CritflowError(
                f"{path}, line 1",
                f"has no column '{needed}'",
                f"{nearest(needed, header)} Columns: {known(header)}.".strip(),
            )
    y, c = header.index(year_column), header.index(column)
    series: dict[int, float] = {}
    for line, row in enumerate(rows[1:], start=2):
        cells = row + [""] * (len(header) - len(row))
        try:
            year = int(cells[y].strip())
        except ValueError:
            raise CritflowError(
                f"{path}, line {line}",
                f"'{cells[y]}' in column '{year_column}' is not a year",
                "Write whole years such as 2025.",
            ) from None
        try:
            value = float(cells[c].strip())
        except ValueError:
            raise CritflowError(
                f"{path}, line {line}",
                f"'{cells[c]}' in column '{column}' is not a number",
                "Write plain numbers with a decimal point (1234.5), no units or thousands separators.",
            ) from None
        if year in series:
            raise CritflowError(
                f"{path}, line {line}", f"year {year} appears twice", "Keep one row per year."
            )
        series[year] = value
    if not series:
        raise CritflowError(f"{path}", "has a header but no rows", "Add one row per year.")
    missing = sorted(set(range(min(series), max(series) + 1)) - set(series))
    if missing:
        raise CritflowError(
            f"{path}",
            f"has no row for {', '.join(map(str, missing[:5]))}"
            + (" …" if len(missing) > 5 else "")
            + f" (a gap in {min(series)}–{max(series)})",
            "Give every year in the range; critflow does not fill gaps in data files.",
        )
    return dict(sorted(series.items()))
