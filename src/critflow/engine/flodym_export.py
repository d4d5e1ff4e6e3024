"""Export a critflow model as a flodym model: a definition, a ``compute()`` and its data files.

flodym (https://github.com/pik-piam/flodym) describes an MFA as dimensions, processes, flows, stocks
and parameters, read from CSV files, and a ``compute()`` the modeller writes. :func:`export_flodym`
writes that for one scenario of a critflow model, in a folder a flodym user runs as it is::

    model.py                  the MFADefinition, an MFASystem subclass with compute(), run(folder)
    dimensions/Time.csv       the periods
    dimensions/Element.csv    the elements
    parameters/*.csv          given flows (t, e), transfer coefficients (t, e), lifetimes (e)

``compute()`` computes the flows in the order they follow from the given ones: a transfer process
sends its input times its transfer coefficients; a market's balancing input is what it sends less
its other inputs; a stock is flodym's ``InflowDrivenDSM`` with the same lifetime distribution.
Numbers are critflow's evaluated inputs (expressions and time series already evaluated), so flodym
gives the same stocks and flows (``tests/engine/test_flodym_export.py``: to 1e-9).

What critflow models and flodym's compute() cannot follow in order is refused with the reason: a
recycle loop inside one period (critflow solves the loop as a linear system; flodym's compute() is
the user's sequence of assignments), stock-driven stocks, stocks with an initial stock (flodym's
dynamic stock models start empty), exponential lifetimes (not in flodym), flows given for some
elements only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from critflow.engine.compile import ModelInputs, evaluate
from critflow.errors import CritflowError, Problem
from critflow.model.core import Model

LIFETIMES = {
    "weibull": ("WeibullLifetime", {"shape": "weibull_shape", "scale": "weibull_scale"}),
    "normal": ("NormalLifetime", {"mean": "mean", "std": "std"}),
    "folded_normal": ("FoldedNormalLifetime", {"mean": "mean", "std": "std"}),
    "lognormal": ("LogNormalLifetime", {"mean": "mean", "std": "std"}),
    "fixed": ("FixedLifetime", {"mean": "mean"}),
}
"""critflow lifetime distribution → flodym lifetime class and parameter names."""


def _name(text: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in text)


def export_flodym(model: Model, folder: str | Path, scenario: str | None = None) -> Path:
    """Write ``model`` (one scenario, the first by default) as a flodym model in ``folder``;
    returns the path of its ``model.py``. Raises a CritflowError naming what flodym's compute()
    cannot reproduce."""
    spec = model.spec
    scenarios = list(spec.scenarios)
    scenario = scenario or scenarios[0]
    if scenario not in scenarios:
        raise CritflowError(
            "scenario=", f"'{scenario}' is not a scenario", f"Scenarios: {', '.join(scenarios)}."
        )
    inputs: ModelInputs = evaluate(model, [scenario])
    topo = inputs.topology
    unit = inputs.kg_per_unit
    kinds = {p.id: p.kind for p in spec.processes}
    problems: list[Problem] = []
    stocks = {s.process_id: s for s in inputs.stocks}
    for stock in inputs.stocks:
        where = model.where("processes", stock.process)
        if stock.stock_driven.any():
            problems.append(
                Problem(
                    where,
                    f"stock '{stock.process_id}' is stock-driven",
                    "The export writes inflow-driven stocks only.",
                )
            )
        if stock.initial_total_kg is not None or stock.initial_cohorts_kg is not None:
            problems.append(
                Problem(
                    where,
                    f"stock '{stock.process_id}' has an initial stock",
                    "flodym's dynamic stock models start empty: drop initial_stock, or start the model earlier.",
                )
            )
        if stock.distribution not in LIFETIMES:
            problems.append(
                Problem(
                    where,
                    f"the lifetime of '{stock.process_id}' is {stock.distribution}, which flodym has no model for",
                    f"Use one of {', '.join(LIFETIMES)}.",
                )
            )
        if stock.cohort_varying:
            problems.append(
                Problem(
                    where,
                    f"the lifetime of '{stock.process_id}' varies by cohort",
                    "The export writes lifetimes fixed over time.",
                )
            )
    mask = inputs.given_mask[0]  # (E, F)
    given = {}
    for i, f in enumerate(spec.flows):
        if mask[:, i].any():
            if not mask[:, i].all():
                problems.append(
                    Problem(
                        model.where("flows", i),
                        f"flow '{f.id}' is given for some elements only",
                        "Give the flow's value (a composition then gives every element).",
                    )
                )
            given[f.id] = inputs.given_mass_kg[0, :, :, i] / unit  # (P, E) in the model's unit
    if problems:
        raise CritflowError(problems)

    folder = Path(folder)
    (folder / "dimensions").mkdir(parents=True, exist_ok=True)
    (folder / "parameters").mkdir(parents=True, exist_ok=True)
    periods = [int(p) for p in inputs.periods]
    elements = list(topo.elements)
    pd.Series(periods).to_csv(folder / "dimensions" / "Time.csv", index=False, header=False)
    pd.Series(elements).to_csv(folder / "dimensions" / "Element.csv", index=False, header=False)
    parameters: list[tuple[str, str]] = []  # (name, dim letters)

    def write_parameter(name: str, values: np.ndarray, letters: str) -> None:
        if letters == "te":
            frame = pd.DataFrame(
                {
                    "Time": np.repeat(periods, len(elements)),
                    "Element": np.tile(elements, len(periods)),
                    "value": values.reshape(-1),
                }
            )
        else:
            frame = pd.DataFrame({"Element": elements, "value": values.reshape(-1)})
        frame.to_csv(folder / "parameters" / f"{name}.csv", index=False, float_format="%.17g")
        parameters.append((name, letters))

    for flow_id, values in given.items():
        write_parameter(f"given_{_name(flow_id)}", values, "te")

    # transfer entries: (process, output) → index j
    entry = {}
    for j, (u, f) in enumerate(zip(topo.transfer_process, topo.transfer_output, strict=True)):
        entry[(spec.processes[int(u)].id, spec.flows[int(f)].id)] = j

    known = set(given)
    lines: list[str] = [
        f'self.flows["{f}"][...] = self.parameters["given_{_name(f)}"]' for f in given
    ]

    def total(flow_ids: list[str]) -> str:
        return " + ".join(f'self.flows["{f}"]' for f in flow_ids) or "0.0"

    pending = True
    while pending:
        pending = False
        for process in spec.processes:
            ins = [f.id for f in spec.flows if f.to == process.id]
            outs = [f.id for f in spec.flows if f.from_ == process.id]
            todo = [f for f in outs if f not in known]
            if process.kind in ("source", "sink") or not (
                todo or (process.kind == "market" and any(f not in known for f in ins))
            ):
                continue
            if process.kind == "transfer" and all(f in known for f in ins):
                for f in todo:
                    name = f"tc_{_name(process.id)}__{_name(f)}"
                    write_parameter(
                        name, inputs.transfer_coefficients[0, :, :, entry[(process.id, f)]], "te"
                    )
                    lines.append(
                        f'self.flows["{f}"][...] = ({total(ins)}) * self.parameters["{name}"]'
                    )
                    known.add(f)
                pending = True
            elif process.kind == "stock" and all(f in known for f in ins):
                stock = stocks[process.id]
                _, names = LIFETIMES[stock.distribution]
                prms = []
                for ours, theirs in names.items():
                    pname = f"lifetime_{_name(process.id)}__{theirs}"
                    write_parameter(pname, np.asarray(stock.parameters[ours])[0], "e")
                    prms.append(f'stock.lifetime_model.{theirs} = self.parameters["{pname}"]')
                out = spec.flows[stock.output_flow].id
                lines += [
                    f'stock = self.stocks["{process.id}"]',
                    f"stock.inflow[...] = {total(ins)}",
                    *prms,
                    "stock.compute()",
                    f'self.flows["{out}"][...] = stock.outflow',
                ]
                known.add(out)
                pending = True
            elif process.kind == "market":
                balancing = process.balancing
                others = [f for f in ins if f != balancing]
                if all(f in known for f in outs + others) and balancing not in known:
                    lines.append(
                        f'self.flows["{balancing}"][...] = ({total(outs)}) - ({total(others) if others else "0.0"})'
                    )
                    known.add(balancing)
                    pending = True
    missing = [f.id for f in spec.flows if f.id not in known]
    if missing:
        raise CritflowError(
            model.where("flows"),
            f"the flows {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''} do not follow "
            "from the given ones in order (a recycle loop inside a period, or a flow no process sets)",
            "critflow solves such loops as a linear system; flodym's compute() is a sequence of "
            "assignments, so the export cannot write it. Export a model without the loop.",
        )

    processes = ["sysenv"] + [p.id for p in spec.processes if p.kind not in ("source", "sink")]

    def end(process_id: str) -> str:
        return "sysenv" if kinds[process_id] in ("source", "sink") else process_id

    flow_defs = [
        f'    fd.FlowDefinition(from_process="{end(f.from_)}", to_process="{end(f.to)}", '
        f'dim_letters=("t", "e"), name_override="{f.id}"),'
        for f in spec.flows
    ]
    stock_defs = [
        f'    fd.StockDefinition(name="{s.process_id}", process="{s.process_id}", '
        f'dim_letters=("t", "e"), subclass=fd.InflowDrivenDSM, '
        f"lifetime_model_class=fd.{LIFETIMES[s.distribution][0]}),"
        for s in inputs.stocks
    ]
    parameter_defs = [
        f'    fd.ParameterDefinition(name="{n}", dim_letters={tuple(letters)!r}),'
        for n, letters in parameters
    ]
    body = "\n".join("        " + line for line in lines) or "        pass"
    code = f'''"""{spec.name} (scenario {scenario}), exported by critflow as a flodym model.

Flows are in {inputs.unit}; run it with `python model.py` (needs flodym) or call run(folder).
"""

from pathlib import Path

import flodym as fd

dimensions = [
    fd.DimensionDefinition(name="Time", letter="t", dtype=int),
    fd.DimensionDefinition(name="Element", letter="e", dtype=str),
]
processes = {processes!r}
flows = [
{chr(10).join(flow_defs)}
]
stocks = [
{chr(10).join(stock_defs)}
]
parameters = [
{chr(10).join(parameter_defs)}
]
definition = fd.MFADefinition(
    dimensions=dimensions, processes=processes, flows=flows, stocks=stocks, parameters=parameters
)


class CritflowExport(fd.MFASystem):
    def compute(self):
{body}


def run(folder=Path(__file__).parent):
    folder = Path(folder)
    mfa = CritflowExport.from_csv(
        definition=definition,
        dimension_files={{d.name: folder / "dimensions" / f"{{d.name}}.csv" for d in dimensions}},
        parameter_files={{p.name: folder / "parameters" / f"{{p.name}}.csv" for p in parameters}},
    )
    mfa.compute()
    return mfa


if __name__ == "__main__":
    mfa = run()
    for name, flow in mfa.flows.items():
        print(name, flow.values.sum(axis=1))
'''
    path = folder / "model.py"
    path.write_text(code, encoding="utf-8")
    return path


def read_flodym_parameter(path: str | Path, name: str | None = None) -> dict[str, object]:
    """critflow parameters from a flodym parameter file (its CSVParameterReader layout: one
    column per dimension, then ``value``): a file over time alone gives one time series
    ``{name: {year: value}}``; over time and one more dimension, one series per item
    (``name_item``); without a time column, a scalar (one row) or one scalar per item."""
    from critflow.model.tables import read_csv_file

    table = read_csv_file(path, "a flodym parameter file (dimension columns, then value)")
    name = name or Path(path).stem
    if "value" not in table.header:
        table.column("value")  # raises, naming the columns
    values = table.numbers("value")
    dims = [h for h in table.header if h != "value"]
    time = next((d for d in dims if d.lower() in ("time", "t", "year")), None)
    others = [d for d in dims if d != time]
    if len(others) > 1:
        raise CritflowError(
            f"{table.shown}, line 1",
            f"has the dimensions {', '.join(others)} besides time",
            "critflow parameters are series over time (and one item dimension at most); split "
            "the file per item, or give critflow the values it needs.",
        )
    items = table.texts(others[0]) if others else [""] * len(values)
    years: list[int | None] = []
    if time is not None:
        for (line, _cells), text in zip(table.rows, table.texts(time), strict=True):
            if not text.lstrip("-").isdigit():
                raise CritflowError(
                    f"{table.shown}, line {line}",
                    f"the cell in column '{time}' is not a year",
                    "Write whole years such as 2025.",
                )
            years.append(int(text))
    else:
        years = [None] * len(values)
    result: dict[str, object] = {}
    for item, year, value in zip(items, years, values, strict=True):
        key = f"{name}_{_name(item)}" if item else name
        if year is None:
            if key in result:
                raise CritflowError(
                    table.shown, f"has two values for '{key}'", "Keep one row each."
                )
            result[key] = float(value)
        else:
            series = result.setdefault(key, {})
            assert isinstance(series, dict)
            if year in series:
                raise CritflowError(
                    table.shown, f"has two values for '{key}' in {year}", "Keep one row per year."
                )
            series[year] = float(value)
    return result
