"""Semantic checks of a model that the schema alone cannot see.

Ids are unique, flows name existing processes, transfer outputs are real outputs, expressions name
known parameters, units are mass flows. All problems are collected and raised together.
"""

from __future__ import annotations

import keyword
from collections import Counter
from typing import Any

import numpy as np

from critflow.errors import CritflowError, Problem, known, nearest, suggest
from critflow.model.core import Model
from critflow.model.expressions import ExpressionError, parse_expression
from critflow.model.schema import (
    FlowSettings,
    MarketProcess,
    StockProcess,
    TransferProcess,
    is_per_element,
)
from critflow.model.uncertainty import Uncertain
from critflow.units import (
    INTERNAL_FLOW_UNIT,
    LARGEST,
    check_magnitude,
    looks_like_quantity,
    mass_flow_factor,
    parse_mass,
    parse_mass_flow,
)


def _expression_problems(
    value: Any, parameters: set[str], where: str, allow_quantity: bool
) -> list[Problem]:
    """Problems of one coefficient or value (number, quantity string or expression)."""
    if not isinstance(value, str):
        return []
    if allow_quantity and looks_like_quantity(value):
        try:
            parse_mass_flow(value, where)
        except CritflowError as exc:
            return exc.problems
        return []
    try:
        expression = parse_expression(value)
    except ExpressionError as exc:
        return [Problem(where, str(exc), "Fix the expression or write a number.")]
    problems = []
    for name in sorted(expression.names - parameters):
        hint = nearest(name, parameters)
        problems.append(
            Problem(
                where,
                f"the expression '{value}' uses '{name}', which is not a parameter",
                (hint + " " if hint else "")
                + (f"Parameters: {known(parameters)}." if parameters else "")
                + f" Declare it under 'parameters:' ({name}: 0.9) or correct the name.",
            )
        )
    return problems


def _mass_expression_problems(value: Any, parameters: set[str], where: str) -> list[Problem]:
    """Problems of a goods mass: a number, a mass ('2 Mt') or an expression of parameters."""
    if isinstance(value, str) and looks_like_quantity(value):
        try:
            parse_mass(value, where)
        except CritflowError as exc:
            return exc.problems
        return []
    return _expression_problems(value, parameters, where, allow_quantity=False)


def _values(spec: Any) -> list[Any]:
    """All scalar leaves of a flow value (time series and per-element values flattened)."""
    if isinstance(spec, dict):
        leaves: list[Any] = []
        for item in spec.values():
            if isinstance(item, dict):
                leaves += _values(item)
            else:
                leaves.append(item)
        return leaves
    return [spec]


def _magnitude_problems(
    value: Any, kg_per_unit: float, unit: str, where: str, si_unit: str = INTERNAL_FLOW_UNIT
) -> list[Problem]:
    """Given numbers that overflow (or come near it) once converted to kg (per year)."""
    numbers: list[float] = []
    for leaf in _values(value):
        if type(leaf) is float:
            numbers.append(leaf)
        elif isinstance(leaf, Uncertain):
            numbers += [x for x in (leaf.value, leaf.low, leaf.high) if x is not None]
        elif isinstance(leaf, float | int):
            numbers.append(float(leaf))
    with np.errstate(over="ignore", invalid="ignore"):
        converted = np.array(numbers, dtype=float) * kg_per_unit
        wrong = np.flatnonzero(~(np.abs(converted) <= LARGEST))  # (NaN and infinity too)
    for i in wrong[:1]:  # the first, as the message names one number
        try:
            check_magnitude(numbers[i] * kg_per_unit, f"{numbers[i]:g} {unit}", si_unit, where)
        except CritflowError as exc:
            return exc.problems
    return []


def _flow_settings_problems(
    model: Model, settings: FlowSettings, path: tuple[str | int, ...], base: FlowSettings | None
) -> list[Problem]:
    spec = model.spec
    elements = set(spec.elements)
    parameters = set(spec.parameters)
    problems: list[Problem] = []
    where = model.source.where
    kg_per_unit = None
    unit = settings.unit or (base.unit if base is not None else None) or spec.unit
    try:
        kg_per_unit = mass_flow_factor(unit, where((*path, "unit")))
    except CritflowError as exc:
        if settings.unit is not None:
            problems += exc.problems
    value = settings.value
    if kg_per_unit is not None and value is not None:
        problems += _magnitude_problems(value, kg_per_unit, unit, where((*path, "value")))
    per_element = is_per_element(value)
    if per_element:
        for key in value:
            if key not in elements:
                problems.append(
                    Problem(
                        where((*path, "value", key)),
                        f"'{key}' is not one of the model's elements",
                        suggest(key, elements, "Elements"),
                    )
                )
    value_where = where((*path, "value")) if value is not None else ""
    for leaf in _values(value) if value is not None else []:
        if isinstance(leaf, str):  # numbers have nothing to check here
            problems += _expression_problems(leaf, parameters, value_where, True)
    composition = (
        settings.composition
        if settings.composition is not None
        else (base.composition if base is not None else None)
    )
    if settings.composition is not None:
        for key, leaf in settings.composition.items():
            if key not in elements:
                problems.append(
                    Problem(
                        where((*path, "composition", key)),
                        f"'{key}' is not one of the model's elements",
                        suggest(key, elements, "Elements"),
                    )
                )
            problems += _expression_problems(
                leaf, parameters, where((*path, "composition", key)), False
            )
    if value is not None and not per_element and composition is None and len(elements) > 1:
        problems.append(
            Problem(
                where((*path, "value")),
                "a goods-mass value needs a composition to split it over the elements",
                "Add composition: {Li: 0.02, Co: 0.06, …} (mass fractions; 'rest' takes the "
                "remainder) or give per-element values, value: {Co: 520, Ni: 480}.",
            )
        )
    if per_element and settings.composition is not None:
        problems.append(
            Problem(
                where((*path, "composition")),
                "per-element values and a composition are both given",
                "Keep one: per-element values already fix each element's mass.",
            )
        )
    feeds_stock = (
        base is None and path[0] == "flows" and model.spec.flows[int(path[1])].to in model.stock_ids
    )
    if value is None and settings.composition is not None and base is None and not feeds_stock:
        problems.append(
            Problem(
                where((*path, "composition")),
                "a composition without a value has nothing to split",
                "Add value: (the goods mass) or remove the composition.",
            )
        )
    return problems


GOODS = "goods"
"""What the tables, the report and the plots call the goods mass (the sum of the elements):
``goods [t/a]`` beside ``Li [t/a]`` in flows.csv, the first choice of the report's element menu."""


def _element_name_problems(element: str, where: str) -> list[Problem]:
    """An element name that cannot head a column of flows.csv and the workbook: 'goods' (the sum
    has that column), a blank one, one with spaces around it or a line break in it, or one a
    spreadsheet takes for a formula."""
    if element == GOODS:
        why = "is what critflow calls the sum of the elements (flows.csv's 'goods [t/a]' column)"
    elif not element.strip() or element != element.strip():
        why = "is blank or has spaces around it"
    elif any(ch < " " or ch == "\x7f" for ch in element):
        why = "holds a line break or another control character"
    elif element.startswith("="):
        why = "starts with '=', which a spreadsheet reads as a formula"
    else:
        return []
    return [
        Problem(
            where,
            f"{element!r} cannot be an element name: it {why}",
            "Name the element with letters, digits and '_' (Li, slag_former, other_goods).",
        )
    ]


def check_model(model: Model) -> None:
    """Raise a :class:`CritflowError` listing every semantic problem of ``model``."""
    spec = model.spec
    where = model.source.where
    problems: list[Problem] = []

    for label, ids, key in (
        ("process", [p.id for p in spec.processes], "processes"),
        ("flow", [f.id for f in spec.flows], "flows"),
    ):
        seen: dict[str, int] = {}
        for i, item in enumerate(ids):
            if item in seen:
                problems.append(
                    Problem(
                        where(key, i, "id"),
                        f"the {label} id '{item}' is used twice (also {key}[{seen[item]}])",
                        f"Give each {label} its own id.",
                    )
                )
            seen.setdefault(item, i)
    for element, count in Counter(spec.elements).items():
        if count > 1:
            problems.append(
                Problem(
                    where("elements"),
                    f"the element '{element}' is listed {count} times",
                    "List it once.",
                )
            )
    for i, element in enumerate(spec.elements):
        problems += _element_name_problems(element, where("elements", i))
    for name in spec.parameters:
        if keyword.iskeyword(name) or not name.isidentifier() or name in ("min", "max", "abs"):
            problems.append(
                Problem(
                    where("parameters", name),
                    f"'{name}' cannot be a parameter name: expressions could not refer to it",
                    "Use letters, digits and '_' starting with a letter, and not a Python keyword "
                    "(yield, in, and, …) or min/max/abs; for example 'product_yield'.",
                )
            )
    try:
        mass_flow_factor(spec.unit, where("unit"))
    except CritflowError as exc:
        problems += exc.problems

    processes = {p.id: p for p in spec.processes}
    flows = {f.id: f for f in spec.flows}
    elements = set(spec.elements)
    parameters = set(spec.parameters)
    outputs: dict[str, list[str]] = {p: [] for p in processes}
    inputs: dict[str, list[str]] = {p: [] for p in processes}
    for i, flow in enumerate(spec.flows):
        for end, key in ((flow.from_, "from"), (flow.to, "to")):
            if end not in processes:
                problems.append(
                    Problem(
                        where("flows", i, key),
                        f"flow '{flow.id}' names the process '{end}', which does not exist",
                        suggest(end, processes, "Processes"),
                    )
                )
        if flow.from_ == flow.to:
            problems.append(
                Problem(
                    where("flows", i),
                    f"flow '{flow.id}' leaves and enters the same process '{flow.to}'",
                    "A flow joins two different processes; drop it or route it through another process.",
                )
            )
        if flow.from_ in outputs:
            outputs[flow.from_].append(flow.id)
        if flow.to in inputs:
            inputs[flow.to].append(flow.id)
        problems += _flow_settings_problems(model, flow, ("flows", i), None)
        kind_from = processes[flow.from_].kind if flow.from_ in processes else None
        kind_to = processes[flow.to].kind if flow.to in processes else None
        if flow.fate is not None and kind_to not in (None, "sink"):
            problems.append(
                Problem(
                    where("flows", i, "fate"),
                    f"flow '{flow.id}' has a fate but enters '{flow.to}', a {kind_to} process",
                    "A fate says what happens to material leaving the system: give it to flows "
                    "into sinks only.",
                )
            )
        if isinstance(flow.fate, dict):
            for element in flow.fate:
                if element != "default" and element not in elements:
                    problems.append(
                        Problem(
                            where("flows", i, "fate", element),
                            f"flow '{flow.id}' gives a fate to '{element}', which the model "
                            "does not carry",
                            f"{nearest(element, elements)} Elements: {known(elements)}; "
                            "'default' covers the others.".strip(),
                        )
                    )
        if flow.origin is not None and kind_from not in (None, "source", "stock"):
            problems.append(
                Problem(
                    where("flows", i, "origin"),
                    f"flow '{flow.id}' has an origin but leaves '{flow.from_}', a {kind_from} process",
                    "An origin says where material entering the system comes from: give it to "
                    "flows out of sources (or out of stocks: what leaves use) only.",
                )
            )
        elif flow.origin == "as_entered" and kind_from == "source":
            problems.append(
                Problem(
                    where("flows", i, "origin"),
                    f"flow '{flow.id}' leaves the source '{flow.from_}' with origin as_entered, "
                    "but material enters the system there",
                    "Use primary, pre_consumer, post_consumer or residue; as_entered is for flows "
                    "out of stockpiles.",
                )
            )
        if flow.role is not None and kind_from not in (None, "source"):
            problems.append(
                Problem(
                    where("flows", i, "role"),
                    f"flow '{flow.id}' has a role but leaves '{flow.from_}', a {kind_from} process",
                    "A role says what enters the system (feed, additive, fuel, energy_carrier, "
                    "water): give it to flows out of sources only.",
                )
            )

    for i, process in enumerate(spec.processes):
        pid = process.id
        if process.consumption and process.kind == "source":
            problems.append(
                Problem(
                    where("processes", i, "consumption"),
                    f"source '{pid}' is marked as consumption, but a source has no inputs to "
                    "consume",
                    "Mark the process (or sink) that the products enter, such as the users or "
                    "the products in use.",
                )
            )
        if process.kind == "source" and inputs[pid]:
            problems.append(
                Problem(
                    where("processes", i),
                    f"source '{pid}' has input flows ({', '.join(inputs[pid])})",
                    "A source only sends material into the system; make it a transfer process or "
                    "point those flows elsewhere.",
                )
            )
        if process.kind == "sink" and outputs[pid]:
            problems.append(
                Problem(
                    where("processes", i),
                    f"sink '{pid}' has output flows ({', '.join(outputs[pid])})",
                    "A sink only takes material out of the system; make it a transfer process.",
                )
            )
        if process.kind in ("transfer", "market") and not outputs[pid]:
            problems.append(
                Problem(
                    where("processes", i),
                    f"{process.kind} process '{pid}' has no output flow, so what enters cannot leave",
                    "Add an output flow, or make it a sink.",
                )
            )
        if process.kind in ("transfer", "market") and not inputs[pid]:
            problems.append(
                Problem(
                    where("processes", i),
                    f"{process.kind} process '{pid}' has no input flow",
                    "Add an input flow, or make it a source.",
                )
            )
        if isinstance(process, TransferProcess):
            problems += _transfer_problems(
                model, i, process, outputs[pid], flows, elements, parameters
            )
        if isinstance(process, StockProcess):
            problems += _stock_problems(
                model, i, process, inputs[pid], outputs[pid], elements, parameters
            )
        if isinstance(process, MarketProcess):
            if process.balancing not in inputs[pid]:
                problems.append(
                    Problem(
                        where("processes", i, "balancing"),
                        f"the balancing flow '{process.balancing}' is not an input of market '{pid}'",
                        suggest(process.balancing, inputs[pid], f"Inputs of '{pid}'"),
                    )
                )
            elif flows[process.balancing].value is not None:
                problems.append(
                    Problem(
                        where("processes", i, "balancing"),
                        f"the balancing flow '{process.balancing}' of market '{pid}' also has a given value",
                        "The market's balance decides it: remove its value, or balance on another input.",
                    )
                )

    problems += _measurement_problems(model)

    for name, definition in spec.indicators.items():
        path = ("indicators", name)
        if definition.element is not None and definition.element not in elements:
            problems.append(
                Problem(
                    where(*path, "element"),
                    f"indicator '{name}' asks for the element '{definition.element}', which the "
                    "model does not carry",
                    suggest(definition.element, elements, "Elements"),
                )
            )
        for key in ("numerator", "largest_of", "denominator"):
            for flow_id in getattr(definition, key) or []:
                if flow_id not in flows:
                    problems.append(
                        Problem(
                            where(*path, key),
                            f"indicator '{name}' names the flow '{flow_id}', which does not exist",
                            suggest(flow_id, flows, "Flows"),
                        )
                    )

    for name, scenario in spec.scenarios.items():
        for parameter in scenario.parameters:
            if parameter not in parameters:
                hint = nearest(parameter, parameters)
                problems.append(
                    Problem(
                        where("scenarios", name, "parameters", parameter),
                        f"scenario '{name}' sets '{parameter}', which is not a parameter of the model",
                        (hint + " " if hint else "") + "Declare it under 'parameters:' first.",
                    )
                )
        for flow_id, settings in scenario.flows.items():
            if flow_id not in flows:
                problems.append(
                    Problem(
                        where("scenarios", name, "flows", flow_id),
                        f"scenario '{name}' changes the flow '{flow_id}', which does not exist",
                        suggest(flow_id, flows, "Flows"),
                    )
                )
                continue
            problems += _flow_settings_problems(
                model, settings, ("scenarios", name, "flows", flow_id), flows[flow_id]
            )
    if problems:
        raise CritflowError(list(dict.fromkeys(problems)))


SMALLEST_SD = 1e-100
"""Smallest standard deviation of a measurement: its weight 1/sd² must stay a finite number."""


def _measurement_problems(model: Model) -> list[Problem]:
    """Measured values and standard deviations that would overflow a reconciliation."""
    spec, where = model.spec, model.source.where
    try:
        kg_per_unit = mass_flow_factor(spec.unit, where("unit"))
    except CritflowError:
        return []
    problems: list[Problem] = []
    for i, m in enumerate(spec.measurements):
        at = where("measurements", i)
        if isinstance(m.value, float | int):
            problems += _magnitude_problems(float(m.value), kg_per_unit, spec.unit, at)
        elif isinstance(m.value, str):
            try:
                parse_mass_flow(m.value, where("measurements", i, "value"))
            except CritflowError as exc:
                problems += exc.problems
        sd = m.sd
        if isinstance(sd, str) and sd.strip().endswith("%"):
            try:
                share = float(sd.strip()[:-1]) / 100
            except ValueError:
                share = None
            value = m.concentration if m.concentration is not None else m.value
            absolute = share * abs(value) if share and isinstance(value, float | int) else None
            if absolute is not None and absolute < SMALLEST_SD:
                problems.append(
                    Problem(
                        where("measurements", i, "sd"),
                        f"{sd} of a measured {value:g} is a standard deviation of {absolute:g}: "
                        "its weight 1/sd² overflows",
                        "Give this measurement an absolute standard deviation (sd: 0.5).",
                    )
                )
            elif share is not None and not SMALLEST_SD <= share <= 1e6:
                problems.append(
                    Problem(
                        where("measurements", i, "sd"),
                        f"a relative standard deviation of {sd} cannot weigh a measurement",
                        "Give a percentage between 1e-98 % and 1e8 % (say '2 %').",
                    )
                )
        elif isinstance(sd, float | int) and sd > 0:
            limit = 1.0 if m.concentration is not None else LARGEST / kg_per_unit
            if not SMALLEST_SD <= sd <= limit:
                problems.append(
                    Problem(
                        where("measurements", i, "sd"),
                        f"a standard deviation of {sd:g} "
                        + (
                            "is too small: its weight 1/sd² overflows"
                            if sd < SMALLEST_SD
                            else "is larger than any value it could describe"
                        ),
                        f"Give a standard deviation between {SMALLEST_SD:g} and {limit:g} in the "
                        + (
                            "unit of the concentration (a fraction)."
                            if m.concentration is not None
                            else f"model's unit ({spec.unit})."
                        ),
                    )
                )
    return problems


def _transfer_problems(
    model: Model,
    index: int,
    process: TransferProcess,
    outputs: list[str],
    flows: dict[str, Any],
    elements: set[str],
    parameters: set[str],
) -> list[Problem]:
    where = model.source.where
    problems: list[Problem] = []
    pid = process.id
    if process.transfer is None:
        if len(outputs) > 1 and not model.spec.measurements:
            problems.append(
                Problem(
                    where("processes", index),
                    f"transfer process '{pid}' has {len(outputs)} outputs ({', '.join(outputs)}) "
                    "but no transfer coefficients",
                    "Add transfer: {output_flow: {default: share, Element: share}} for each output, "
                    "or measure its outputs (measurements:) and use `critflow reconcile`.",
                )
            )
        return problems
    for out, shares in process.transfer.items():
        path = ("processes", index, "transfer", out)
        if out not in outputs:
            if out in flows:
                what = f"'{out}' is a flow, but it leaves '{flows[out].from_}', not '{pid}'"
            else:
                what = f"the output '{out}' of process '{pid}' is not a flow"
            problems.append(
                Problem(
                    where(path),
                    what,
                    suggest(
                        out,
                        outputs,
                        f"Outputs of '{pid}'",
                        then="Add the flow under 'flows:' or correct the name.",
                    ),
                )
            )
        for key, coefficient in shares.items():
            if key != "default" and key not in elements:
                hint = nearest(key, [*elements, "default"])
                problems.append(
                    Problem(
                        where((*path, key)),
                        f"'{key}' is neither an element of the model nor 'default'",
                        (hint + " " if hint else "") + f"Elements: {known(elements)}.",
                    )
                )
            problems += _expression_problems(coefficient, parameters, where((*path, key)), False)
        if "default" not in shares:
            missing = sorted(elements - set(shares), key=model.spec.elements.index)
            if missing:
                problems.append(
                    Problem(
                        where(path),
                        f"output '{out}' of '{pid}' has no share for {', '.join(missing)} and no default",
                        "Add default: 0.0 (or the share that applies to all unlisted elements).",
                    )
                )
    for out in outputs:
        if out not in process.transfer:
            problems.append(
                Problem(
                    where("processes", index, "transfer"),
                    f"the output flow '{out}' of '{pid}' has no transfer coefficients",
                    f"Add '{out}: {{default: 0.0}}' (or its real shares) under transfer.",
                )
            )
    return problems


def _stock_problems(
    model: Model,
    i: int,
    process: StockProcess,
    inputs: list[str],
    outputs: list[str],
    elements: set[str],
    parameters: set[str],
) -> list[Problem]:
    """A stock has one inflow and one outflow route, a target when stock-driven, known elements."""
    where = model.source.where
    pid = process.id
    problems = []
    if len(outputs) != 1:
        problems.append(
            Problem(
                where("processes", i),
                f"stock '{pid}' has "
                + (
                    "no outflow route, so its end-of-life products cannot leave"
                    if not outputs
                    else f"{len(outputs)} output flows ({', '.join(outputs)})"
                ),
                "Give the stock exactly one output flow (its end-of-life outflow) and split it "
                "downstream with a transfer process (collection → recycling / landfill).",
            )
        )
    if len(inputs) != 1:
        problems.append(
            Problem(
                where("processes", i),
                f"stock '{pid}' has {len(inputs)} input flows"
                + (f" ({', '.join(inputs)})" if inputs else ""),
                "Give the stock exactly one input flow; join several sources in a market process "
                "in front of it.",
            )
        )
    lifetimes = {("lifetime",): process.lifetime} | {
        ("lifetime_by_element", e): lt for e, lt in process.lifetime_by_element.items()
    }
    for path, lifetime in lifetimes.items():
        for name in ("mean", "std", "shape", "scale"):
            value = getattr(lifetime, name)
            leaves = value.items() if isinstance(value, dict) else [(None, value)]
            for year, leaf in leaves:
                at = ("processes", i, *path, name) + ((year,) if year is not None else ())
                problems += _expression_problems(leaf, parameters, where(*at), allow_quantity=False)
    try:
        kg_per_unit = mass_flow_factor(model.spec.unit, where("unit"))
    except CritflowError:
        kg_per_unit = None
    if kg_per_unit is not None:  # masses in the model's mass unit ('t' for 't/a')
        initial = process.initial_stock
        masses = {("stock",): process.stock}
        if initial is not None:
            masses[("initial_stock", "total")] = initial.total
            for year, mass in (initial.cohorts or {}).items():
                masses[("initial_stock", "cohorts", year)] = mass
        for at, mass in masses.items():
            for leaf in _values(mass) if mass is not None else []:
                problems += _mass_expression_problems(leaf, parameters, where("processes", i, *at))
            if mass is not None:
                unit = model.spec.unit.split("/")[0]
                problems += _magnitude_problems(
                    mass, kg_per_unit, unit, where("processes", i, *at), "kg"
                )
    driven = process.driven_by
    needs_target = driven == "stock" or not isinstance(driven, str)
    if needs_target and process.stock is None:
        problems.append(
            Problem(
                where("processes", i, "driven_by"),
                f"stock '{pid}' is driven by its stock in some years but gives no `stock`",
                "Add stock: {2020: 1.2e6, 2050: 9e6} (goods mass in use), or drive it by inflow.",
            )
        )
    for element in process.lifetime_by_element:
        if element not in elements:
            problems.append(
                Problem(
                    where("processes", i, "lifetime_by_element", element),
                    f"'{element}' is not an element of the model",
                    suggest(element, elements, "Elements"),
                )
            )
        elif process.lifetime_by_element[element].distribution != process.lifetime.distribution:
            problems.append(
                Problem(
                    where("processes", i, "lifetime_by_element", element, "distribution"),
                    f"the lifetime of {element} is {process.lifetime_by_element[element].distribution}"
                    f" but the stock's is {process.lifetime.distribution}",
                    "Use the stock's distribution with other parameters, or model the product "
                    "sub-type as its own stock.",
                )
            )
    initial = process.initial_stock
    if initial is not None:
        if initial.total is None and initial.cohorts is None:
            problems.append(
                Problem(
                    where("processes", i, "initial_stock"),
                    f"the initial stock of '{pid}' gives neither a total nor cohorts",
                    "Add total: 2.0e5 (spread over ages by the lifetime) or cohorts: {2015: …}.",
                )
            )
        late = [y for y in (initial.cohorts or {}) if y >= model.spec.time.start]
        if late:
            problems.append(
                Problem(
                    where("processes", i, "initial_stock", "cohorts", late[0]),
                    f"cohort {late[0]} is not before the model's first year {model.spec.time.start}",
                    "Initial cohorts entered before the first year; later inflows come from the model.",
                )
            )
        for element, share in (initial.composition or {}).items():
            problems += _expression_problems(
                share,
                parameters,
                where("processes", i, "initial_stock", "composition", element),
                allow_quantity=False,
            )
            if element not in elements:
                problems.append(
                    Problem(
                        where("processes", i, "initial_stock", "composition", element),
                        f"'{element}' is not an element of the model",
                        suggest(element, elements, "Elements"),
                    )
                )
    return problems
