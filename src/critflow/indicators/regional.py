"""System-level CRMA indicators of a model with a region dimension.

Regulation (EU) 2024/1252 Art. 5(1) compares Union capacity with annual Union consumption of each
strategic raw material: extraction (a), processing (b) and recycling (c) output as shares of
consumption (benchmarks 10, 40, 25 %), and no more than 65 % of consumption from a single third
country at any relevant stage of processing. In a regional model these follow from its labels:

* the **Union** is the group of the region dimension named by the model's ``scope.region`` (``EU``
  by default; ``groups: {EU: [FL, BE-other, EU-other]}``), or that one coordinate (``FL``);
* **consumption** is apparent consumption: the element mass entering the processes marked
  ``consumption: true`` in the Union's coordinates from anywhere but another such process (material
  passed from one Union market to another is consumed once), less what those processes send to
  processes at coordinates outside the Union (re-exports are not consumed);
* **extraction, processing, recycling output** is the element mass of the outputs that carry a
  ``stage`` (material at a stage of the chain: not slag, tailings or losses) of the processes whose
  ``activity`` says so, in the Union, leaving out what goes on into another Union process of the
  same activity (a chain refinery → cathode maker is counted once, at its end). A market's
  balancing input split by ``origin_shares`` whose source declares an ``activity`` (the supply of
  refined material, EU refiners among its origins) is that activity's output at each origin: the
  part from an origin inside the scope counts as the scope's output;
* **imports from a third country at a stage** are the traded flows of that ``stage`` whose origin
  lies outside the EU-27 and whose destination inside the scope (a balancing import split by
  ``origin_shares`` is traded too). The consumption processes of the EU-27 (and of the scope) mix
  their inputs: what one re-exports or passes on to another carries its inputs' origins in
  proportion, so an import into a market counts for its supplier where it is used — by the retained
  part of a market that re-exports, in the market that receives it from another Union market (a
  loop of markets included) — and the Union's numerators are the sums of its regions'.
  Imports whose origin the model does not say, and coordinates the dimension lists as
  ``aggregates`` (RoW: several countries), are counted for no single country. A *third country* is
  a country outside the EU-27 whatever the scope: for ``scope: {region: FL}`` the system is
  Flanders, and supply from the rest of Belgium or the rest of the Union is intra-EU, never a
  third country's. Membership is the model's group named EU (EU27, EU-27, EU27_2020) together with
  the coordinates that are, or are part of, a Member State by ISO 3166 code (``BE``, ``BE-other``)
  or of the Union (``EU-other``): :func:`critflow.model.dimensions.eu_coordinates`; a coordinate
  named as another grouping (``EU-28``, ``EUR``, ``EA20``:
  :func:`critflow.model.dimensions.other_grouping`) is neither intra-EU nor a single third country.
  The end of life of a stock in use marked ``consumption: true`` (scrap exported from use) is no
  re-export: it was consumed when it entered use.

Each share is per element; an indicator asked without an element is the worst over the strategic
raw materials the model carries (the lowest share, the largest dependency): the benchmark holds for
*each* SRM. A model without a region dimension gets "not available, because …".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critflow.engine.results import FlowResults
from critflow.indicators.flows import (
    IndicatorNotAvailableError,
    at_top,
    element_indices,
    group_elements,
    ratio,
    union_coordinates,
)
from critflow.model.core import Model
from critflow.model.dimensions import eu_coordinates, other_grouping

ACTIVITIES = ("extraction", "processing", "recycling")
SHARE_INDICATORS = {
    "eu_extraction_share": "extraction",
    "eu_processing_share": "processing",
    "eu_recycling_share": "recycling",
}
DEPENDENCY_INDICATOR = "largest_third_country_share"
MAX_DENSE_MIXING = 20_000_000
"""Most numbers in the dense mixing systems of a regional model's markets (160 MB); a larger
system is settled by iteration."""


@dataclass(frozen=True)
class RegionalSystem:
    """Masks over a regional model's (expanded) flows, each (F,) bool."""

    dimension: str
    union_name: str
    union: tuple[str, ...]
    consumer: np.ndarray  # (F,) the Union consumption process a flow enters, or -1
    leaving: np.ndarray  # (F,) the Union consumption process it leaves, or -1
    exports: np.ndarray  # flows from them to processes outside the Union
    production: dict[str, np.ndarray]
    imports: dict[tuple[str, str], np.ndarray]  # (stage, third country) → traded flows into it
    aggregates: tuple[str, ...] = ()  # coordinates standing for several countries (RoW)
    # activities whose processes (anywhere, or a split supply's source) have staged outputs: one
    # the model carries only outside the Union is a 0 % share there, not an unavailable one
    modelled: frozenset[str] = frozenset()
    # the consumption processes of the EU-27 and the scope (a "pool" that mixes: what one passes
    # on to another, or out of the scope, carries its inputs' origins in proportion)
    pool_to: np.ndarray | None = None  # (F,) the pool process a flow enters, or -1
    pool_from: np.ndarray | None = None  # (F,) the pool process a flow leaves, or -1
    pool_scope: np.ndarray | None = None  # (Q,) pool processes in the scope
    pool_imports: dict[tuple[str, str], np.ndarray] | None = None  # third-country flows into them
    not_used: np.ndarray | None = None  # (F,) flows out of a pool process not used in the scope

    @property
    def consumption(self) -> np.ndarray:
        """Flows into the Union's consumption processes from elsewhere (not from another)."""
        return (self.consumer >= 0) & (self.leaving < 0)

    def mixed_imports(self, mass: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
        """(…,) per (stage, third country): the third-country material the scope's consumption
        processes use, its origin followed through the pool. Each pool process mixes its inputs:
        share s_q = (its third-country imports + Σ inflow from pool process r × s_r) / its input;
        what it uses is its input less what it passes to another pool process of the scope and
        what leaves the scope (so the scope's regions add up to the scope)."""
        n = len(self.pool_scope)
        axis = np.moveaxis  # flows last → first, for add.at

        def per_process(flows: np.ndarray, index: np.ndarray) -> np.ndarray:
            total = np.zeros((n, *mass.shape[:-1]))
            k = np.flatnonzero(flows)
            np.add.at(total, index[k], axis(mass[..., k], -1, 0))
            return total

        into = per_process(self.pool_to >= 0, self.pool_to)
        # a stock in use that sends more end-of-life material on than it takes in (a shrinking
        # year) uses none: never a negative use, which would give negative imports
        used = np.maximum(into - per_process(self.not_used, self.pool_from), 0.0)
        links = np.flatnonzero((self.pool_to >= 0) & (self.pool_from >= 0))
        src, dst = self.pool_from[links], self.pool_to[links]
        linked = axis(mass[..., links], -1, 0)  # (L, …)
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse = np.where(into > 0, 1.0 / np.where(into > 0, into, 1.0), 0.0)
        keys = list(self.pool_imports or {})
        if not keys:
            return {}
        direct = np.stack([per_process(self.pool_imports[key], self.pool_to) for key in keys])
        share = direct * inverse  # (K, Q, …)
        solved = _mixing_solve(share, inverse, src, dst, linked) if len(links) else share
        if solved is not None:
            share = solved
        else:  # a closed loop (mass with no way in): its share stays what its imports give
            # chains settle in as many steps as they are long, loops geometrically
            for _ in range(n + 200):
                passed = np.zeros_like(direct)
                np.add.at(
                    np.moveaxis(passed, 1, 0), dst, linked[:, None] * share[:, src].swapaxes(0, 1)
                )
                new = (direct + passed) * inverse
                done = np.allclose(new, share, rtol=1e-13, atol=0.0)
                share = new
                if done:
                    break
        totals = (share * used)[:, self.pool_scope].sum(axis=1)
        return dict(zip(keys, totals, strict=True))


def _mixing_solve(
    start: np.ndarray, inverse: np.ndarray, src: np.ndarray, dst: np.ndarray, linked: np.ndarray
) -> np.ndarray | None:
    """The pool's origin shares s (K, Q, …) at once: s_q = start_q + inverse_q Σ_(l→q) m_l s_src(l),
    i.e. (I − diag(inverse) A) s = start with A[q, r] the mass passed from r to q, one (Q × Q)
    system per scenario, period and element (batched). None where a system is singular (a loop
    whose mass has no way in), which the caller settles by iteration instead."""
    n = inverse.shape[0]
    batch = inverse.shape[1:]
    if n * n * max(int(np.prod(batch)), 1) > MAX_DENSE_MIXING:
        return None  # thousands of pool processes: settled by iteration
    passed = np.zeros((n, n, *batch))  # A[q, r, …]
    np.add.at(passed, (dst, src), linked)
    system = np.eye(n).reshape(n, n, *([1] * len(batch))) - inverse[:, None] * passed
    matrices = np.moveaxis(system.reshape(n, n, -1), -1, 0)  # (B, Q, Q)
    rhs = np.moveaxis(start.reshape(start.shape[0], n, -1), (0, 1, 2), (2, 1, 0))  # (B, Q, K)
    try:
        solved = np.linalg.solve(matrices, rhs)
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(solved).all():
        return None
    return np.moveaxis(solved, (0, 1, 2), (2, 1, 0)).reshape(start.shape)


def regional_system(model: Model) -> RegionalSystem:
    """What a regional model's Union consumes, produces and imports; raises
    :class:`IndicatorNotAvailableError` saying why for a model that is not regional."""
    spec = model.spec
    labels = spec._expansion
    dim, union_name, union = union_coordinates(model)
    inside = set(union)
    processes, flows = labels.processes, labels.flows
    proc_index = {p.id: u for u, p in enumerate(spec.processes)}
    consumer_of = {}  # process index → number of the Union consumption process
    for u, process in enumerate(spec.processes):
        if process.consumption and processes[u].coords.get(dim) in inside:
            consumer_of[u] = len(consumer_of)
    ends = [(proc_index[f.from_], proc_index[f.to]) for f in spec.flows]
    consumer = np.array([consumer_of.get(b, -1) for _, b in ends], dtype=np.int64)
    leaving = np.array([consumer_of.get(a, -1) for a, _ in ends], dtype=np.int64)

    def outside(u: int) -> bool:
        coordinate = processes[u].coords.get(dim)
        return coordinate is not None and coordinate not in inside

    # what a consumption process sends out of the scope is a re-export — except the end of life
    # of a stock in use (scrap exported from use was consumed when it entered use), unless it
    # goes on into another consumption process
    used_up = {u for u in consumer_of if spec.processes[u].kind == "stock"}

    def sent_out(a: int, b: int) -> bool:
        return outside(b) and (a not in used_up or spec.processes[b].consumption)

    exports = np.array([leaving[k] >= 0 and sent_out(a, b) for k, (a, b) in enumerate(ends)], bool)
    if not (consumer >= 0).any():
        raise IndicatorNotAvailableError(
            f"no process marked consumption: true lies in {union_name} ({', '.join(union)}): "
            "the Union's consumption is the input of those processes"
        )
    # where a flow's material was made: its from process, or for one origin's part of a balancing
    # input split by origin shares (it leaves a generated split process) the split's source at
    # that origin — EU refiners among the origins of a market's supply of refined material
    maker = [(spec.processes[a].activity, processes[a].coords.get(dim)) for a, _ in ends]
    for k, (a, _) in enumerate(ends):
        label = flows[k]
        if processes[a].hidden and dim in label.traded and label.from_base in proc_index:
            source = spec.processes[proc_index[label.from_base]]
            maker[k] = (source.activity, label.origin.get(dim))
    modelled = frozenset(
        maker[k][0] for k, f in enumerate(spec.flows) if f.stage is not None and maker[k][0]
    )
    production = {}
    for activity in ACTIVITIES:
        production[activity] = np.array(
            [
                f.stage is not None
                and maker[k][0] == activity
                and maker[k][1] in inside
                # material going on to the next Union stage of the same activity is counted there
                and not (
                    spec.processes[b].activity == activity
                    and processes[b].coords.get(dim) in inside
                )
                for k, (f, (_, b)) in enumerate(zip(spec.flows, ends, strict=True))
            ],
            dtype=bool,
        )
    # intra-EU supply is never a third country's, whatever the scope (CRMA Art. 5(1)(b))
    eu = eu_coordinates(labels.dimensions[dim], labels.groups.get(dim, {}))
    union_or_scope = eu | inside
    pool_of = {}  # process index → number of the EU (or scope) consumption process
    for u, process in enumerate(spec.processes):
        if process.consumption and processes[u].coords.get(dim) in union_or_scope:
            pool_of[u] = len(pool_of)
    pool_to = np.array([pool_of.get(b, -1) for _, b in ends], dtype=np.int64)
    pool_from = np.array([pool_of.get(a, -1) for a, _ in ends], dtype=np.int64)
    used_up |= {u for u in pool_of if spec.processes[u].kind == "stock"}
    pool_scope = np.zeros(len(pool_of), bool)
    for u, q in pool_of.items():
        pool_scope[q] = processes[u].coords.get(dim) in inside
    # what a pool process does not use in the scope: passed to a pool process of the scope
    # (used there) or sent out of the scope
    not_used = np.array(
        [
            pool_from[k] >= 0 and (sent_out(a, b) or (pool_to[k] >= 0 and pool_scope[pool_to[k]]))
            for k, (a, b) in enumerate(ends)
        ],
        dtype=bool,
    )
    imports: dict[tuple[str, str], np.ndarray] = {}
    pool_imports: dict[tuple[str, str], np.ndarray] = {}
    for k, (flow, label) in enumerate(zip(spec.flows, flows, strict=True)):
        if flow.stage is None or dim not in label.traded or label.hidden:
            continue
        origin, destination = label.origin.get(dim), label.coords.get(dim)
        if origin in inside or origin in eu:
            continue
        key = (flow.stage, str(origin))
        if pool_to[k] >= 0:  # into a consumption process: followed through the pool
            pool_imports.setdefault(key, np.zeros(len(spec.flows), bool))[k] = True
            imports.setdefault(key, np.zeros(len(spec.flows), bool))
        elif destination in inside:
            imports.setdefault(key, np.zeros(len(spec.flows), bool))[k] = True
    # RoW and the like, and coordinates named as a grouping that is not the EU-27 (EU-28, EUR):
    # several countries, none of them a single third country
    from critflow.model.trade_tables import Countries

    countries = Countries.load()
    aggregates = tuple(labels.aggregates.get(dim, ())) + tuple(
        c
        for c in labels.dimensions[dim]
        if c not in labels.aggregates.get(dim, ()) and c not in eu and other_grouping(c, countries)
    )
    return RegionalSystem(
        dim,
        union_name,
        tuple(union),
        consumer,
        leaving,
        exports,
        production,
        imports,
        aggregates,
        modelled,
        pool_to,
        pool_from,
        pool_scope,
        pool_imports,
        not_used,
    )


def _system(model: Model, results: FlowResults, cache: dict | None) -> RegionalSystem:
    if cache is None:
        return regional_system(model)
    if "regional" not in cache:
        try:
            cache["regional"] = regional_system(model)
        except IndicatorNotAvailableError as exc:
            cache["regional"] = exc
    found = cache["regional"]
    if isinstance(found, IndicatorNotAvailableError):
        raise found
    return found


def stage_masses(
    model: Model, results: FlowResults, cache: dict | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[tuple[str, str], np.ndarray]]:
    """Union consumption, output per activity and imports per (stage, third country), each
    element mass in kg/year (S, P, E)."""
    system = _system(model, results, cache)
    mass = results.mass_kg
    consumption = mass[..., system.consumption].sum(axis=-1) - mass[..., system.exports].sum(
        axis=-1
    )
    production = {a: mass[..., m].sum(axis=-1) for a, m in system.production.items()}
    mixed = system.mixed_imports(mass) if system.pool_imports else {}
    imports = {}
    for key, m in system.imports.items():
        imports[key] = mass[..., m].sum(axis=-1)
        if key in mixed:
            imports[key] = imports[key] + mixed[key]
    return consumption, production, imports


def _elements(model: Model, element: str | None, what: str) -> list[int]:
    if element is not None:
        return element_indices(model, element, what)
    chosen = group_elements(model, "SRM")
    if not chosen:
        raise IndicatorNotAvailableError(
            "the model carries none of the strategic raw materials (CRMA Annex I); name an element"
        )
    return chosen


def activity_share(
    model: Model,
    results: FlowResults,
    activity: str,
    element: str | None,
    cache: dict | None = None,
) -> np.ndarray:
    """Union output of ``activity`` / Union consumption, (S, P); the lowest over the chosen
    elements (each SRM when ``element`` is None)."""
    consumption, production, _ = stage_masses(model, results, cache)
    if activity not in _system(model, results, cache).modelled:
        # an activity the model carries only outside the Union is 0 % of its consumption (a
        # fail of the benchmark), never "not applicable"
        raise IndicatorNotAvailableError(
            f"no process with activity: {activity} has staged outputs in the model: the "
            f"Union's {activity} is not modelled (mark the processes that do it, in the Union "
            f"or abroad, with activity: {activity})"
        )
    chosen = _elements(model, element, f"eu_{activity}_share")
    shares = ratio(production[activity][..., chosen], consumption[..., chosen])
    return _worst(shares, np.nanmin)


def third_country_shares(
    model: Model, results: FlowResults, element: str | None, cache: dict | None = None
) -> dict[tuple[str, str], np.ndarray]:
    """Imports from each third country at each stage / Union consumption, (S, P, E') for the
    chosen elements."""
    consumption, _, imports = stage_masses(model, results, cache)
    chosen = _elements(model, element, DEPENDENCY_INDICATOR)
    return {key: ratio(m[..., chosen], consumption[..., chosen]) for key, m in imports.items()}


def largest_third_country_share(
    model: Model, results: FlowResults, element: str | None, cache: dict | None = None
) -> np.ndarray:
    """The largest share of Union consumption from one third country at one stage, (S, P); the
    largest over the chosen elements."""
    aggregates = _system(model, results, cache).aggregates
    shares = {
        key: value
        for key, value in third_country_shares(model, results, element, cache).items()
        if key[1] not in aggregates
    }
    consumption, _, _ = stage_masses(model, results, cache)
    chosen = _elements(model, element, DEPENDENCY_INDICATOR)
    if not shares:
        zero = np.where(consumption[..., chosen] > 0, 0.0, np.nan)
        return _worst(zero, np.nanmax)
    stacked = np.stack(list(shares.values()))  # (K, S, P, E')
    largest = _nan_pick(np.nanmax, stacked, 0)
    return _worst(largest, np.nanmax)


def _worst(values: np.ndarray, pick) -> np.ndarray:
    """(S, P, E') → (S, P) by ``pick`` over elements; NaN where every element is undefined."""
    return _nan_pick(pick, values, -1)


def _nan_pick(pick, values: np.ndarray, axis: int) -> np.ndarray:
    """``pick`` (np.nanmin or np.nanmax) over ``axis``, NaN where all are NaN, without numpy's
    'All-NaN slice' warning: an undefined share stays undefined."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return pick(values, axis=axis)


def system_table(model: Model, results: FlowResults):
    """Tidy table of the Union's balance per scenario, period and element (model unit):
    consumption, output per activity and its share, and the largest third-country share with its
    country and stage (every country and stage at that share, comma-separated, when several tie;
    none when no third country supplies)."""
    import pandas as pd

    consumption, production, imports = stage_masses(model, results)
    system = regional_system(model)
    k = results.inputs.kg_per_unit
    rows = []
    elements = results.inputs.topology.elements
    for s, scenario in enumerate(results.inputs.scenarios):
        for p, period in enumerate(results.inputs.periods):
            for e, element in enumerate(elements):
                c = consumption[s, p, e]
                row = {
                    "scenario": scenario,
                    "period": int(period),
                    "union": system.union_name,
                    "element": element,
                    "consumption": c / k,
                }
                for activity in ACTIVITIES:
                    row[activity] = production[activity][s, p, e] / k
                    row[f"{activity}_share"] = production[activity][s, p, e] / c if c > 0 else None
                candidates = {
                    key: m[s, p, e] for key, m in imports.items() if key[1] not in system.aggregates
                }
                tied, top = at_top(candidates)
                if c > 0:  # every country (and stage) at the largest share is named
                    tied = tied if top > 0 else []
                    row |= {
                        "largest_third_country_share": top / c,
                        "country": ", ".join(sorted({k[1] for k in tied})) or None,
                        "stage": ", ".join(sorted({k[0] for k in tied})) or None,
                    }
                else:
                    row |= {"largest_third_country_share": None, "country": None, "stage": None}
                row["unit"] = results.unit
                rows.append(row)
    return pd.DataFrame(rows)
