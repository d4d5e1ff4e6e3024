"""Model workbooks: a critflow model as an Excel file with one sheet per part of the model.

Process engineers keep flowsheet data in Excel; a model workbook holds the same data as a model
file (YAML/JSON), laid out for people:

========  ===================================================================================
sheet     rows
========  ===================================================================================
README    what each sheet holds and how cells are written
model     name, description, time span, unit, elements, and every other top-level setting
parameters  one row per parameter: name, value
processes one row per process: id, kind, name, description, and further settings
transfer  transfer coefficients: one row per (process, output flow), one column per element
          (``default`` for elements not listed)
inventories  one row per (process, item): the amount per unit of throughput ('180 kWh/t')
flows     one row per flow: id, from, to, value, unit, fate, role, prices, …
compositions  one row per flow with a composition, one column per element
scenarios one row per scenario setting: scenario, section, key, value
measurements  one row per measurement (for reconciliation)
lists     the ids, kinds and fates the other sheets' drop-down lists offer
========  ===================================================================================

A cell holds a number, a text (an expression such as ``1 - decasing_yield`` or a quantity such as
``12 kt/a``), or — for a time series, a distribution or a nested setting — the value written in
YAML's one-line form (``{2025: 100, 2030: 140}``, ``{value: 0.9, distribution: uniform, low: 0.8,
high: 0.95}``). Reading a workbook gives the same data as the model file it was written from, so a
model converts YAML → Excel → YAML unchanged; errors name the sheet, row, column and header.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import zipfile
from pathlib import Path
from typing import Any
from zlib import error as zlib_error

import yaml

from critflow.errors import CritflowError
from critflow.model.source import WORKBOOK_SUFFIXES as WORKBOOK_SUFFIXES  # re-exported
from critflow.model.source import SourceMap, read_limited

MAX_WORKBOOK_BYTES = 16 * 1024 * 1024
"""Largest model workbook read, in bytes (as stored, compressed)."""
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
"""Largest total size of a workbook's parts once unpacked: a 'zip bomb' stops here."""
FLOAT_TAG = "!!float "
"""Marks a number Excel cannot hold exactly (17 significant digits, NaN, infinity)."""
MAX_ROWS = 100_000
"""Most rows read from one sheet."""
MAX_XML_TAGS = 1_000_000
"""Most XML tags ('<') in a workbook's parts: openpyxl spends tens of microseconds on each cell or
shared string, so a small file of densely packed cells would otherwise take minutes (the shipped
examples hold fewer than 5,000)."""
SHEETS = (
    "model", "parameters", "processes", "transfer", "inventories", "flows", "compositions",
    "scenarios", "measurements",
)  # fmt: skip
"""The sheets read; README and lists are written for people and not read."""
HEADERS = {
    "model": ["key", "value"],
    "parameters": ["name", "value"],
    "processes": ["id"],
    "transfer": ["process", "output"],
    "inventories": ["process", "item", "amount"],
    "flows": ["id"],
    "compositions": ["flow"],
    "scenarios": ["scenario", "section", "key", "value"],
}
"""The headers each sheet needs: the first columns (read by position) of model, parameters,
transfer, inventories, compositions and scenarios; the column 'id' (anywhere) of processes and
flows."""
POSITIONAL = {"model", "parameters", "transfer", "inventories", "compositions", "scenarios"}

FLOW_COLUMNS = [
    "id", "from", "to", "name", "description", "value", "unit", "fate", "role", "product",
    "compound", "origin", "price", "gate_fee", "displaces",
]  # fmt: skip
PROCESS_COLUMNS = ["id", "kind", "name", "description", "balancing", "consumption"]
MEASUREMENT_COLUMNS = ["flow", "element", "value", "concentration", "sd", "period", "scenario"]
SETTINGS = "settings (YAML)"
"""Header of the column that holds a row's remaining settings, in YAML's one-line form."""
KINDS = ["source", "sink", "transfer", "market", "stock"]
FATES = [
    "recycled",
    "energy_recovery",
    "landfill",
    "incineration",
    "excluded",
    "intermediate",
    "lost",
]
ROLES = ["feed", "additive", "fuel", "energy_carrier", "water"]

README = [
    "critflow model workbook",
    "",
    "Each sheet holds one part of the model; 'critflow validate' and 'critflow run' read this file "
    "as they read a model file (YAML), and 'critflow convert' turns one into the other.",
    "A cell holds a number, a text (an expression such as '1 - decasing_yield', a quantity such as "
    "'12 kt/a'), or a time series, distribution or nested setting in YAML's one-line form: "
    "{2025: 100, 2030: 140} or {value: 0.9, distribution: uniform, low: 0.8, high: 0.95}.",
    "",
    "model: name, description, time.start, time.end, unit, elements (a list: [Li, Co, Ni]) and "
    "every other top-level setting (impact, economics, indicators, scope) in YAML's one-line form.",
    "parameters: one row per named parameter.",
    "processes: one row per process; 'settings (YAML)' holds the rest (a stock's lifetime, "
    "driven_by, initial_stock; a cost).",
    "transfer: transfer coefficients, one row per (process, output flow), one column per element; "
    "'default' applies to elements without their own column value. Leave a cell empty when the "
    "coefficient is not given.",
    "inventories: the amount of each item (electricity, reagents) per unit a process receives.",
    "flows: one row per flow; given values, units, fates (for recycling efficiency), prices.",
    "compositions: the element mass fractions of flows that carry goods (one column per element).",
    "scenarios: one row per scenario setting: section parameters, flows, inventories, impact or "
    "prices; key the parameter, flow, or process; value as in the other sheets. A scenario "
    "without settings has one row with section and key empty.",
    "measurements: measured flows for 'critflow reconcile'.",
    "lists: what the drop-down lists offer (process ids, kinds, fates, roles); not read.",
    "",
    "Rows are read from the second row (the first holds the headers); an empty id ends nothing — "
    "empty rows are skipped. Keep the header cells as written.",
]


# ----------------------------------------------------------------------------- cell encoding
def _cell(value: Any) -> Any:
    """A model value as an Excel cell: numbers and texts as they are, the rest as YAML."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and (not math.isfinite(value) or float(f"{value:.16g}") != value):
        # Excel files hold numbers as text with 16 digits (openpyxl writes '%.16g'), NaN and
        # infinity not at all: such a number is written as a tagged YAML float, exactly
        return FLOAT_TAG + yaml.safe_dump(value).split("\n")[0]
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        if value.startswith("="):
            # Excel (and openpyxl) take a text starting with '=' for a formula: quote it
            return _yaml_line(value, style="'")
        if (
            value[:1] in "{['\""
            or value.startswith(FLOAT_TAG)
            or value.strip() != value
            or value == ""
            or ILLEGAL_CHARACTERS_RE.search(value)
        ):
            return _yaml_line(value)  # a text that would read as YAML (or lose spaces) is quoted
        return value
    return _yaml_line(value)


class _Dumper(yaml.SafeDumper):
    """Quotes every text that YAML 1.1 (PyYAML) or YAML 1.2 (critflow's reader) would read as a
    number, boolean or null: '08' is a text to PyYAML but the number 8 to critflow."""


def _add_resolvers() -> None:
    from critflow.model.source import _BOOL, _FLOAT, _INT, _NULL

    for tag, pattern, first in (
        ("tag:yaml.org,2002:bool", _BOOL, "tTfF"),
        ("tag:yaml.org,2002:int", _INT, "-+0123456789"),
        ("tag:yaml.org,2002:float", _FLOAT, "-+.0123456789"),
        ("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""]),
    ):
        _Dumper.add_implicit_resolver(tag, pattern, list(first))


_add_resolvers()


def _yaml_line(value: Any, style: str | None = None) -> str:
    """``value`` in YAML's one-line form; readable (unicode as is) where that reads back the same,
    escaped otherwise (YAML takes some unicode characters, such as NEL, for line breaks)."""
    for readable in (True, False):
        line = (
            yaml.dump(
                value,
                Dumper=_Dumper,
                default_flow_style=True,
                width=math.inf,
                sort_keys=False,
                allow_unicode=readable,
                default_style=style,
            )
            .strip()
            .removesuffix("\n...")
            .strip()
        )
        if not readable or yaml.safe_load(line) == value:
            return line
    return line


def _value(cell: Any, where: str) -> Any:
    """A cell as a model value: numbers and texts as they are, YAML one-liners parsed."""
    if isinstance(cell, str):
        text = cell.strip()
        if text.startswith(FLOAT_TAG):
            try:
                return float(yaml.safe_load(text))
            except (yaml.YAMLError, TypeError, ValueError):
                raise CritflowError(
                    where, "is not a number after '!!float'", "Write a number such as 0.95."
                ) from None
        if text[:1] in "{['\"":
            from critflow.model.source import parse_text

            data, _ = parse_text(text, where)
            return data
        return cell
    if isinstance(cell, float) and cell.is_integer() and abs(cell) < 2**53:
        return cell  # keep 2.0 a float: Excel stores numbers as doubles
    if isinstance(cell, dt.date | dt.time | dt.timedelta):
        raise CritflowError(
            where,
            f"holds a date or time ({cell}), and no part of a model is one; Excel turns what is "
            "typed as '3-1', '1/3' or '12:30' into a date, or the cell is formatted as a date",
            "Format the cell as Number (or Text) and type the value again: a year as 2030, a "
            "share as 0.95, a quantity as '12 kt/a'.",
        )
    return cell


# ----------------------------------------------------------------------------- writing
def _columns_of(rows: list[dict[str, Any]], first: list[str]) -> list[str]:
    seen = list(first)
    for row in rows:
        seen += [k for k in row if k not in seen]
    return seen


def workbook_sheets(data: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """The sheets of a model workbook as rows of cells (the first row holds the headers)."""
    elements = [str(e) for e in data.get("elements", [])]
    sheets: dict[str, list[list[Any]]] = {"README": [[line] for line in README]}

    top = [["key", "value"]]
    for key, value in data.items():
        if key in ("parameters", "processes", "flows", "scenarios", "measurements"):
            continue
        if key == "time" and isinstance(value, dict) and set(value) <= {"start", "end"}:
            top += [[f"time.{k}", _cell(v)] for k, v in value.items()]
        else:
            top.append([key, _cell(value)])
    sheets["model"] = top

    sheets["parameters"] = [["name", "value"]] + [
        [name, _cell(value)] for name, value in (data.get("parameters") or {}).items()
    ]

    processes = data.get("processes") or []
    rows, transfer, inventories = [], [], []
    for process in processes:
        rest = {
            k: v for k, v in process.items() if k not in (*PROCESS_COLUMNS, "transfer", "inventory")
        }
        rows.append(
            [_cell(process.get(c)) for c in PROCESS_COLUMNS] + [_cell(rest) if rest else None]
        )
        for output, coefficients in (process.get("transfer") or {}).items():
            transfer.append((process.get("id"), output, coefficients))
        inventory = process.get("inventory")
        if isinstance(inventory, dict):
            inventories += [[process.get("id"), item, _cell(v)] for item, v in inventory.items()]
        elif inventory is not None:
            inventories.append([process.get("id"), "", _cell(inventory)])
    sheets["processes"] = [[*PROCESS_COLUMNS, SETTINGS], *rows]
    keys = _columns_of(
        [c if isinstance(c, dict) else {} for _, _, c in transfer], ["default", *elements]
    )
    sheets["transfer"] = [["process", "output", *keys]] + [
        [p, o, *([_cell(c.get(k)) for k in keys] if isinstance(c, dict) else [_cell(c)])]
        for p, o, c in transfer
    ]
    sheets["inventories"] = [["process", "item", "amount"], *inventories]

    flows = data.get("flows") or []
    sheets["flows"] = [[*FLOW_COLUMNS, SETTINGS]]
    compositions = []
    for flow in flows:
        rest = {k: v for k, v in flow.items() if k not in (*FLOW_COLUMNS, "composition")}
        sheets["flows"].append(
            [_cell(flow.get(c)) for c in FLOW_COLUMNS] + [_cell(rest) if rest else None]
        )
        if flow.get("composition") is not None:
            compositions.append((flow.get("id"), flow["composition"]))
    keys = _columns_of([c if isinstance(c, dict) else {} for _, c in compositions], elements)
    sheets["compositions"] = [["flow", *keys]] + [
        [f, *([_cell(c.get(k)) for k in keys] if isinstance(c, dict) else [_cell(c)])]
        for f, c in compositions
    ]

    scenario_rows = [["scenario", "section", "key", "value"]]
    for name, scenario in (data.get("scenarios") or {}).items():
        if not isinstance(scenario, dict) or not scenario:
            scenario_rows.append([name, None, None, _cell(scenario) if scenario else None])
            continue
        for section, content in scenario.items():
            if isinstance(content, dict) and content and section != "impact":
                scenario_rows += [[name, section, key, _cell(v)] for key, v in content.items()]
            else:
                scenario_rows.append([name, section, None, _cell(content)])
    sheets["scenarios"] = scenario_rows

    measurements = data.get("measurements") or []
    keys = _columns_of([m for m in measurements if isinstance(m, dict)], MEASUREMENT_COLUMNS)
    sheets["measurements"] = [keys] + [[_cell(m.get(k)) for k in keys] for m in measurements]

    ids = [p.get("id") for p in processes if isinstance(p, dict)]
    lists = [["process ids", "kinds", "fates", "roles", "elements"]]
    for i in range(max(len(ids), len(KINDS), len(FATES), len(ROLES), len(elements))):
        lists.append(
            [(col[i] if i < len(col) else None) for col in (ids, KINDS, FATES, ROLES, elements)]
        )
    sheets["lists"] = lists
    return sheets


def write_workbook(data: dict[str, Any], path: str | Path) -> Path:
    """Write model ``data`` (a model file's content) as a model workbook at ``path``."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter, quote_sheetname
    from openpyxl.worksheet.datavalidation import DataValidation

    sheets = workbook_sheets(data)
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        if name != "README":
            for cell in sheet[1]:
                cell.font = Font(bold=True)
            sheet.freeze_panes = "A2"
        for i in range(1, len(rows[0]) + 1 if rows else 1):
            width = max(
                (len(str(r[i - 1])) for r in rows[:200] if len(r) >= i and r[i - 1] is not None),
                default=8,
            )
            sheet.column_dimensions[get_column_letter(i)].width = min(
                max(10, width + 2), 60 if name != "README" else 120
            )
    lists = quote_sheetname("lists")
    n = max(len(sheets["lists"]) - 1, 1) + 1

    def choose(sheet_name: str, column: str, source_column: str) -> None:
        sheet = book[sheet_name]
        header = [c.value for c in sheet[1]]
        if column not in header:
            return
        letter = get_column_letter(header.index(column) + 1)
        rule = DataValidation(
            type="list",
            formula1=f"{lists}!${source_column}$2:${source_column}${n}",
            allow_blank=True,
        )
        rule.error = f"Choose one of the values in the sheet 'lists', column {source_column}."
        sheet.add_data_validation(rule)
        rule.add(f"{letter}2:{letter}{max(sheet.max_row, 2) + 500}")

    choose("processes", "kind", "B")
    for sheet_name, column in (
        ("flows", "from"),
        ("flows", "to"),
        ("transfer", "process"),
        ("inventories", "process"),
    ):
        choose(sheet_name, column, "A")
    choose("flows", "fate", "C")
    choose("flows", "role", "D")
    book["lists"].sheet_state = "hidden"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


# ----------------------------------------------------------------------------- reading
def _check_archive(raw: bytes, shown: str) -> bool:
    """Refuse a workbook that is not a zip of sane size before openpyxl unpacks it; return whether
    its sheets hold formulas."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        total = sum(max(info.file_size, 0) for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise CritflowError(
            shown,
            "is not an Excel workbook (.xlsx is a zip archive; this file is not one)",
            "Save the workbook as 'Excel Workbook (.xlsx)', or give a model file (.yaml, .json).",
        ) from None
    if total > MAX_UNPACKED_BYTES:
        raise CritflowError(
            shown,
            f"unpacks to {total:,} bytes, more than the {MAX_UNPACKED_BYTES:,} critflow reads",
            "A model workbook holds a few thousand cells; check that this is the file you meant.",
        )
    if "xl/workbook.xml" not in archive.namelist():
        raise CritflowError(
            shown,
            "is a zip archive but not an Excel workbook (no xl/workbook.xml)",
            "Save the workbook as 'Excel Workbook (.xlsx)'.",
        )
    tags, formulas = 0, False
    try:
        for info in archive.infolist():
            if not info.filename.endswith((".xml", ".rels")):
                continue
            sheet = info.filename.startswith("xl/worksheets/")
            with archive.open(info) as part:
                tail = b""
                while chunk := part.read(1 << 20):
                    tags += chunk.count(b"<")
                    if sheet and not formulas:
                        window = tail + chunk
                        formulas = b"<f>" in window or b"<f " in window or b":f>" in window
                        tail = chunk[-4:]
                    if tags > MAX_XML_TAGS:
                        raise CritflowError(
                            shown,
                            f"holds more than {MAX_XML_TAGS:,} XML tags (cells, texts, styles), "
                            "more than a model workbook needs",
                            "A model workbook holds a few thousand cells; check that this is the "
                            "file you meant, or convert the model to YAML.",
                        )
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError, zlib_error):
        raise CritflowError(
            shown,
            "is a damaged zip archive",
            "Open it in Excel and save it again as 'Excel Workbook (.xlsx)'.",
        ) from None
    return formulas


def _empty(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and cell.strip() == "")


class _Sheet:
    """The rows of one sheet with their row numbers, and where each cell stands."""

    def __init__(self, shown: str, name: str, rows: list[tuple[Any, ...]]) -> None:
        self.shown, self.name = shown, name
        self.header = [str(h).strip() if h is not None else "" for h in (rows[0] if rows else ())]
        self.rows = [
            (number, list(row) + [None] * (len(self.header) - len(row)))
            for number, row in enumerate(rows[1:], start=2)
            if any(not _empty(c) for c in row)
        ]
        for number, row in self.rows:
            for c, cell in enumerate(row):
                if not _empty(cell) and (c >= len(self.header) or not self.header[c]):
                    raise CritflowError(
                        self.label(number, c),
                        "holds a value, but its column has no header in row 1, so critflow "
                        "would not read it",
                        "Write the column's header in row 1 (as 'critflow template' writes "
                        "them), or clear the cell.",
                    )

    def check_header(self, expected: list[str]) -> None:
        """Refuse a sheet whose headers are not where critflow reads them."""
        if not self.rows:
            return
        positional = self.name in POSITIONAL
        found = self.header[: len(expected)] if positional else self.header
        if (positional and found != expected) or (
            not positional and not set(expected) <= set(found)
        ):
            shown = ", ".join(f"'{h}'" for h in found if h) or "none"
            want = ", ".join(f"'{h}'" for h in expected)
            raise CritflowError(
                f"{self.shown}, sheet '{self.name}', row 1",
                f"the headers are {shown}; critflow reads this sheet by the header"
                f"{'s' if len(expected) > 1 else ''} {want}"
                + (" in its first columns, in that order" if positional else ""),
                "Keep the header row as 'critflow template' writes it (row 1, the names exactly "
                "as written).",
            )

    def label(self, row: int, column: int | None = None) -> str:
        from openpyxl.utils import get_column_letter

        text = f"{self.shown}, sheet '{self.name}', row {row}"
        if column is not None:
            header = self.header[column] if column < len(self.header) else ""
            text += f", column {get_column_letter(column + 1)}" + (f" '{header}'" if header else "")
        return text

    def cells(self, row: int, cells: list[Any], labels: dict, path: tuple) -> dict[str, Any]:
        """The non-empty cells of a row by header, each parsed; records where each stands."""
        found: dict[str, Any] = {}
        for c, (header, cell) in enumerate(zip(self.header, cells, strict=False)):
            if not header or cell is None or (isinstance(cell, str) and cell.strip() == ""):
                continue
            where = self.label(row, c)
            labels[(*path, header)] = where
            found[header] = _value(cell, where)
        return found


def _read_sheets(raw: bytes, shown: str) -> dict[str, _Sheet]:
    import difflib

    from openpyxl import load_workbook

    formulas = _check_archive(raw, shown)

    def open_book(data_only: bool):
        try:
            return load_workbook(io.BytesIO(raw), read_only=True, data_only=data_only)
        except Exception as exc:  # openpyxl raises many kinds for broken parts
            raise CritflowError(
                shown,
                f"cannot be read as an Excel workbook ({type(exc).__name__})",
                "Open it in Excel and save it again as 'Excel Workbook (.xlsx)'.",
            ) from None

    book = open_book(True)
    sheets = {}
    try:
        titles = [sheet.title for sheet in book.worksheets]
        missing = [name for name in SHEETS if name not in titles]
        for title in titles:
            if title in SHEETS or title in ("README", "lists"):
                continue
            plain = title.strip().lower()
            near = [m for m in missing if plain == m or plain.startswith(m)]
            near = near or difflib.get_close_matches(plain, missing, n=1, cutoff=0.75)
            if near:
                raise CritflowError(
                    f"{shown}, sheet '{title}'",
                    f"is not read: critflow reads the sheets {', '.join(SHEETS)} by these exact "
                    f"names, and this workbook has no sheet '{near[0]}'",
                    f"Rename the sheet '{near[0]}'.",
                )
        for sheet in book.worksheets:
            if sheet.title not in SHEETS:
                continue
            rows = []
            try:
                for row in sheet.iter_rows(values_only=True):
                    rows.append(row)
                    if len(rows) > MAX_ROWS:
                        raise CritflowError(
                            f"{shown}, sheet '{sheet.title}'",
                            f"has more than {MAX_ROWS:,} rows",
                            "A model workbook holds one row per process, flow or setting; put long "
                            "time series in CSV files (value: {file: data/series.csv, column: t}).",
                        )
            except CritflowError:
                raise
            except Exception as exc:  # broken XML, entities, a cell openpyxl cannot convert
                raise CritflowError(
                    f"{shown}, sheet '{sheet.title}'",
                    f"cannot be read ({type(exc).__name__}: {str(exc)[:120]})",
                    "Open the workbook in Excel and save it again as 'Excel Workbook (.xlsx)'.",
                ) from None
            sheets[sheet.title] = _Sheet(shown, sheet.title, rows)
    finally:
        book.close()
    if formulas:
        _refuse_uncomputed_formulas(open_book(False), sheets)
    return sheets


def _refuse_uncomputed_formulas(book: Any, sheets: dict[str, _Sheet]) -> None:
    """A formula whose value Excel never computed reads as an empty cell: refuse it, naming it."""
    try:
        for title, read in sheets.items():
            values = dict(read.rows)
            for number, row in enumerate(book[title].iter_rows(values_only=True), start=1):
                for c, cell in enumerate(row):
                    if not (isinstance(cell, str) and cell.startswith("=")):
                        continue
                    if number == 1:
                        value = read.header[c] if c < len(read.header) else None
                    else:
                        cells = values.get(number) or []
                        value = cells[c] if c < len(cells) else None
                    if _empty(value):
                        raise CritflowError(
                            read.label(number, c),
                            f"holds the formula '{cell[:60]}', whose value Excel has not "
                            "computed (the workbook was not saved by Excel since the formula "
                            "was written); critflow reads the values Excel last computed",
                            "Open the workbook in Excel and save it, or write the value itself.",
                        )
    finally:
        book.close()


def _records(
    sheet: _Sheet | None, part: str, labels: dict
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The rows of the sheet 'processes' or 'flows' as records (their 'settings (YAML)' cell
    merged in, each setting labelled by that cell), and the position of each id."""
    records: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for row, cells in sheet.rows if sheet is not None else ():
        path = (part, len(records))
        found = sheet.cells(row, cells, labels, path)
        labels[path] = sheet.label(row)
        settings = found.pop(SETTINGS, None)
        labels.pop((*path, SETTINGS), None)
        if isinstance(settings, dict):
            found.update(settings)
            for key in settings:
                labels[(*path, key)] = sheet.label(row, sheet.header.index(SETTINGS))
        index.setdefault(str(found.get("id")), len(records))
        records.append(found)
    return records, index


def read_workbook(path: str | Path) -> tuple[dict[str, Any], SourceMap, str]:
    """Read a model workbook: the model data, a source map naming sheet/row/column, and a text
    that identifies the content (for the model's hash)."""
    import hashlib

    path = Path(path)
    shown = str(path)
    raw = read_limited(
        path,
        MAX_WORKBOOK_BYTES,
        missing_fix="Give the path of a model workbook (.xlsx) or model file (.yaml, .json).",
    )
    sheets = _read_sheets(raw, shown)
    labels: dict[tuple, str] = {}
    data: dict[str, Any] = {}

    for name, sheet in sheets.items():
        sheet.check_header(HEADERS.get(name, []))
    first: dict[tuple, str] = {}

    def once(key: tuple, where: str, what: str) -> None:
        """Refuse a second row for what one row holds (a YAML file refuses a repeated key)."""
        if key in first:
            raise CritflowError(
                where,
                f"{what} is given twice (also in {first[key].removeprefix(shown + ', ')})",
                "Keep one of the rows; critflow does not pick one of two values silently.",
            )
        first[key] = where

    def need(name: str) -> _Sheet | None:
        return sheets.get(name)

    model = need("model")
    if model is None:
        raise CritflowError(
            shown,
            "has no sheet 'model'",
            "A model workbook has the sheets model, parameters, processes, transfer, inventories, "
            "flows, compositions, scenarios and measurements; write one with "
            "'critflow template NAME.xlsx' or 'critflow convert MODEL.yaml NAME.xlsx'.",
        )
    for row, cells in model.rows:
        key = str(cells[0]).strip() if cells and cells[0] is not None else ""
        if not key:
            continue
        value = _value(cells[1], model.label(row, 1)) if len(cells) > 1 else None
        once(("model", key), model.label(row, 0), f"the setting '{key}'")
        if key.startswith("time."):
            data.setdefault("time", {})[key.removeprefix("time.")] = value
            labels[("time", key.removeprefix("time."))] = model.label(row, 1)
            labels.setdefault(("time",), model.label(row))
        else:
            data[key] = value
            labels[(key,)] = model.label(row, 1)

    if (sheet := need("parameters")) is not None and sheet.rows:
        parameters = {}
        for row, cells in sheet.rows:
            found = sheet.cells(row, cells, {}, ())
            if "name" in found:
                once(
                    ("parameters", str(found["name"])),
                    sheet.label(row, 0),
                    f"the parameter '{found['name']}'",
                )
                parameters[str(found["name"])] = found.get("value")
                labels[("parameters", str(found["name"]))] = sheet.label(row, 1)
        data["parameters"] = parameters

    processes, index = _records(need("processes"), "processes", labels)
    if (sheet := need("transfer")) is not None:
        for row, cells in sheet.rows:
            p, o = (str(c).strip() if c is not None else "" for c in cells[:2])
            if p not in index:
                raise CritflowError(
                    sheet.label(row, 0),
                    f"names the process '{p}', which is not in the sheet 'processes'",
                    "Write the id of a process listed in the sheet 'processes' (column A).",
                )
            u = index[p]
            once(("transfer", p, o), sheet.label(row, 1), f"the output '{o}' of '{p}'")
            path = ("processes", u, "transfer", o)
            coefficients = sheet.cells(row, [None, None, *cells[2:]], labels, path)
            labels[path] = sheet.label(row, 1)
            processes[u].setdefault("transfer", {})[o] = coefficients
    if (sheet := need("inventories")) is not None:
        for row, cells in sheet.rows:
            p = str(cells[0]).strip() if cells[0] is not None else ""
            if p not in index:
                raise CritflowError(
                    sheet.label(row, 0),
                    f"names the process '{p}', which is not in the sheet 'processes'",
                    "Write the id of a process listed in the sheet 'processes' (column A).",
                )
            item = str(cells[1]).strip() if cells[1] is not None else ""
            amount = _value(cells[2], sheet.label(row, 2))
            u = index[p]
            once(("inventories", p, item), sheet.label(row, 1), f"the item '{item}' of '{p}'")
            if not item:
                processes[u]["inventory"] = amount
            else:
                processes[u].setdefault("inventory", {})[item] = amount
            labels[("processes", u, "inventory", item)] = sheet.label(row, 2)
    data["processes"] = processes

    flows, flow_index = _records(need("flows"), "flows", labels)
    if (sheet := need("compositions")) is not None:
        for row, cells in sheet.rows:
            f = str(cells[0]).strip() if cells[0] is not None else ""
            if f not in flow_index:
                raise CritflowError(
                    sheet.label(row, 0),
                    f"names the flow '{f}', which is not in the sheet 'flows'",
                    "Write the id of a flow listed in the sheet 'flows' (column A).",
                )
            i = flow_index[f]
            once(("compositions", f), sheet.label(row, 0), f"the composition of '{f}'")
            path = ("flows", i, "composition")
            flows[i]["composition"] = sheet.cells(row, [None, *cells[1:]], labels, path)
            labels[path] = sheet.label(row)
    data["flows"] = flows

    if (sheet := need("scenarios")) is not None and sheet.rows:
        scenarios: dict[str, Any] = {}
        for row, cells in sheet.rows:
            name, section, key = (str(c).strip() if c is not None else "" for c in cells[:3])
            value = _value(cells[3], sheet.label(row, 3)) if cells[3] is not None else None
            scenario = scenarios.setdefault(name, {})
            labels[("scenarios", name)] = sheet.label(row)
            if not section:
                continue
            once(
                ("scenarios", name, section, key),
                sheet.label(row, 2 if key else 1),
                f"the setting {section}{'.' + key if key else ''} of scenario '{name}'",
            )
            if key:
                scenario.setdefault(section, {})[key] = value
                labels[("scenarios", name, section, key)] = sheet.label(row, 3)
            else:
                scenario[section] = value
                labels[("scenarios", name, section)] = sheet.label(row, 3)
        data["scenarios"] = scenarios

    if (sheet := need("measurements")) is not None and sheet.rows:
        measurements = []
        for row, cells in sheet.rows:
            path = ("measurements", len(measurements))
            measurements.append(sheet.cells(row, cells, labels, path))
            labels[path] = sheet.label(row)
        data["measurements"] = measurements

    text = hashlib.sha256(raw).hexdigest()
    return data, SourceMap(shown, labels=labels), text
