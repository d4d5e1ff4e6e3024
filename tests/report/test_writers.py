"""The run's fast writers against the slower ones they replace: the workbook writer against
openpyxl's write-only mode (the same rows give the same cells; a value it does not write as
openpyxl would sends the workbook to openpyxl), the CSV options against Arrow's defaults, plotly.js
read from its file against plotly's own function."""

from __future__ import annotations

import datetime as dt
import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pytest

from critflow.analysis import Run
from critflow.model.load import load_model
from critflow.report import tables
from critflow.report.xlsx import Book, UnsupportedValueError, column_letter

ROWS = [
    ["text", "  padded ", "a & b < c > d", "line\nbreak\rreturn", "", "ünïcødé ✓", '"quoted"'],
    [1, -7, 2**60, 0.1, 1 / 3, 31.437968919930412, 1e-300],
    [float("nan"), float("inf"), -float("inf"), None, True, False, np.float64(2.5)],
    [None, None, "last column only"],
    [],
    [12345678901234567890, -0.0, 1e22, 5e-324, "=", "#", "tab\there"],
]


def _cells(path) -> dict[str, list[list]]:
    book = openpyxl.load_workbook(path)
    return {
        name: [list(r) for r in book[name].iter_rows(values_only=True)] for name in book.sheetnames
    }


def _write_openpyxl(path, sheets) -> None:
    book = openpyxl.Workbook(write_only=True)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)


def _write_fast(path, sheets) -> None:
    book = Book(path)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save()


def test_column_letters():
    assert [column_letter(i) for i in (0, 25, 26, 51, 52, 701, 702)] == [
        "A", "Z", "AA", "AZ", "BA", "ZZ", "AAA"
    ]  # fmt: skip


def test_same_cells_as_openpyxl(tmp_path):
    wide = [[float(i) * 1.1 for i in range(40)], [f"c{i}" for i in range(40)]]
    sheets = {"run": ROWS, "wide": wide, "empty": [], "name & <more>": [["x"]]}
    _write_openpyxl(tmp_path / "slow.xlsx", sheets)
    _write_fast(tmp_path / "fast.xlsx", sheets)
    slow, fast = _cells(tmp_path / "slow.xlsx"), _cells(tmp_path / "fast.xlsx")
    assert list(fast) == list(slow) == list(sheets)
    assert fast == slow
    # numbers keep openpyxl's 16 significant digits (what the workbook always held)
    assert fast["run"][1][5] == float(format(31.437968919930412, ".16g"))
    # pandas reads it as it read openpyxl's
    pd.testing.assert_frame_equal(
        pd.read_excel(tmp_path / "fast.xlsx", sheet_name="wide"),
        pd.read_excel(tmp_path / "slow.xlsx", sheet_name="wide"),
    )
    with zipfile.ZipFile(tmp_path / "fast.xlsx") as archive:
        assert archive.testzip() is None


@pytest.mark.parametrize(
    "value", ["=SUM(A1:A2)", "#N/A", "bad \x01 char", dt.date(2024, 1, 2), np.bool_(True)]
)
def test_refuses_what_openpyxl_writes_otherwise(tmp_path, value):
    book = Book(tmp_path / "x.xlsx")
    sheet = book.create_sheet("s")
    with pytest.raises(UnsupportedValueError):
        sheet.append(["ok", value])
    book.abandon()


def test_workbook_falls_back_to_openpyxl(tmp_path):
    """A table holding a date: the workbook is written by openpyxl, with the same cells."""
    frame = pd.DataFrame({"when": [dt.datetime(2024, 1, 2, 3, 4)], "value": [1.5]})
    path = tmp_path / "book.xlsx"
    tables._save_book(path, lambda book: tables._append(book, "dated", frame))
    cells = _cells(path)
    assert cells == {"dated": [["when", "value"], [dt.datetime(2024, 1, 2, 3, 4), 1.5]]}


@pytest.mark.parametrize("mode", ["summary", "full"])
def test_run_workbook_same_as_openpyxl(tmp_path, mode, monkeypatch):
    """The workbook of a run, written fast and (forced) by openpyxl: the same sheets and cells,
    the run time aside."""
    model = load_model("examples/battery_recycling_hydromet.yaml")
    run = Run.solve(model)
    choice = tables.ExcelChoice(mode)
    tables.write_tables(run, tmp_path / "fast", choice)

    class Refusing(Book):
        def create_sheet(self, title):
            raise UnsupportedValueError("forced")

    monkeypatch.setattr("critflow.report.xlsx.Book", Refusing)
    tables.write_tables(run, tmp_path / "slow", choice)
    fast = _cells(tmp_path / "fast" / "results.xlsx")
    slow = _cells(tmp_path / "slow" / "results.xlsx")
    for cells in (fast, slow):
        for row in cells["run"]:
            if row[0] == "run at (UTC)":
                row[1] = "-"
    assert list(fast) == list(slow)
    assert fast == slow
    assert len(fast["flows"]) > 10


def test_columns_same_as_rows(tmp_path):
    """Rows given column by column (a column of floats formatted in one pass) are the rows
    appended one by one."""
    columns = [
        [0.1, 1 / 3, float("inf"), -0.0, 1e300, 2.0],
        ["a", None, "  b", "c & d", "", "e"],
        [1, 2, 3, True, None, 2.5],
        [None] * 6,
    ]
    rows = [list(r) for r in zip(*columns, strict=True)]
    _write_openpyxl(tmp_path / "slow.xlsx", {"s": [["h1", "h2", "h3", "h4"], *rows]})
    book = Book(tmp_path / "fast.xlsx")
    sheet = book.create_sheet("s")
    sheet.append(["h1", "h2", "h3", "h4"])
    sheet.extend(columns)
    sheet.extend(columns)  # the row numbers go on
    book.save()
    slow = _cells(tmp_path / "slow.xlsx")["s"]
    assert _cells(tmp_path / "fast.xlsx")["s"] == slow + slow[1:]


def test_csv_options_write_arrows_default_text(tmp_path):
    """Rows formatted 65,536 at a time: the same bytes as Arrow's default CSV writer, over more
    rows than one such block (quotes, commas, missing values, floats of every size)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    n = 150_000
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "text": np.array(['a "quoted", text', "plain", None], dtype=object)[np.arange(n) % 3],
            "value": rng.lognormal(0, 20, n) * np.where(np.arange(n) % 7 == 0, -1, 1),
            "whole": np.arange(n),
        }
    )
    frame.loc[5, "value"] = np.nan
    tables._write_csv(frame, tmp_path / "fast.csv")
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "arrow.csv")
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "arrow.csv").read_bytes()


def test_plotly_js_is_plotlys():
    from plotly.offline import get_plotlyjs

    from critflow.report.html import _plotly_js

    assert _plotly_js() == get_plotlyjs()
