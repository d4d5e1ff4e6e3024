"""Read a blending problem and turn it into arrays: compositions, limits, demands, prices."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from critflow import data
from critflow.blend.schema import BlendProblem
from critflow.errors import CritflowError, Problem, known, nearest, suggest
from critflow.model.load import validate_as
from critflow.model.source import SourceMap, parse_text, read_file


@dataclass(frozen=True)
class Arrays:
    """A blending problem as arrays. M materials, E elements, P products; compositions as fractions."""

    problem: BlendProblem
    elements: list[str]
    materials: list[str]
    products: list[str]
    kinds: np.ndarray  # (M,) scrap / primary / master_alloy
    mean: np.ndarray  # (M, E) mass fractions
    sd: np.ndarray  # (M, E)
    available: np.ndarray  # (M,) t, inf when unlimited
    price: np.ndarray  # (M,) per t
    co2: np.ndarray  # (M,) kg CO2-eq per kg
    low: np.ndarray  # (P, E) fraction, nan = no limit
    high: np.ndarray  # (P, E)
    demand: np.ndarray  # (P,) t
    limit_sources: dict[str, str]  # product → source of its limits


def shipped_specs() -> dict[str, dict[str, tuple[float | None, float | None]]]:
    """{alloy: {element: (min %, max %)}} from the shipped table."""
    table = data.table("alloy_specs")
    specs: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    for row in table.itertuples():
        low = None if np.isnan(row.min_percent) else float(row.min_percent)
        high = None if np.isnan(row.max_percent) else float(row.max_percent)
        specs.setdefault(str(row.alloy), {})[str(row.element)] = (low, high)
    return specs


def _sources() -> dict[str, str]:
    table = data.table("alloy_specs")
    return dict(zip(table["alloy"].astype(str), table["source"], strict=False))


def load_problem(path: str | Path) -> Arrays:
    """Read a problem file (YAML or JSON) and check it."""
    raw, source, _ = read_file(path)
    return to_arrays(_validate(raw, source), source)


def problem_from_text(text: str) -> Arrays:
    raw, source = parse_text(text, "<problem>")
    return to_arrays(_validate(raw, source), source)


def _validate(raw, source: SourceMap) -> BlendProblem:
    if not isinstance(raw, dict):
        raise CritflowError(
            source.file, "a blend problem is a mapping of keys", "Start with 'critflow_blend: 1'."
        )
    return validate_as(BlendProblem, raw, source)


def to_arrays(problem: BlendProblem, source: SourceMap) -> Arrays:
    """Check references and build the arrays; every mistake is reported with its place in the file."""
    where = source.where
    elements = problem.elements
    scale = 0.01 if problem.composition_unit == "percent" else 1.0
    problems: list[Problem] = []
    if problem.remainder not in elements:
        problems.append(
            Problem(
                where("remainder"),
                f"'{problem.remainder}' is not in elements",
                f"Elements: {known(elements)}.",
            )
        )
    e_index = {e: i for i, e in enumerate(elements)}
    n_m, n_e = len(problem.materials), len(elements)
    mean, sd = np.zeros((n_m, n_e)), np.zeros((n_m, n_e))
    for m, material in enumerate(problem.materials):
        for element, value in material.composition.items():
            if element not in e_index:
                problems.append(
                    Problem(
                        where("materials", m, "composition", element),
                        f"'{element}' is not one of the problem's elements",
                        suggest(element, elements, "Elements"),
                    )
                )
                continue
            mean[m, e_index[element]] = value["mean"] * scale
            sd[m, e_index[element]] = value["sd"] * scale
        if problem.remainder in e_index:
            r = e_index[problem.remainder]
            others = mean[m].sum() - mean[m, r]
            if problem.remainder in material.composition:
                if abs(mean[m].sum() - 1) > 1e-6:
                    problems.append(
                        Problem(
                            where("materials", m, "composition"),
                            f"the composition of '{material.id}' sums to {100 * mean[m].sum():.4g} %, not 100 %",
                            f"Leave out {problem.remainder} (the remainder) or make the content add up.",
                        )
                    )
            elif others > 1 + 1e-9:
                problems.append(
                    Problem(
                        where("materials", m, "composition"),
                        f"the alloying elements of '{material.id}' add up to {100 * others:.4g} %, more than 100 %",
                        "Check the unit (composition_unit: percent or fraction) and the values.",
                    )
                )
            else:
                mean[m, r] = 1 - others
        if (mean[m] < 0).any():
            problems.append(
                Problem(
                    where("materials", m, "composition"),
                    "a content is negative",
                    "Contents are ≥ 0.",
                )
            )
    specs = shipped_specs()
    spec_sources = _sources()
    n_p = len(problem.products)
    low, high = np.full((n_p, n_e), np.nan), np.full((n_p, n_e), np.nan)
    limit_sources = {}
    for p, product in enumerate(problem.products):
        limits: dict[str, tuple[float | None, float | None]] = {}
        if product.spec is not None:
            if product.spec not in specs:
                problems.append(
                    Problem(
                        where("products", p, "spec"),
                        f"'{product.spec}' is not a shipped alloy specification",
                        f"{nearest(product.spec, specs)} Shipped: {known(specs)}; "
                        "or give limits: {Mg: [0.45, 0.9]}.".strip(),
                    )
                )
            else:
                limits.update(specs[product.spec])
                limit_sources[product.id] = spec_sources[product.spec]
        limits.update(product.limits)
        for element, (lo, hi) in limits.items():
            if element not in e_index:
                problems.append(
                    Problem(
                        where("products", p),
                        f"the specification of '{product.id}' limits {element}, which the problem does not track",
                        f"Add {element} to elements (and its content to each material, 0 where absent).",
                    )
                )
                continue
            factor = 0.01 if (product.spec is not None and element not in product.limits) else scale
            low[p, e_index[element]] = np.nan if lo is None else lo * factor
            high[p, e_index[element]] = np.nan if hi is None else hi * factor
        limit_sources.setdefault(product.id, "limits given in the problem file")
    ids = [m.id for m in problem.materials] + [p.id for p in problem.products]
    for name in {i for i in ids if ids.count(i) > 1}:
        problems.append(
            Problem(
                where(),
                f"the id '{name}' is used more than once",
                "Give each material and product its own id.",
            )
        )
    if problems:
        raise CritflowError(problems)
    return Arrays(
        problem=problem,
        elements=list(elements),
        materials=[m.id for m in problem.materials],
        products=[p.id for p in problem.products],
        kinds=np.array([m.kind for m in problem.materials]),
        mean=mean,
        sd=sd,
        available=np.array(
            [np.inf if m.available is None else m.available for m in problem.materials]
        ),
        price=np.array([m.price for m in problem.materials]),
        co2=np.array([m.co2 for m in problem.materials]),
        low=low,
        high=high,
        demand=np.array([p.demand for p in problem.products]),
        limit_sources=limit_sources,
    )
