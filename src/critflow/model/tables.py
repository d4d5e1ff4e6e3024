"""User tables: the one reader of CSV files people give critflow.

Time series a model names (``{file: data/ev_sales.csv, column: tonnes}``), the samples of an
empirical distribution, and a company's own supply shares (``critflow criticality --shares``) are
all read here, so they share one behaviour: comment lines starting with ``#`` are skipped, header
cells are stripped, a missing column is named with the nearest header and the list of columns, and
a cell that is not a plain finite number is reported with its file, line and column and why it is
not one (a unit, a decimal comma, a thousands separator) — never with the cell's or the file's
content, since the file may not be a table at all.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from critflow.errors import CritflowError, known, nearest
from critflow.model.source import decode_utf8, read_limited

MAX_TABLE_BYTES = 64 * 1024 * 1024
"""Largest CSV file critflow reads, in bytes."""

_NAME_LIKE = re.compile(r"^[\w .()\[\]%/#°µ€+\-]{1,60}$")
_PLAIN_NUMBER = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*")
NUMBER_FIX = (
    "Write plain finite numbers with a decimal point (1234.5), no units or thousands separators."
)


def column_list(header: list[str]) -> str:
    """The header cells for an error message, when they look like column names.

    A first line that does not (control characters, very long cells, hundreds of cells) is not
    echoed: the file may not be a table at all."""
    if 0 < len(header) <= 200 and all(_NAME_LIKE.match(h) for h in header):
        return f"Columns: {known(header)}."
    return "Its first line does not look like a header of column names; is it a CSV file?"


def why_not_a_number(cell: str) -> str:
    """What is wrong with a cell that is not a number, without repeating the cell."""
    text = cell.strip()
    if not text:
        return "is empty"
    try:
        if not math.isfinite(float(text)):
            return "is NaN or infinity (or beyond 1.8e308), not a finite number"
    except ValueError:
        pass
    if re.fullmatch(r"[-+]?[\d.]+[ '\u00a0\u202f][\d. '\u00a0\u202f]*", text):
        return "is not a number (it has a space or apostrophe, a thousands separator?)"
    if re.fullmatch(r"[-+]?\d+,\d+", text):
        return "is not a number (a decimal comma?)"
    if re.search(r"\d", text) and re.search(r"[A-Za-z%]", text):
        return "is not a plain number (it has letters: a unit?)"
    return "is not a number"


@dataclass
class Table:
    """A CSV table as read: its name for messages, its header, and its rows with their line
    numbers in the file (cells padded to the header's length)."""

    shown: str
    header: list[str]
    rows: list[tuple[int, list[str]]]

    def column(self, name: str) -> int:
        """The index of column ``name``, or a CritflowError naming the nearest header."""
        if name in self.header:
            return self.header.index(name)
        listed = column_list(self.header)
        hint = nearest(name, self.header) if listed.startswith("Columns") else ""
        raise CritflowError(
            f"{self.shown}, line 1", f"has no column '{name}'", f"{hint} {listed}".strip()
        )

    def number(self, line: int, cell: str, name: str) -> float:
        """``cell`` (of column ``name`` on ``line``) as a finite float, or a CritflowError."""
        if _PLAIN_NUMBER.fullmatch(cell):
            value = float(cell)
            if math.isfinite(value):
                return value
        raise CritflowError(
            f"{self.shown}, line {line}",
            f"the cell in column '{name}' {why_not_a_number(cell)}",
            NUMBER_FIX,
        )

    def numbers(self, name: str, *, skip_blank: bool = False) -> np.ndarray:
        """Column ``name`` as finite floats (blank cells left out when ``skip_blank``)."""
        c = self.column(name)
        return np.array(
            [
                self.number(line, cells[c], name)
                for line, cells in self.rows
                if not (skip_blank and not cells[c].strip())
            ],
            dtype=float,
        )

    def texts(self, name: str) -> list[str]:
        """Column ``name`` as stripped text."""
        c = self.column(name)
        return [cells[c].strip() for _, cells in self.rows]


def parse_csv(text: str, shown: str) -> Table:
    """A :class:`Table` from CSV ``text``; ``shown`` names the file in messages."""
    try:
        raw = [
            (line, row)
            for line, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
            if row and not row[0].lstrip().startswith("#")
        ]
    except csv.Error as exc:
        raise CritflowError(
            shown, f"is not a readable CSV file ({exc})", "Save it as CSV (comma-separated)."
        ) from None
    if not raw:
        raise CritflowError(shown, "is empty", "Write a header row of column names, then data.")
    header = [h.strip() for h in raw[0][1]]
    width = len(header)
    rows = [(line, row + [""] * (width - len(row))) for line, row in raw[1:]]
    return Table(shown, header, rows)


def read_csv_file(path: str | Path, what: str = "a CSV table") -> Table:
    """Read a CSV file a user names on the command line (a regular file of at most
    :data:`MAX_TABLE_BYTES`, UTF-8 text)."""
    path = Path(path)
    shown = str(path)
    raw = read_limited(
        path, MAX_TABLE_BYTES, shown, missing_fix=f"Give the path of {what} (a CSV file)."
    )
    if b"\x00" in raw:
        raise CritflowError(
            shown,
            "is a binary file, not CSV text",
            "Save the data as CSV (in Excel: File → Save As → 'CSV UTF-8').",
        )
    return parse_csv(decode_utf8(raw, shown), shown)
