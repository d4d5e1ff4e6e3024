"""Excel in and out of the roadmap monitor: the upload template, the upload's reading (cell by
cell, every message in the cell's terms: sheet, row, column header) and the export of everything
the caller may see (its aggregates from :meth:`Monitor.aggregates`, like every view)."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from critflow.errors import Problem
from critflow.server.auth import Principal
from critflow.server.monitor.access import sight
from critflow.server.monitor.service import FIRST_YEAR, LAST_YEAR, Monitor
from critflow.server.problems import RegistryError

SHEET = "values"
HEADERS = ["project", "year", "kpi", "value", "unit"]
MAX_UPLOAD_ROWS = 5000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""How a cell's text starts when a spreadsheet could take it for a formula (OWASP, CSV
injection): such a text is written as text with Excel's quote prefix."""


def _texts_as_text(book: Workbook) -> None:
    """Every text of ``book`` stays text: openpyxl writes a text starting with '=' as a formula
    (a project title '=HYPERLINK(…)' became a live link in the reader's Excel), and Excel
    evaluates one starting with '=', '+', '-' or '@' once the cell is edited. Such cells are
    typed as text and get the quote prefix (shown as typed, never evaluated)."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith(FORMULA_STARTS):
                    cell.data_type = "s"
                    cell.quotePrefix = True


def _bold_header(sheet: Any, headers: list[str]) -> None:
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, header in enumerate(headers, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(12, len(header) + 4)


def template(monitor: Monitor, principal: Principal) -> bytes:
    """The upload template: the sheet 'values' (project, year, kpi, value, unit) with lists of
    the KPIs (and their units) and of the caller's projects, and a README sheet."""
    book = Workbook()
    values = book.active
    values.title = SHEET
    _bold_header(values, HEADERS)
    kpis = book.create_sheet("kpis")
    _bold_header(kpis, ["kpi", "name", "unit", "focus domains"])
    for measure in monitor.measures.values():
        kpis.append([measure.id, measure.name, measure.unit, ", ".join(measure.domains)])
    projects = book.create_sheet("projects")
    _bold_header(projects, ["project", "title", "focus domains", "organisation"])
    if not principal.anonymous:
        for project in monitor.projects(principal):
            projects.append(
                [
                    project["project_id"],
                    project["title"],
                    ", ".join(project["domains"]),
                    project["organisation"],
                ]
            )
    count = len(monitor.measures) + 1
    rule = DataValidation(type="list", formula1=f"=kpis!$A$2:$A${count}", allow_blank=True)
    rule.add(f"C2:C{MAX_UPLOAD_ROWS + 1}")
    values.add_data_validation(rule)
    years = DataValidation(
        type="whole", operator="between", formula1=str(FIRST_YEAR), formula2=str(LAST_YEAR)
    )
    years.add(f"B2:B{MAX_UPLOAD_ROWS + 1}")
    values.add_data_validation(years)
    readme = book.create_sheet("README")
    for line in (
        f"One row per value in the sheet '{SHEET}': the project id, the year "
        f"({FIRST_YEAR}-{LAST_YEAR}), the KPI id (sheet 'kpis'), the value as a number and its unit.",
        "A unit of the same kind as the KPI's is converted (kt for t, fraction 1 for %).",
        "The whole upload is stored, or nothing: every wrong cell is named with its sheet, row "
        "and column.",
        "A later value for the same project, year and KPI supersedes the earlier one; both "
        "are kept with who sent them and when.",
    ):
        readme.append([line])
    buffer = io.BytesIO()
    _texts_as_text(book)
    book.save(buffer)
    return buffer.getvalue()


def _label(name: str, row: int, column: int) -> str:
    return f"{name}, sheet '{SHEET}', row {row}, column {get_column_letter(column + 1)} '{HEADERS[column]}'"


def read_upload(raw: bytes, name: str) -> tuple[list[str], list[dict[str, Any]], list[Problem]]:
    """The rows of an uploaded workbook as value items with where each stands (its row); the
    problems of cells that are not what their column holds (text in the value column …)."""
    from critflow.errors import CritflowError
    from critflow.model.workbook import _check_archive

    shown = name or "upload.xlsx"
    try:
        _check_archive(raw, shown)
    except CritflowError as exc:
        raise RegistryError(422, "Not a workbook", str(exc), exc.problems) from None
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for broken parts
        raise RegistryError(
            422,
            "Not a workbook",
            f"{shown} cannot be read as an Excel workbook ({type(exc).__name__})",
            [Problem(shown, "cannot be read as an Excel workbook", "Save it as .xlsx.")],
        ) from None
    try:
        if SHEET not in book.sheetnames:
            problem = Problem(
                shown,
                f"has no sheet '{SHEET}' (its sheets: {', '.join(book.sheetnames)})",
                "Download the template from the monitor's upload page and fill its sheet "
                f"'{SHEET}'.",
            )
            raise RegistryError(422, "Upload refused", str(problem), [problem])
        rows = []
        for row in book[SHEET].iter_rows(values_only=True):
            rows.append(row)
            if len(rows) > MAX_UPLOAD_ROWS + 1:
                problem = Problem(
                    f"{shown}, sheet '{SHEET}'",
                    f"has more than {MAX_UPLOAD_ROWS:,} rows",
                    "Split the upload.",
                )
                raise RegistryError(413, "Upload too large", str(problem), [problem])
    except RegistryError:
        raise
    except Exception as exc:  # broken XML, a cell openpyxl cannot convert
        raise RegistryError(
            422,
            "Not a workbook",
            f"{shown}, sheet '{SHEET}' cannot be read ({type(exc).__name__})",
            [Problem(f"{shown}, sheet '{SHEET}'", "cannot be read", "Save it again as .xlsx.")],
        ) from None
    finally:
        book.close()
    header = [str(h).strip().lower() if h is not None else "" for h in (rows[0] if rows else ())]
    if header[: len(HEADERS)] != HEADERS:
        problem = Problem(
            f"{shown}, sheet '{SHEET}', row 1",
            f"the headers are {', '.join(repr(h) for h in header if h) or 'none'}; the monitor "
            f"reads {', '.join(repr(h) for h in HEADERS)} in the first columns",
            "Keep the template's header row.",
        )
        raise RegistryError(422, "Upload refused", str(problem), [problem])
    wheres: list[str] = []
    items: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for number, row in enumerate(rows[1:], start=2):
        cells = list(row[: len(HEADERS)]) + [None] * (len(HEADERS) - len(row))
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        project, year, kpi, value, unit = cells
        if isinstance(year, float) and year.is_integer():
            year = int(year)
        elif isinstance(year, str) and year.strip().isdigit():
            year = int(year.strip())
        if not isinstance(year, int) or isinstance(year, bool):
            problems.append(
                Problem(
                    _label(shown, number, 1),
                    f"{year!r} is not a year",
                    "Write a whole year such as 2027.",
                )
            )
            year = None
        if isinstance(value, str):
            problems.append(
                Problem(
                    _label(shown, number, 3),
                    f"holds the text '{value[:60]}', not a number",
                    "Write the number alone (the unit goes in column E 'unit'); check the "
                    "cell is formatted as a number.",
                )
            )
            value = None
        elif value is None:
            problems.append(
                Problem(_label(shown, number, 3), "is empty", "Write the value as a number.")
            )
        wheres.append(f"{shown}, sheet '{SHEET}', row {number}")
        items.append(
            {
                "project": "" if project is None else str(project).strip(),
                "year": year,
                "kpi": "" if kpi is None else str(kpi).strip(),
                "value": value,
                "unit": "" if unit is None else str(unit).strip(),
            }
        )
    return wheres, items, problems


def upload(monitor: Monitor, principal: Principal, raw: bytes, name: str) -> dict[str, Any]:
    """Store the values of an uploaded workbook: all of them, or nothing with every wrong cell
    named (RegistryError 422)."""
    monitor.require_writer(principal)
    shown = (name or "upload.xlsx")[:200]
    wheres, items, problems = read_upload(raw, shown)
    if not items and not problems:
        problem = Problem(
            f"{shown}, sheet '{SHEET}'", "holds no values below its header", "Fill rows 2 and on."
        )
        raise RegistryError(422, "Upload refused", str(problem), [problem])
    labels = {h: f"column {get_column_letter(i + 1)} '{h}'" for i, h in enumerate(HEADERS)}
    with monitor.registry.sessions() as session:
        checked = monitor.check_values(
            session,
            principal,
            list(zip(wheres, items, strict=True)),
            labels,
        )
    # a cell's own problem (text in a number cell) is named once, in the cell's terms
    named = {p.where for p in problems}
    cell_problems = [*problems, *(p for p in checked.problems if p.where not in named)]
    cell_problems.sort(key=_row_order)
    if cell_problems:
        raise RegistryError(
            422,
            "Upload refused",
            f"{len(cell_problems)} problem(s) in {shown}; nothing was stored.",
            cell_problems[:200],
        )
    return monitor.submit(
        principal,
        items,
        source="excel",
        upload_name=shown,
        labels=labels,
        wheres=wheres,
    )


def _row_order(problem: Problem) -> tuple[int, str]:
    import re

    found = re.search(r"row (\d+)", problem.where)
    return (int(found.group(1)) if found else 0, problem.where)


def export(monitor: Monitor, principal: Principal) -> bytes:
    """A workbook of everything ``principal`` may see: the public aggregates (for everyone),
    and the projects, values with provenance, verdicts and UNFC quantities of the projects it
    may see (none for the public)."""
    seen = sight(principal)
    book = Workbook()
    sheet = book.active
    sheet.title = "aggregates"
    _bold_header(
        sheet, ["focus domain", "kpi", "year", "value", "statistic", "unit", "organisations"]
    )
    for aggregate in monitor.aggregates():
        shown = monitor.aggregate_dict(aggregate)
        sheet.append(
            [
                shown["domain"],
                shown["kpi"],
                shown["year"],
                shown["value"],
                shown["statistic"],
                shown["unit"],
                shown["organisations"],
            ]
        )
    if seen != "aggregates":
        projects = book.create_sheet("projects")
        headers = ["project", "title", "organisation", "instrument", "focus domains"]
        _bold_header(projects, [*headers, "partners", "start", "end"])
        details = [monitor.project(principal, p["project_id"]) for p in monitor.projects(principal)]
        for project in details:
            projects.append(
                [
                    project["project_id"],
                    project["title"],
                    project["organisation"],
                    project["instrument"],
                    ", ".join(project["domains"]),
                    ", ".join(project["partners"]),
                    project["start_year"],
                    project["end_year"],
                ]
            )
        values = book.create_sheet("values")
        _bold_header(
            values,
            [
                *HEADERS,
                "given value",
                "given unit",
                "source",
                "submitted by",
                "submitted at",
                "model sha256",
                "upload",
            ],
        )
        verdicts = book.create_sheet("verdicts")
        _bold_header(
            verdicts,
            [
                "project",
                "year",
                "rule",
                "title",
                "indicator",
                "status",
                "value",
                "comparator",
                "threshold",
                "margin",
                "model sha256",
            ],
        )
        quantities = book.create_sheet("unfc")
        _bold_header(
            quantities,
            ["project", "year", "element", "tonnes", "E", "F", "G", "class", "submitted by"],
        )
        for project in details:
            for v in project["values"]:
                p = v["provenance"]
                values.append(
                    [
                        project["project_id"],
                        v["year"],
                        v["kpi"],
                        v["value"],
                        v["unit"],
                        v["given"]["value"],
                        v["given"]["unit"],
                        p["source"],
                        p["submitted_by"],
                        p["submitted_at"],
                        p["model_sha256"],
                        p["upload_name"],
                    ]
                )
            for v in project["verdicts"]:
                verdicts.append(
                    [
                        project["project_id"],
                        v["year"],
                        v["rule"],
                        v["title"],
                        v["indicator"],
                        v["status"],
                        v["value"],
                        v["comparator"],
                        v["threshold"],
                        v["margin"],
                        v["provenance"]["model_sha256"],
                    ]
                )
            for q in project["quantities"]:
                quantities.append(
                    [
                        project["project_id"],
                        q["year"],
                        q["element"],
                        q["tonnes"],
                        q["e"],
                        q["f"],
                        q["g"],
                        q["class"],
                        q["provenance"]["submitted_by"],
                    ]
                )
    buffer = io.BytesIO()
    _texts_as_text(book)
    book.save(buffer)
    return buffer.getvalue()
