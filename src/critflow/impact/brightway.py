"""Brightway interoperability (optional extra: ``pip install critflow[brightway]``).

- :func:`datapackage` exports one scenario and period of an assessed model as a ``bw_processing``
  datapackage: one activity per process (producing 1 kg of what it processes, consuming its
  inventory items and emitting its direct gases), one activity per background item (emitting its
  characterised factor as the flow ``CO2-eq``), and a ``system`` activity that runs every process
  at its solved throughput. ``bw2calc.LCA({system: 1}, data_objs=[dp])`` gives critflow's total.
- :func:`write_bw2data` writes the same foreground into a database of the user's current bw2data
  project, with inventory items linked to activities they choose (ecoinvent, their own data) and
  gases linked to biosphere flows, so any of their impact methods applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from critflow.errors import CritflowError, known
from critflow.extras import needs
from critflow.impact.lca import ImpactResults

SYSTEM = "system"
CO2_EQ_FLOW = "CO2-eq"


def _require(module: str):
    with needs("brightway", "brightway"):
        return __import__(module)


@dataclass
class Export:
    """A datapackage and what its integer ids mean."""

    datapackage: Any
    demand: dict[int, float]  # {system activity id: 1}
    activities: dict[str, int]  # process / 'item: NAME' / 'system' → id
    flows: dict[str, int]  # elementary flow → id
    method: tuple[str, ...]


def _position(impacts: ImpactResults, scenario: str, period: int) -> tuple[int, int]:
    if scenario not in impacts.scenarios:
        raise CritflowError(
            "scenario", f"'{scenario}' was not assessed", f"Scenarios: {known(impacts.scenarios)}."
        )
    if period not in impacts.periods:
        raise CritflowError("period", f"{period} is not a period of the model", "")
    return impacts.scenarios.index(scenario), int(np.flatnonzero(impacts.periods == period)[0])


def datapackage(
    impacts: ImpactResults, scenario: str, period: int, path: Path | None = None
) -> Export:
    """The foreground of one scenario and period as a ``bw_processing`` datapackage (in memory,
    or written as a zip file at ``path``)."""
    bwp = _require("bw_processing")
    s, p = _position(impacts, scenario, period)
    n_u, n_k = len(impacts.processes), len(impacts.items)
    activities = {name: 1 + u for u, name in enumerate(impacts.processes)}
    activities |= {f"item: {k}": 1 + n_u + i for i, k in enumerate(impacts.items)}
    activities[SYSTEM] = 1 + n_u + n_k
    flows = {CO2_EQ_FLOW: 1_000_001} | {g: 1_000_002 + i for i, g in enumerate(impacts.gases)}

    rows, cols, values, flips = [], [], [], []

    def exchange(row: int, col: int, value: float, flip: bool) -> None:
        rows.append(row)
        cols.append(col)
        values.append(value)
        flips.append(flip)

    for a in activities.values():  # every activity produces one unit of its product
        exchange(a, a, 1.0, False)
    amounts = impacts.amounts[s, p]
    for u in range(n_u):
        for k in np.flatnonzero(amounts[u]):
            exchange(activities[f"item: {impacts.items[k]}"], 1 + u, float(amounts[u, k]), True)
        exchange(1 + u, activities[SYSTEM], float(impacts.scaling_kg[s, p, u]), True)

    b_rows, b_cols, b_values = [], [], []
    for i in range(n_k):
        b_rows.append(flows[CO2_EQ_FLOW])
        b_cols.append(1 + n_u + i)
        b_values.append(float(impacts.item_factors[s, p, i]))
    direct = impacts.direct_amounts[s, p]
    for u in range(n_u):
        for g in np.flatnonzero(direct[u]):
            b_rows.append(flows[impacts.gases[g]])
            b_cols.append(1 + u)
            b_values.append(float(direct[u, g]))

    fs = None
    if path is not None:
        from bw_processing.io_helpers import generic_zipfile_filesystem

        path = Path(path)
        fs = generic_zipfile_filesystem(dirpath=path.parent, filename=path.name, write=True)
    dp = bwp.create_datapackage(
        fs=fs, name=f"critflow-{scenario}-{period}", sum_intra_duplicates=True
    )

    def indices(r: list[int], c: list[int]) -> np.ndarray:
        out = np.zeros(len(r), dtype=bwp.INDICES_DTYPE)
        out["row"], out["col"] = r, c
        return out

    dp.add_persistent_vector(
        matrix="technosphere_matrix",
        indices_array=indices(rows, cols),
        data_array=np.array(values),
        flip_array=np.array(flips),
        name="critflow-technosphere",
    )
    dp.add_persistent_vector(
        matrix="biosphere_matrix",
        indices_array=indices(b_rows, b_cols),
        data_array=np.array(b_values),
        name="critflow-biosphere",
    )
    c_flows = [flows[CO2_EQ_FLOW], *(flows[g] for g in impacts.gases)]
    c_values = [1.0, *(float(f) for f in impacts.gas_factors)]
    method = ("critflow", impacts.method.name)
    dp.add_persistent_vector(
        matrix="characterization_matrix",
        indices_array=indices(c_flows, [0] * len(c_flows)),
        data_array=np.array(c_values),
        name="critflow-characterization",
        identifier=list(method),
    )
    if path is not None:
        dp.finalize_serialization()
    return Export(dp, {activities[SYSTEM]: 1.0}, activities, flows, method)


def bw2calc_score(impacts: ImpactResults, scenario: str, period: int) -> float:
    """Total impact of one scenario and period computed by ``bw2calc`` from the export."""
    bc = _require("bw2calc")
    export = datapackage(impacts, scenario, period)
    lca = bc.LCA(export.demand, data_objs=[export.datapackage])
    lca.lci()
    lca.lcia()
    return float(lca.score)


def write_bw2data(
    impacts: ImpactResults,
    scenario: str,
    period: int,
    database: str,
    links: dict[str, Any],
    biosphere: dict[str, Any] | None = None,
) -> Any:
    """Write the foreground into ``database`` of the current bw2data project and return its
    ``system`` node. ``links`` maps each inventory item to an activity key ``(database, code)``
    (or node); ``biosphere`` maps each directly emitted gas to a biosphere flow key."""
    bd = _require("bw2data")
    s, p = _position(impacts, scenario, period)
    biosphere = biosphere or {}
    unlinked = [k for k in impacts.items if k not in links]
    unlinked += [f"direct: {g}" for g in impacts.gases if g not in biosphere]
    if unlinked:
        raise CritflowError(
            "links",
            f"no Brightway activity or flow given for: {', '.join(unlinked)}",
            "Map every inventory item to an activity key (database, code) and every gas to a "
            "biosphere flow key.",
        )

    def key(value: Any) -> tuple[str, str]:
        return tuple(value.key) if hasattr(value, "key") else tuple(value)

    data: dict[tuple[str, str], dict[str, Any]] = {}
    amounts, direct = impacts.amounts[s, p], impacts.direct_amounts[s, p]
    for u, name in enumerate(impacts.processes):
        exchanges = [{"input": (database, name), "amount": 1.0, "type": "production"}]
        exchanges += [
            {
                "input": key(links[impacts.items[k]]),
                "amount": float(amounts[u, k]),
                "type": "technosphere",
            }
            for k in np.flatnonzero(amounts[u])
        ]
        exchanges += [
            {
                "input": key(biosphere[impacts.gases[g]]),
                "amount": float(direct[u, g]),
                "type": "biosphere",
            }
            for g in np.flatnonzero(direct[u])
        ]
        data[(database, name)] = {"name": name, "unit": "kilogram", "exchanges": exchanges}
    data[(database, SYSTEM)] = {
        "name": f"{impacts.model_name}, {scenario}, {period}",
        "unit": "year",
        "exchanges": [{"input": (database, SYSTEM), "amount": 1.0, "type": "production"}]
        + [
            {
                "input": (database, name),
                "amount": float(impacts.scaling_kg[s, p, u]),
                "type": "technosphere",
            }
            for u, name in enumerate(impacts.processes)
            if impacts.scaling_kg[s, p, u] > 0
        ],
    }
    db = bd.Database(database)
    db.write(data)
    return bd.get_node(database=database, code=SYSTEM)
