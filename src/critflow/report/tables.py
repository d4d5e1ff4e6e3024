"""Write solved flows and balances as CSV, Parquet and Excel tables.

The full tables (every scenario, period, element and flow) go to Parquet and CSV, written with
Arrow a scenario (and a block of periods) at a time, so memory does not grow with the table. The
Excel workbook is by default a summary a person reads — KPIs per scenario, the balance per process,
the flows of one chosen period (or their total over all periods) with one column per element — and
says on its ``run`` sheet what each sheet holds. ``excel="full"`` writes every row instead
(streamed, continued on further sheets past Excel's row limit); ``"none"`` skips the workbook.
Workbooks are written by :mod:`critflow.report.xlsx` (the cells openpyxl's write-only mode writes,
about twenty times faster), by openpyxl for a value that writer leaves to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from critflow import __version__
from critflow.analysis import Run
from critflow.engine.results import (
    FlowResults,
    balance_schema,
    flow_schema,
    flow_schema_by_element,
)
from critflow.errors import CritflowError
from critflow.indicators.recovery import primary_feed

EXCEL_MAX_ROWS = 1_048_575
"""Rows an Excel sheet holds below its header."""
EXCEL_MODES = ("summary", "full", "none")
SUMMARY_ROWS = 10_000
"""A table longer than this goes to the summary workbook for the chosen period only (all of it
is in its CSV)."""
BATCH_ROWS = 1_000_000
"""Rows of the flow and balance tables built and written at once (a block of periods of one
scenario): what bounds the memory of writing them."""


@dataclass(frozen=True)
class ExcelChoice:
    """What the workbook holds: ``mode`` summary, full or none; ``period`` the period the summary
    shows (None: the last; "all": totals over all periods)."""

    mode: str = "summary"
    period: int | str | None = None


def wide_flows(results: FlowResults) -> pd.DataFrame:
    """One row per scenario, period and flow; one column per element plus goods, unit in headers."""
    frames = [_wide_block(results, s, slice(None)) for s in range(len(results.inputs.scenarios))]
    return pd.concat(frames, ignore_index=True)


def _wide_block(results: FlowResults, s: int, periods: slice) -> pd.DataFrame:
    """:func:`wide_flows` of scenario ``s`` and the periods ``periods`` (flows.csv's rows)."""
    return results.flow_batch_by_element(s, periods).to_pandas()


def run_info(run: Run) -> pd.DataFrame:
    """Provenance of a run: model, file hash, version, time."""
    model, results = run.model, run.results
    rows = [
        ("model", model.name),
        ("model file", str(model.path) if model.path else "(in memory)"),
        ("model file SHA-256", model.text_sha256 or ""),
        ("scenarios", ", ".join(results.inputs.scenarios)),
        ("periods", f"{results.inputs.periods[0]}–{results.inputs.periods[-1]}"),
        ("unit", results.unit),
        ("largest relative balance residual", f"{results.max_relative_residual():.3g}"),
        ("critflow version", __version__),
        ("run at (UTC)", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
    ]
    return pd.DataFrame(rows, columns=["item", "value"])


def write_tables(
    run: Run,
    out_dir: Path,
    excel: ExcelChoice | None = None,
    step: Callable[[str], None] | None = None,
    bulk: bool = True,
    submit: Callable | None = None,
    deferred: list | None = None,
) -> dict[str, Path]:
    """Write flows.parquet/.csv, balance.parquet/.csv, the stock and indicator tables and
    results.xlsx (see the module docstring); return their paths. ``step`` is told what is being
    written (for a progress display); ``bulk`` False leaves out the flow and balance files.
    With ``submit`` (an executor's submit), the indicator CSVs are written there and their
    futures appended to ``deferred``: the caller waits for them."""
    excel = excel or ExcelChoice()
    if excel.mode not in EXCEL_MODES:
        raise CritflowError(
            "--excel", f"'{excel.mode}' is not a workbook choice", "Use summary, full or none."
        )
    period = summary_period(run.results.inputs.periods, excel.period)
    try:
        return _write(
            run, out_dir, excel.mode, period, step or (lambda _: None), bulk, submit, deferred
        )
    except OSError as exc:
        raise not_writable(out_dir, exc) from None


def not_writable(out_dir: Path, exc: OSError) -> CritflowError:
    """The message for an output table that cannot be written."""
    return CritflowError(
        str(out_dir),
        f"the output tables cannot be written there ({exc.strerror or exc}: {exc.filename or out_dir})",
        "Choose a folder you can write to with --out, and close any of its files open in Excel.",
    )


def summary_period(periods: np.ndarray, period: int | str | None) -> int | None:
    """Index in ``periods`` of the period the summary shows; None for totals over all periods
    ('all')."""
    if period is None or period == "last":
        return periods.size - 1
    if period == "all":
        return None
    try:
        year = int(period)
    except (TypeError, ValueError):
        year = None
    found = np.flatnonzero(periods == year) if year is not None else []
    if len(found) == 0:
        raise CritflowError(
            "--excel-period",
            f"'{period}' is not a period of the run ({periods[0]}–{periods[-1]})",
            "Give a year of the model's time, 'last' or 'all' (totals over all periods).",
        )
    return int(found[0])


def indicator_tables(run: Run) -> dict[str, pd.DataFrame]:
    """Recovery per output (always) and, when every output has a fate, the Battery Regulation's
    recycling efficiency and material recovery; the shipped rules' verdicts; impacts and costs.
    Shares are fractions (0-1)."""
    tables = {"recovery": run.recovery}
    if run.fates_complete and primary_feed(run.model) is None:
        tables["recycling_efficiency"] = run.recycling_efficiency
        tables["material_recovery"] = run.material_recovery
    compliance = _compliance(run)
    if compliance is not None:
        tables["compliance"] = compliance
    return tables | impact_tables(run)


def impact_tables(run: Run) -> dict[str, pd.DataFrame]:
    """Climate impact (and life-cycle cost when the model has economics:) of a model with
    inventories: summary, per process, per item, per product; cost per year and per project."""
    impacts = run.impacts
    if impacts is None:
        return {}
    tables = {
        "impact_summary": impacts.summary_table(),
        "impact_processes": impacts.process_table(),
        "impact_items": impacts.item_table(),
        "impact_products": impacts.product_table(),
    }
    if run.costs is not None:
        tables["cost_annual"] = run.costs.annual_table()
        tables["cost_project"] = run.costs.project_table()
    return tables


def _compliance(run: Run) -> pd.DataFrame | None:
    """Every shipped rule, checked in the last period (pass, fail, not applicable with the reason)."""
    rows = run.compliance
    if rows is None or all(r.status == "not applicable" for r in rows):
        return None
    frame = pd.DataFrame([r.as_dict() for r in rows])
    frame["scope"] = frame["scope"].astype(str)
    return frame


# ----------------------------------------------------------------------------- Parquet and CSV


def _period_blocks(results: FlowResults, columns: int) -> Iterator[tuple[int, slice]]:
    """(scenario, periods) blocks of at most about BATCH_ROWS rows of ``columns`` rows a period."""
    n_p = results.inputs.periods.size
    step = max(1, BATCH_ROWS // max(columns, 1))
    for s in range(len(results.inputs.scenarios)):
        for start in range(0, n_p, step):
            yield s, slice(start, min(start + step, n_p))


def _stream(batches: Iterable, parquet_schema, csv_schema, parquet: Path, csv: Path) -> None:
    """Write pairs of Arrow record batches as they come: the first of each pair to a Parquet file,
    the second to a CSV file (the same rows, or the same numbers laid out for people)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    def plain(schema):
        return pa.schema(
            [pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f for f in schema]
        )

    from concurrent.futures import ThreadPoolExecutor

    # Arrow writes without holding the GIL: the CSV (the slower, text) is written on a second
    # thread while this one writes the Parquet file and builds the next batch.
    # dictionary pages for the text and integer columns; the floats (a distinct value a row) go
    # straight to plain pages rather than filling a dictionary Arrow then gives up on. Minimum
    # and maximum are kept for the numbers (a reader skips row groups by period with them), not
    # for the ids: every row group holds every id, and their statistics took half the time of
    # writing the flow table
    encoded = [f.name for f in parquet_schema if not pa.types.is_floating(f.type)]
    numbers = [
        f.name
        for f in parquet_schema
        if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
    ]
    as_text = plain(csv_schema)
    with (
        pq.ParquetWriter(
            parquet, parquet_schema, use_dictionary=encoded, write_statistics=numbers
        ) as table,
        pacsv.CSVWriter(csv, as_text, write_options=_csv_options()) as text,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="critflow-csv") as pool,
    ):
        pending = None
        for batch, for_csv in batches:
            rows = for_csv.cast(as_text) if as_text != csv_schema else for_csv
            if pending is not None:
                pending.result()  # one batch in flight: memory stays one batch
            pending = pool.submit(text.write_batch, rows)
            table.write_batch(batch)
        if pending is not None:
            pending.result()


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """A pandas table as CSV, written by Arrow."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(frame, preserve_index=False)
    plain = pa.schema(
        [
            pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f
            for f in table.schema
        ]
    )
    pacsv.write_csv(table.cast(plain), path, _csv_options())


def _write_csvs(tables: list[tuple[pd.DataFrame, Path]]) -> None:
    for table, path in tables:
        _write_csv(table, path)


def _csv_options():
    """Arrow's CSV options: rows formatted 65,536 at a time (the default 1,024 took twice the
    time for the same text)."""
    import pyarrow.csv as pacsv

    return pacsv.WriteOptions(batch_size=65_536)


def write_bulk_tables(results: FlowResults, out_dir: Path) -> dict[str, Path]:
    """flows.parquet/.csv and balance.parquet/.csv: every scenario, period, element and flow,
    streamed a block of periods at a time (Arrow writes them without holding the GIL, so a run
    writes them on a second thread while it builds the workbook and the report)."""
    topo = results.inputs.topology
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        name: out_dir / name
        for name in ("flows.parquet", "flows.csv", "balance.parquet", "balance.csv")
    }
    n_e, n_f = topo.n_elements, topo.n_flows
    # flows.parquet: one row per element (tidy, for code); flows.csv: a column per element, a
    # row per flow (a stream table a spreadsheet opens: 30 times fewer rows, a third of the text)
    _stream(
        (
            (results.flow_batch(s, p), results.flow_batch_by_element(s, p))
            for s, p in _period_blocks(results, n_e * n_f)
        ),
        flow_schema(topo.labels),
        flow_schema_by_element(topo, results.unit),
        paths["flows.parquet"],
        paths["flows.csv"],
    )
    n_u = len(results.balance_parts()[0])
    schema = balance_schema(topo.labels)
    _stream(
        (
            (batch, batch)
            for batch in (
                results.balance_batch(s, p) for s, p in _period_blocks(results, n_e * n_u)
            )
        ),
        schema,
        schema,
        paths["balance.parquet"],
        paths["balance.csv"],
    )
    return paths


def _write(
    run: Run,
    out_dir: Path,
    mode: str,
    period: int | None,
    step: Callable[[str], None],
    bulk: bool = True,
    submit: Callable | None = None,
    deferred: list | None = None,
) -> dict[str, Path]:
    """Every table of :func:`write_tables`; ``bulk`` False leaves out the flow and balance files
    (:func:`write_bulk_tables`, which the caller writes itself)."""
    results = run.results
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if bulk:
        step("Writing flows and balance (Parquet and CSV)")
        paths |= write_bulk_tables(results, out_dir)
    step("Computing the indicator tables")
    tables = indicator_tables(run)
    if results.stocks is not None:
        stocks = results.stock_table()
        tables = {"stocks": stocks, **tables}
        paths["stocks.parquet"] = out_dir / "stocks.parquet"
        stocks.to_parquet(paths["stocks.parquet"], index=False)
    step("Writing the indicator tables (CSV)")
    csv = {f"{name}.csv": (table, out_dir / f"{name}.csv") for name, table in tables.items()}
    paths |= {name: path for name, (_, path) in csv.items()}
    if submit is not None and deferred is not None:
        deferred.append(submit(_write_csvs, list(csv.values())))
    else:
        _write_csvs(list(csv.values()))
    if mode != "none":
        step(f"Writing results.xlsx ({mode})")
        paths["results.xlsx"] = out_dir / "results.xlsx"
        if mode == "full":
            _full_workbook(run, tables, paths["results.xlsx"])
        else:
            _summary_workbook(run, tables, period, paths["results.xlsx"])
    return paths


# ----------------------------------------------------------------------------- Excel


def _cells(frame: pd.DataFrame) -> Iterator[tuple]:
    """Rows of a table as Excel cell values (missing numbers as empty cells)."""
    return zip(*_cell_columns(frame), strict=True)


def _cell_columns(frame: pd.DataFrame) -> list[list]:
    """The columns of a table as lists of Excel cell values (missing numbers as None)."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype.kind not in "biuf":
            values = column.astype(object).where(column.notna(), None).tolist()
        elif column.dtype.kind == "f":
            array = column.to_numpy()
            values = array.tolist()
            if np.isnan(array).any():
                values = [None if v != v else v for v in values]
        else:
            values = column.tolist()
        columns.append(values)
    return columns


def _append(book, name: str, frame: pd.DataFrame, header: bool = True) -> None:
    """``frame`` as sheet ``name`` (and ``name_2`` … past Excel's row limit)."""
    for sheets, start in enumerate(range(0, max(len(frame), 1), EXCEL_MAX_ROWS), start=1):
        sheet = book.create_sheet(name if sheets == 1 else f"{name}_{sheets}"[:31])
        if header:
            sheet.append([str(c) for c in frame.columns])
        part = frame.iloc[start : start + EXCEL_MAX_ROWS]
        if hasattr(sheet, "extend"):  # critflow.report.xlsx: a column at a time
            sheet.extend(_cell_columns(part))
            continue
        for row in _cells(part):
            sheet.append(row)


class _Sheets:
    """Rows appended to a sheet and, past Excel's row limit, to its continuation sheets."""

    def __init__(self, book, name: str, header: list[str]) -> None:
        self.book, self.name, self.header = book, name, header
        self.sheets, self.rows, self.sheet = 0, EXCEL_MAX_ROWS, None

    def append(self, frame: pd.DataFrame) -> None:
        for row in _cells(frame):
            if self.rows >= EXCEL_MAX_ROWS:
                self.sheets += 1
                title = self.name if self.sheets == 1 else f"{self.name}_{self.sheets}"
                self.sheet = self.book.create_sheet(title[:31])
                self.sheet.append(self.header)
                self.rows = 0
            self.sheet.append(row)
            self.rows += 1


def _save_book(path: Path, fill: Callable[[Any], None]) -> None:
    """Write a workbook: ``fill(book)`` creates its sheets and appends their rows, in
    :mod:`critflow.report.xlsx` (fast) or, for a value it does not write as openpyxl does (a date,
    a string openpyxl takes for a formula), in openpyxl's write-only mode."""
    from critflow.report.xlsx import Book, UnsupportedValueError

    book = Book(path)
    try:
        fill(book)
    except UnsupportedValueError:
        book.abandon()
        from openpyxl import Workbook

        slow = Workbook(write_only=True)
        fill(slow)
        slow.save(path)
        return
    except BaseException:
        book.abandon()
        raise
    book.save()


def _full_workbook(run: Run, tables: dict[str, pd.DataFrame], path: Path) -> None:
    """Every row of every table (rows go to disk as they are appended)."""
    _save_book(path, lambda book: _fill_full(book, run, tables))


def _fill_full(book, run: Run, tables: dict[str, pd.DataFrame]) -> None:
    results = run.results
    _append(book, "run", run_info(run))
    n_e, n_f = results.inputs.topology.n_elements, results.inputs.topology.n_flows
    flows = None
    for s, periods in _period_blocks(results, n_e * n_f):
        block = _wide_block(results, s, periods)
        flows = flows or _Sheets(book, "flows", list(block.columns))
        flows.append(block)
    unit = results.unit
    balance = None
    n_u = len(results.balance_parts()[0])
    for s, periods in _period_blocks(results, n_e * n_u):
        block = (
            results.balance_batch(s, periods)
            .to_pandas()
            .rename(
                columns={
                    c: f"{c} [{unit}]" for c in ("input", "output", "stock_change", "residual")
                }
            )
            .drop(columns="unit")
        )
        balance = balance or _Sheets(book, "balance", list(block.columns))
        balance.append(block)
    for name, table in tables.items():
        _append(book, name, table)


def _summary_workbook(run: Run, tables: dict[str, pd.DataFrame], p: int | None, path: Path) -> None:
    """KPIs, balance per process and flows of period ``p`` (None: totals over all periods), the
    small tables whole and the long ones for one period; the run sheet says what is where."""
    results = run.results
    periods = results.inputs.periods
    shown = "all periods (totals)" if p is None else str(periods[p])
    one = periods[-1] if p is None else periods[p]  # tables of shares cannot be summed
    sheets: dict[str, tuple[pd.DataFrame, str]] = {
        "kpis": (kpi_table(run, p), f"key figures per scenario (columns), {shown}"),
        "balance": (
            summary_balance(results, p),
            f"goods balance per process and the whole system, {shown}",
        ),
        "flows": (
            summary_flows(results, p),
            f"every flow, goods and each element, {shown}",
        ),
    }
    if results.stocks is not None:
        sheets["stocks"] = (
            summary_stocks(results, p),
            f"stocks per element, {shown} (in use: at the end of {periods[-1 if p is None else p]})",
        )
    for name, table in tables.items():
        if name == "stocks":
            continue
        if len(table) <= SUMMARY_ROWS or "period" not in table.columns:
            sheets[name] = (table, f"{name}.csv, all rows")
        else:
            cut = table[table["period"] == one]
            sheets[name] = (cut, f"{name}.csv for {one} only ({len(table):,} rows in the CSV)")
    info = run_info(run)
    contents = [("period shown", shown)] + [
        (f"sheet {name}", what) for name, (_, what) in sheets.items()
    ]
    contents.append(
        (
            "full tables",
            "every scenario, period, element and flow: flows.parquet / flows.csv, "
            "balance.parquet / balance.csv (critflow run --excel full writes them here too)",
        )
    )
    info = pd.concat([info, pd.DataFrame(contents, columns=["item", "value"])], ignore_index=True)

    def fill(book) -> None:
        _append(book, "run", info)
        for name, (table, _) in sheets.items():
            _append(book, name, table)

    _save_book(path, fill)


def _period_label(results: FlowResults, p: int | None) -> Any:
    periods = results.inputs.periods
    return int(periods[p]) if p is not None else f"{periods[0]}–{periods[-1]} total"


def _in_period(array: np.ndarray, p: int | None) -> np.ndarray:
    """(S, P, …) → (S, …): period ``p`` or the sum over all periods."""
    return array.sum(axis=1) if p is None else array[:, p]


def summary_flows(results: FlowResults, p: int | None) -> pd.DataFrame:
    """Every flow of period ``p`` (None: summed over periods) with goods and each element: the
    rows and columns of flows.csv (a model's dimension and origin columns, not its generated
    helpers) for that period."""
    topo = results.inputs.topology
    unit = results.unit if p is not None else results.stock_unit
    visible = results._visible_flows()
    values = _in_period(results.mass_kg, p)[..., visible] / results.inputs.kg_per_unit
    n_s, n_e, n_f = values.shape  # (S, E, F')
    flow_idx = np.tile(np.arange(n_f, dtype=np.int32), n_s)
    labels = results._flow_label_columns(visible, flow_idx, n_s)
    names = [f.name for f in flow_schema(topo.labels)][2 : 2 + len(labels)]
    frame = pd.DataFrame(
        {
            "scenario": np.repeat(np.array(results.inputs.scenarios, dtype=object), n_f),
            "period": _period_label(results, p),
            **{name: column.to_pandas() for name, column in zip(names, labels, strict=True)},
            f"goods [{unit}]": values.sum(axis=1).reshape(-1),
        }
    )
    elements = pd.DataFrame(
        values.transpose(0, 2, 1).reshape(-1, n_e),
        columns=[f"{e} [{unit}]" for e in topo.elements],
    )
    return pd.concat([frame, elements], axis=1)


def summary_balance(results: FlowResults, p: int | None) -> pd.DataFrame:
    """Goods input, output, stock change and residual per process (and the system) in period
    ``p`` (None: summed over periods)."""
    names, kinds, inflow, outflow, change = results.balance_parts()
    unit = results.unit if p is not None else results.stock_unit
    parts = {
        name: _in_period(array, p).sum(axis=1)  # (S, U')
        for name, array in (("input", inflow), ("output", outflow), ("stock_change", change))
    }
    n_s, n_u = parts["input"].shape
    frame = pd.DataFrame(
        {
            "scenario": np.repeat(np.array(results.inputs.scenarios, dtype=object), n_u),
            "period": _period_label(results, p),
            "process": np.tile(np.array(names, dtype=object), n_s),
            "kind": np.tile(np.array(kinds, dtype=object), n_s),
        }
    )
    for name, values in parts.items():
        frame[f"{name} [{unit}]"] = values.reshape(-1)
    frame[f"residual [{unit}]"] = (
        parts["input"] - parts["output"] - parts["stock_change"]
    ).reshape(-1)
    return frame


def summary_stocks(results: FlowResults, p: int | None) -> pd.DataFrame:
    """Per stock and element: in use at the end of period ``p`` (the last period when totals are
    asked for), inflow, outflow, retired and stock change in ``p`` (or their totals)."""
    topo = results.inputs.topology
    k = results.inputs.kg_per_unit
    end = results.inputs.periods.size - 1 if p is None else p
    flow_unit = results.unit if p is not None else results.stock_unit
    parts = {
        f"in_use [{results.stock_unit}]": results.stocks.stock_kg[:, end] / k,  # (S, E, K)
        f"inflow [{flow_unit}]": _in_period(results.mass_kg[..., topo.stock_input], p) / k,
        f"outflow [{flow_unit}]": _in_period(results.mass_kg[..., topo.stock_output], p) / k,
        f"retired [{flow_unit}]": _in_period(results.stocks.retired_kg, p) / k,
        f"stock_change [{results.stock_unit}]": _in_period(results.stocks.stock_change_kg(), p) / k,
    }
    n_s, n_e, n_k = parts[f"in_use [{results.stock_unit}]"].shape
    grid = np.indices((n_s, n_e, n_k)).reshape(3, -1)
    frame = pd.DataFrame(
        {
            "scenario": np.array(results.inputs.scenarios, dtype=object)[grid[0]],
            "period": _period_label(results, p),
            "stock": np.array(topo.process_ids, dtype=object)[topo.stock_process][grid[2]],
            "element": np.array(topo.elements, dtype=object)[grid[1]],
        }
    )
    for name, values in parts.items():
        frame[name] = values.reshape(-1)
    return frame


def kpi_table(run: Run, p: int | None) -> pd.DataFrame:
    """Key figures per scenario (one column each) in period ``p`` (None: totals over periods;
    shares then are total recycled over total input)."""
    results = run.results
    scenarios = list(results.inputs.scenarios)
    unit = results.unit if p is not None else results.stock_unit
    _, kinds, inflow, outflow, change = results.balance_parts()
    system = len(kinds) - 1
    rows: list[tuple[str, str, list[float]]] = [
        (f"input from sources [{unit}]", "goods", _in_period(inflow, p)[:, :, system].sum(1)),
        (f"output to sinks [{unit}]", "goods", _in_period(outflow, p)[:, :, system].sum(1)),
        (
            f"stock change [{results.stock_unit}]",
            "goods",
            _in_period(change, p)[:, :, system].sum(1),
        ),
    ]
    for e, element in enumerate(results.inputs.topology.elements):
        rows.append((f"input from sources [{unit}]", element, _in_period(inflow, p)[:, e, system]))
    if run.fates_complete and primary_feed(run.model) is None:
        rows += _ratio_rows(
            run.recycling_efficiency, results, p, "recycled", "recycling efficiency", None
        )
        rows += _ratio_rows(
            run.material_recovery, results, p, "recovered", "material recovery", "element"
        )
    return pd.DataFrame(
        [(label, element, *map(float, values)) for label, element, values in rows],
        columns=["kpi", "element", *scenarios],
    )


def _ratio_rows(table, results, p, numerator, label, by):
    """Rows of a ratio (numerator / input) per scenario in period ``p`` or over all periods."""
    periods = results.inputs.periods
    if p is not None:
        table = table[table["period"] == periods[p]]
    keys = ["scenario"] + ([by] if by else [])
    sums = table.groupby(keys, sort=False, observed=True)[[numerator, "input"]].sum()
    share = sums[numerator] / sums["input"].where(sums["input"] > 0)
    rows = []
    groups = [None] if by is None else list(dict.fromkeys(table[by]))
    for group in groups:
        values = [
            share.get(s if by is None else (s, group), np.nan) for s in results.inputs.scenarios
        ]
        rows.append((f"{label} (fraction)", group or "goods", values))
    return rows
