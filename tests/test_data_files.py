"""Every shipped data table names its columns on its first line, a source column among them, and
gives every row a source (a plain CSV reader, or a person opening the file, sees where each number
comes from)."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from critflow import data


@pytest.mark.parametrize("name", data.table_names())
def test_a_shipped_table_starts_with_its_header_and_sources_every_row(name):
    text = resources.files("critflow.data").joinpath(f"{name}.csv").read_text(encoding="utf-8")
    header = next(csv.reader([text.splitlines()[0]]))
    assert "source" in header, f"{name}.csv: the first line is not a header with 'source'"
    table = data.table(name)
    missing = table["source"].isna() | (table["source"].astype(str).str.strip() == "")
    assert not missing.any(), f"{name}.csv: rows {list(table.index[missing])} have no source"
