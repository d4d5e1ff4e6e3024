"""openLCA JSON-LD exchange: the foreground of a solved model as an openLCA-importable zip, and an
openLCA process's exchanges as a critflow inventory.

The export (:func:`export_openlca`) writes, for one scenario and period of a solved model:

- one openLCA *process* per critflow process that is not a source or sink, with its exchanges per
  kg of the process's inventory basis (what it receives, unless ``inventory_basis`` says
  otherwise): the goods flows it receives and sends (kg), the inventory items it uses (in each
  item's unit: kWh, kg, GJ, t*km) and its direct emissions (kg of gas); the largest output is the
  quantitative reference, and physical (mass) allocation factors split it among its outputs;
- one *flow* per goods flow (a product flow, or a waste flow when its fate is landfill or
  incineration), per inventory item (a product flow the user links to a background provider in
  openLCA, or — through a mapping file — an existing openLCA flow by its UUID) and per gas (an
  elementary flow);
- the unit groups and flow properties these need (one per unit, so the zip imports into an empty
  database), and a *product system* whose links follow the model's flows between processes.

Numbers are those critflow computed (the Battery Regulation counting and end-of-life credits do not
carry over: openLCA applies its own methods). The import (:func:`read_openlca_inventory`) reads a
process from a zip and returns its inputs per unit of its quantitative reference, as a critflow
``inventory:`` mapping.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, suggest
from critflow.impact.lca import ImpactResults
from critflow.model.core import Model

NAMESPACE = uuid.UUID("6f1c1a52-2f0e-4c43-9d2b-7c0e3f6a9b10")
"""Namespace of critflow's openLCA ids: the same model exports with the same UUIDs."""
WASTE_FATES = {"landfill", "incineration"}
MAPPING_COLUMNS = ("item", "flow_id", "flow_name", "unit")


def _id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def read_mapping(path: str | Path) -> dict[str, dict[str, str]]:
    """A mapping file (CSV: item, flow_id, flow_name, unit): critflow inventory items → existing
    openLCA flows (e.g. an ecoinvent market's reference flow), by UUID."""
    from critflow.model.tables import read_csv_file

    table = read_csv_file(path, "an openLCA mapping (item, flow_id, flow_name, unit)")
    rows = {}
    columns = {name: table.column(name) for name in MAPPING_COLUMNS}
    for line, cells in table.rows:
        item = cells[columns["item"]].strip()
        flow_id = cells[columns["flow_id"]].strip()
        try:
            uuid.UUID(flow_id)
        except ValueError:
            raise CritflowError(
                f"{table.shown}, line {line}",
                "the cell in column 'flow_id' is not a UUID",
                "Copy the flow's UUID from openLCA (the flow's General information).",
            ) from None
        rows[item] = {name: cells[columns[name]].strip() for name in MAPPING_COLUMNS}
    return rows


def export_openlca(
    model: Model,
    results: FlowResults,
    impacts: ImpactResults,
    path: str | Path,
    *,
    scenario: str | None = None,
    period: int | None = None,
    mapping: dict[str, dict[str, str]] | None = None,
) -> dict[str, int]:
    """Write the foreground of ``scenario`` in ``period`` (the first scenario and last period by
    default) as an openLCA JSON-LD zip at ``path``; returns the number of entities per kind."""
    import olca_schema as o
    from olca_schema import zipio

    inputs = results.inputs
    scenarios = list(inputs.scenarios)
    periods = [int(p) for p in inputs.periods]
    scenario = scenario or scenarios[0]
    period = periods[-1] if period is None else period
    if scenario not in scenarios:
        raise CritflowError(
            "scenario=",
            f"'{scenario}' is not a scenario",
            suggest(scenario, scenarios, "Scenarios"),
        )
    if period not in periods:
        raise CritflowError(
            "period=",
            f"{period} is not a period of the model",
            f"Choose a year in {periods[0]}–{periods[-1]}.",
        )
    s, p = scenarios.index(scenario), periods.index(period)
    mapping = mapping or {}
    spec = model.spec
    name = spec.name
    goods = results.mass_kg[s, p].sum(axis=0)  # (F,) kg/a
    scaling = impacts.scaling_kg[s, p] if impacts.scaling_kg is not None else None
    amounts = impacts.amounts[s, p] if impacts.amounts is not None else None
    direct = impacts.direct_amounts[s, p] if impacts.direct_amounts is not None else None

    entities: list[Any] = []
    units: dict[str, tuple[Any, Any, Any]] = {}

    def unit(symbol: str):
        if symbol not in units:
            group = o.new_unit_group(f"critflow: {symbol}", symbol)
            group.id = _id(name, "unit group", symbol)
            group.units[0].id = _id(name, "unit", symbol)
            prop = o.new_flow_property(f"critflow: amount in {symbol}", group)
            prop.id = _id(name, "flow property", symbol)
            units[symbol] = (group, prop, group.units[0])
            entities.extend([group, prop])
        return units[symbol]

    flows: dict[str, Any] = {}

    def flow(key: str, title: str, kind, symbol: str):
        if key not in flows:
            item = mapping.get(key.removeprefix("item:"))
            made = o.new_flow(title, kind, unit(symbol)[1])
            made.id = item["flow_id"] if item else _id(name, "flow", key)
            if item and item.get("flow_name"):
                made.name = item["flow_name"]
            flows[key] = made
            if not item:  # a mapped flow is in the user's openLCA database already
                entities.append(made)
        return flows[key]

    processes: dict[str, Any] = {}
    input_exchange: dict[tuple[str, str], Any] = {}
    kinds = {p.id: p.kind for p in spec.processes}
    for u, process in enumerate(spec.processes):
        if process.kind in ("source", "sink"):
            continue
        basis = float(scaling[u]) if scaling is not None else 0.0
        if basis <= 0:
            basis = float(sum(goods[i] for i, f in enumerate(spec.flows) if f.to == process.id))
        made = o.new_process(process.name or process.id)
        made.id = _id(name, "process", process.id)
        made.description = (
            f"critflow model '{name}', scenario {scenario}, {period}: amounts per kg of "
            f"{_basis_words(process)} ({basis:,.6g} kg/a in the model). "
            f"{process.description or ''}".strip()
        )
        outputs = []
        for i, f in enumerate(spec.flows):
            if process.id not in (f.from_, f.to):
                continue
            kind = o.FlowType.WASTE_FLOW if f.fate in WASTE_FATES else o.FlowType.PRODUCT_FLOW
            goods_flow = flow(f"flow:{f.id}", f.name or f.id, kind, "kg")
            per_kg = float(goods[i]) / basis if basis > 0 else 0.0
            exchange = o.new_exchange(made, goods_flow, per_kg, unit("kg")[2])
            exchange.is_input = f.to == process.id
            exchange.internal_id = len(made.exchanges)
            if exchange.is_input:
                input_exchange[(process.id, f.id)] = exchange
            else:
                outputs.append((per_kg, exchange, goods_flow))
        if amounts is not None:
            for k, item in enumerate(impacts.items):
                if amounts[u, k] != 0:
                    symbol = impacts.item_units[k]
                    exchange = o.new_exchange(
                        made,
                        flow(f"item:{item}", item, o.FlowType.PRODUCT_FLOW, symbol),
                        float(amounts[u, k]),
                        unit(symbol)[2],
                    )
                    exchange.is_input = True
                    exchange.internal_id = len(made.exchanges)
        if direct is not None:
            for g, gas in enumerate(impacts.gases):
                if direct[u, g] != 0:
                    exchange = o.new_exchange(
                        made,
                        flow(f"gas:{gas}", gas, o.FlowType.ELEMENTARY_FLOW, "kg"),
                        float(direct[u, g]),
                        unit("kg")[2],
                    )
                    exchange.is_input = False
                    exchange.internal_id = len(made.exchanges)
        made.last_internal_id = len(made.exchanges)
        if outputs:
            largest = max(outputs, key=lambda o_: o_[0])
            largest[1].is_quantitative_reference = True
            total = sum(a for a, _, _ in outputs)
            made.allocation_factors = [
                o.AllocationFactor(
                    allocation_type=o.AllocationType.PHYSICAL_ALLOCATION,
                    product=o.as_ref(product),
                    value=(a / total) if total > 0 else 0.0,
                )
                for a, _, product in outputs
            ]
            made.default_allocation_method = o.AllocationType.PHYSICAL_ALLOCATION
        processes[process.id] = made
        entities.append(made)

    links = []
    for f in spec.flows:
        if f.from_ in processes and f.to in processes:
            links.append(
                o.ProcessLink(
                    provider=o.as_ref(processes[f.from_]),
                    flow=o.as_ref(flows[f"flow:{f.id}"]),
                    process=o.as_ref(processes[f.to]),
                    exchange=o.ExchangeRef(internal_id=input_exchange[(f.to, f.id)].internal_id),
                )
            )
    if processes:
        final = [
            pid
            for pid in processes
            if not any(f.from_ == pid and kinds.get(f.to) != "sink" for f in spec.flows)
        ]
        reference = processes[(final or list(processes))[-1]]
        ref_exchange = (
            next(e for e in reference.exchanges if e.is_quantitative_reference)
            if any(e.is_quantitative_reference for e in reference.exchanges)
            else None
        )
        system = o.ProductSystem(
            id=_id(name, "product system", scenario, str(period)),
            name=f"{name} ({scenario}, {period})",
            ref_process=o.as_ref(reference),
            ref_exchange=o.ExchangeRef(internal_id=ref_exchange.internal_id)
            if ref_exchange
            else None,
            target_amount=ref_exchange.amount if ref_exchange else 1.0,
            target_flow_property=o.as_ref(unit("kg")[1]),
            target_unit=o.as_ref(unit("kg")[2]),
            processes=[o.as_ref(x) for x in processes.values()],
            process_links=links,
        )
        entities.append(system)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    with zipio.ZipWriter(partial) as writer:
        for entity in entities:
            writer.write(entity)
    partial.replace(path)
    counts: dict[str, int] = {}
    for entity in entities:
        counts[type(entity).__name__] = counts.get(type(entity).__name__, 0) + 1
    return counts


def _basis_words(process) -> str:
    basis = process.inventory_basis or "input"
    if basis == "input":
        return "what the process receives"
    if basis == "output":
        return "what the process sends out"
    return f"the flow '{basis}'"


def read_openlca_inventory(path: str | Path, process: str) -> dict[str, str]:
    """The technosphere inputs of an openLCA process (by name or UUID) in a JSON-LD zip, per unit
    of its quantitative reference, as a critflow ``inventory:`` mapping {item: '0.12 kWh/kg'}.

    Items are named by the flow's name; the reference unit is the quantitative reference's unit.
    Elementary flows (emissions) are left out: write them under ``direct:`` if you need them."""
    from olca_schema import Process, zipio

    path = Path(path)
    try:
        reader = zipio.ZipReader(path)
    except (OSError, ValueError, Exception) as exc:  # zipfile.BadZipFile and friends
        raise CritflowError(
            str(path),
            f"cannot be read as an openLCA JSON-LD zip ({type(exc).__name__})",
            "Export from openLCA with File → Export → JSON-LD.",
        ) from None
    with reader:
        found = [p for p in reader.read_each(Process) if process in (p.id, p.name)]
        if not found:
            names = sorted(p.name or p.id for p in reader.read_each(Process))
            raise CritflowError(
                str(path), f"holds no process '{process}'", suggest(process, names, "Processes")
            )
        chosen = found[0]
        reference = next((e for e in chosen.exchanges or [] if e.is_quantitative_reference), None)
        if reference is None or not reference.amount:
            raise CritflowError(
                f"{path}: process '{chosen.name}'",
                "has no quantitative reference with an amount",
                "Set the quantitative reference in openLCA and export again.",
            )
        per = reference.unit.name if reference.unit and reference.unit.name else "unit"
        inventory = {}
        for exchange in chosen.exchanges or []:
            if not exchange.is_input or exchange is reference:
                continue
            flow = exchange.flow
            if flow is None or getattr(flow, "flow_type", None) == "ELEMENTARY_FLOW":
                continue
            symbol = exchange.unit.name if exchange.unit and exchange.unit.name else "unit"
            amount = float(exchange.amount or 0.0) / float(reference.amount)
            inventory[flow.name or flow.id] = f"{amount!r} {symbol}/{per}"
        return inventory


def mapping_template(items: list[str], units: list[str]) -> str:
    """A mapping file to fill in: one row per inventory item of a model."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(MAPPING_COLUMNS)
    for item, symbol in zip(items, units, strict=True):
        writer.writerow([item, "", "", symbol])
    return buffer.getvalue()
