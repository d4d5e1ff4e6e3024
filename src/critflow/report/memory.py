"""How much memory a run will need, estimated before it solves — so that a run too large for the
machine is refused with the reason instead of dying half-way.

The estimate adds what is alive at the run's peak:

- the process as it is (Python, the libraries, the model): its resident size now;
- the solve: the evaluated inputs and the solved flows, ``S·P·E·(F + J)`` numbers a few times over;
- the tables a run writes (recovery, impact …): their rows and bytes per period are measured on
  the model cut to its first period — the same table code on one period — and scaled by the
  number of periods; the flow and balance tables are written a block of at most
  ``tables.BATCH_ROWS`` rows at a time, so only one block counts;
- the Excel workbook is written in openpyxl's write-only mode (rows go to disk as they are
  appended): a summary holds a few sheets of one period, ``--excel full`` one row at a time;
- the report's Sankey data (every flow of every element, scenario and period);
- with ``--samples``: the Monte Carlo statistics (a 512-bin histogram per flow, element, scenario
  and period, merged three at a time) and one chunk of samples.

Constants were measured on this code (Python 3.11, pandas 2, openpyxl 3) and are checked by a test
against the peak resident size of a real run (tests/report/test_run_folder.py): the estimate stays
within a factor of 1.5 of the measured peak.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np

from critflow.engine.compile import ModelInputs
from critflow.errors import CritflowError
from critflow.model.core import Model

BLOCK_BYTES = 3 * 80
"""Memory per row of a flow or balance block being written: the Arrow batch (about 60 B a row with
its string columns), its CSV cast and the Parquet and CSV writers' buffers."""
SOLVE_COPIES = 6
"""Arrays of ``S·P·E·(F + J)`` float64 alive while a model is evaluated and solved (inputs, the
sparse system, its factors, the solution, the flows in kg and in the model's unit)."""
REPORT_BYTES = 80
"""Report memory per flow value: a Python float in the Sankey lists (~32 B), its packed base64 text
(~11 B) and the HTML document it ends in (twice, as text and encoded)."""
MC_COPIES = 5
"""Per-sample arrays of ``S·P·E·(F + J)`` float64 alive in a Monte Carlo chunk: the draws evaluated
(shares and given masses), the block system's solution, the flows in kg and in the model's unit
(measured: 4.7 on the example, 2000 samples in chunks of 1000)."""
BINS = 512
ONE_PERIOD = ("compliance",)
"""Tables with a period column that a run writes for one period only (the rules: the last)."""
LIBRARIES = 100 * 2**20
"""Libraries a run loads after the estimate (openpyxl, plotly and its 4.6 MB plotly.js, jinja2):
measured as the peak of a one-period run minus the resident size at the estimate, 95-110 MB."""
UNITS = {"kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40, "b": 1}


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak memory of a run, in bytes, with what needs it and the sizes that drive it."""

    total: float
    parts: dict[str, float]
    dimensions: dict[str, int]
    excel_cells: int = 0
    tables: dict[str, int] = field(default_factory=dict)  # rows of each table

    def driver(self) -> tuple[str, int]:
        """The dimension that drives the size: the largest of periods, scenarios, elements, flows
        (and samples per chunk)."""
        candidates = {
            k: v
            for k, v in self.dimensions.items()
            if k in ("periods", "scenarios", "elements", "flows", "samples per chunk")
        }
        name = max(candidates, key=lambda k: candidates[k])
        return name, candidates[name]

    def describe(self) -> str:
        """'6.4 GB: Excel workbook 3.1 GB, tables 1.9 GB, …'."""
        parts = sorted(self.parts.items(), key=lambda kv: -kv[1])
        return (
            f"{size_text(self.total)} ("
            + ", ".join(
                f"{name} {size_text(value)}" for name, value in parts if value >= 0.01 * self.total
            )
            + ")"
        )


def size_text(n: float) -> str:
    """Bytes as '1.9 GB', '350 MB'."""
    for unit, scale in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            value = n / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n:.0f} B"


def parse_size(text: str, where: str = "--max-memory") -> float | None:
    """'8GB', '500 MB', '2e9' (bytes) → bytes; 'auto' → the machine's available memory;
    'off' → None (no limit)."""
    value = text.strip().lower().replace(" ", "")
    if value == "off":
        return None
    if value == "auto":
        return available_memory()
    unit = next((u for u in sorted(UNITS, key=len, reverse=True) if value.endswith(u)), "")
    number, scale = (value[: -len(unit)], UNITS[unit]) if unit else (value, 1)
    try:
        amount = float(number) * scale
    except ValueError:
        amount = float("nan")
    if not np.isfinite(amount) or amount <= 0:
        raise CritflowError(
            where,
            f"'{text}' is not a memory size",
            "Give a size such as 8GB or 500MB, 'auto' (the memory available now) or 'off'.",
        )
    return amount


def available_memory() -> float | None:
    """Memory available to a new allocation now (MemAvailable on Linux; the physical memory
    elsewhere), or None when the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def resident_memory() -> float:
    """Resident size of this process now, bytes (0 when the system does not say)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return float(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return float(peak) * (1 if sys.platform == "darwin" else 1024)
    except (ImportError, OSError):
        return 0.0


def _first_period(model: Model) -> Model:
    """The model cut to its first period (same scenarios, processes, flows and values)."""
    spec = model.spec
    time = spec.time.model_copy(update={"end": spec.time.start})
    return Model(spec.model_copy(update={"time": time}), model.source, model.path)


def _period_tables(
    model: Model, scenarios: list[str] | None, indicators: bool
) -> tuple[dict[str, tuple[int, int, float, bool]], int]:
    """Rows, columns, bytes and whether it grows with the periods, for every table a run writes,
    measured on the model's first period; and (when ``indicators``) how many indicators Monte
    Carlo follows per scenario and period."""
    from critflow.analysis import Run
    from critflow.engine import solve
    from critflow.report.tables import indicator_tables, wide_flows

    one = _first_period(model)
    results = solve(one, scenarios)
    tables = {
        "flows": results.flows(),
        "balance": results.balance(),
        "flows (Excel)": wide_flows(results),
    }
    if results.stocks is not None:
        tables["stocks"] = results.stock_table()
    tables.update(indicator_tables(Run(one, results)))
    measured = {
        name: (
            len(frame),
            frame.shape[1],
            float(frame.memory_usage(index=False, deep=False).sum()),
            "period" in frame.columns and name not in ONE_PERIOD,
        )
        for name, frame in tables.items()
    }
    followed = 0
    if indicators:
        from critflow.indicators.sampled import indicator_samples

        followed = len(indicator_samples(one, results))
    return measured, followed


def _main_tables(inputs: ModelInputs) -> dict[str, tuple[int, int, float, bool]]:
    """Rows per period, columns and bytes of the three largest tables of a run (flows, balance,
    recovery), from the model's dimensions — when the first period cannot be solved alone."""
    topo = inputs.topology
    n_s, n_e, n_f = len(inputs.scenarios), topo.n_elements, topo.n_flows
    n_u = len(topo.process_ids)
    rows = {"flows": n_s * n_e * n_f, "balance": n_s * n_e * (n_u + 1), "recovery": n_s * n_e * n_f}
    cols = {"flows": 8, "balance": 10, "recovery": 8}
    tables = {name: (rows[name], cols[name], rows[name] * cols[name] * 8.0, True) for name in rows}
    tables["flows (Excel)"] = (n_s * n_f, n_e + 6, n_s * n_f * (n_e + 6) * 8.0, True)
    return tables


def estimate_run(
    model: Model,
    inputs: ModelInputs,
    scenarios: list[str] | None = None,
    samples: int = 0,
    chunk_size: int = 1000,
    keep_samples: bool = False,
    excel: str = "summary",
) -> MemoryEstimate:
    """Peak memory of ``critflow run`` on ``model`` (evaluated as ``inputs``), see the module
    docstring. Costs one solve of the model's first period."""
    from critflow.report.tables import BATCH_ROWS, SUMMARY_ROWS

    topo = inputs.topology
    n_s, n_p = len(inputs.scenarios), int(inputs.periods.size)
    n_e, n_f, n_j = topo.n_elements, topo.n_flows, int(topo.transfer_process.size)
    dims = {
        "scenarios": n_s,
        "periods": n_p,
        "elements": n_e,
        "flows": n_f,
        "processes": len(topo.process_ids),
    }
    base = resident_memory()
    solve_bytes = n_s * n_p * n_e * (n_f + n_j) * 8.0 * SOLVE_COPIES
    table_bytes, cells, rows = 0.0, 0, {}
    try:
        measured, followed = _period_tables(model, scenarios, samples > 0)
    except CritflowError:  # the first period alone does not solve: count the main tables
        measured, followed = _main_tables(inputs), 0
    block_rows = 0
    for name, (n_rows, n_cols, n_bytes, per_period) in measured.items():
        scale = n_p if per_period else 1
        rows[name] = n_rows * scale
        if name in ("flows", "balance", "flows (Excel)"):  # written a block at a time
            per = max(n_rows, 1)
            block_rows = max(block_rows, min(rows[name], max(1, BATCH_ROWS // per) * per))
            continue
        table_bytes += n_bytes * scale
        cells += rows[name] * n_cols if excel == "full" or rows[name] <= SUMMARY_ROWS else 0
    table_bytes += block_rows * float(BLOCK_BYTES)
    report_bytes = n_s * n_p * (n_e + 1) * n_f * float(REPORT_BYTES)
    parts = {
        "this process now": base,
        "libraries": float(LIBRARIES),
        "solve": solve_bytes,
        "tables": table_bytes,
        "report": report_bytes,
    }
    deterministic = base + LIBRARIES + solve_bytes + max(table_bytes, report_bytes)
    total = deterministic
    if samples:
        chunk = min(samples, chunk_size)
        dims["samples per chunk"] = chunk
        quantities = n_s * n_p * (n_e * n_f + followed)
        statistics = quantities * (3 * BINS * 4 + 8 * 6.0)
        per_chunk = chunk * (n_s * n_p * n_e * (n_f + n_j) * MC_COPIES + quantities * 2)
        kept = samples * n_s * n_p * n_f * 8.0 * 2 if keep_samples else 0.0
        parts["Monte Carlo statistics"] = statistics
        parts["Monte Carlo chunk"] = per_chunk * 8.0
        if kept:
            parts["kept samples"] = kept
        total = max(
            deterministic, base + LIBRARIES + solve_bytes + statistics + per_chunk * 8.0 + kept
        )
    return MemoryEstimate(total, parts, dims, cells, rows)


def check_memory(
    estimate: MemoryEstimate, limit: float | None, where: str = "run", flag: str = "--max-memory"
) -> None:
    """Refuse a run whose estimate exceeds ``limit`` bytes (None: no limit), saying what the
    estimate is, which dimension drives it and how to reduce it."""
    if limit is None or estimate.total <= limit:
        return
    name, value = estimate.driver()
    dims = estimate.dimensions
    grid = " × ".join(
        f"{dims[k]:,} {k}" for k in ("scenarios", "periods", "elements", "flows") if k in dims
    )
    values = int(np.prod([dims[k] for k in ("scenarios", "periods", "elements", "flows")]))
    ways = {
        "periods": "a shorter horizon or coarser periods (time: {start, end})",
        "scenarios": "fewer scenarios (--scenario NAME)",
        "elements": "fewer elements (merge minor ones into 'rest')",
        "flows": "fewer flows (merge parallel streams)",
        "samples per chunk": "a smaller --chunk-size",
    }
    reduce = [ways[name], *[v for k, v in ways.items() if k != name and k in dims][:2]]
    raise CritflowError(
        where,
        f"the run would need about {estimate.describe()}, more than the {size_text(limit)} "
        f"allowed; {grid} = {values:,} flow values, driven by the {value:,} {name}",
        f"Reduce it with {'; or '.join(reduce)} — memory grows in proportion — or allow it with "
        f"{flag} {size_text(estimate.total * 1.25).replace(' ', '')} (or {flag} off). Nothing "
        "was solved or written.",
    )
