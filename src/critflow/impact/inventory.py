"""Process inventories, item factors and prices of a model, evaluated for every scenario and period.

A process's inventory is given per unit of what it processes (goods mass entering by default):
``electricity: '180 kWh/t'`` becomes 0.18 kWh per kg. Amounts are checked against the unit of the
background item (a kWh for a reagent is an error) and converted with pint. Scenarios replace or add
items per process (``inventories:``) and change the grid mix (``impact: {electricity: …}``): these
are the decarbonisation levers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from critflow.engine.values import interpolate
from critflow.errors import CritflowError, Problem, known, nearest, suggest
from critflow.impact.background import AGGREGATED_FLOW, ELECTRICITY, Background, Method
from critflow.model.core import Model
from critflow.model.schema import DIRECT_EMISSIONS, ImpactSettings
from critflow.units import convert, looks_like_quantity, quantity, registry

CO2_EQ = "kg CO2-eq"


@dataclass(frozen=True)
class Inventories:
    """Amounts per kg of each process's basis. Axes: S scenarios, P periods, U processes,
    K items, G gases."""

    items: tuple[str, ...]
    units: tuple[str, ...]  # reference unit of each item (kWh, kg, GJ, t*km)
    amounts: np.ndarray  # (S, P, U, K) item units per kg of basis
    gases: tuple[str, ...]
    direct: np.ndarray  # (S, P, U, G) kg of gas per kg of basis
    basis: tuple[str | int, ...]  # per process: 'input', 'output' or a flow index


def series_of(
    value: Any, periods: np.ndarray, convert, where: str
) -> np.ndarray:  # convert: text -> float
    """A scalar or {year: value} evaluated at every period, (P,)."""
    if isinstance(value, dict):
        points = {int(year): convert(v, f"{where}.{year}") for year, v in value.items()}
        return interpolate(points, periods)
    return np.full(periods.shape, convert(value, where))


def settings(model: Model) -> ImpactSettings:
    return model.spec.impact or ImpactSettings()


class InventoryEvaluator:
    """Evaluates inventories and item factors of one model against one background."""

    def __init__(self, model: Model, background: Background, chosen: Method) -> None:
        self.model = model
        self.background = background
        self.method = chosen
        self.settings = settings(model)
        self.problems: list[Problem] = []
        self.grid_rows_used: set[int] = set()
        self.user_units: dict[str, str] = {}
        for item, value in self.settings.factors.items():
            self.user_units[item] = self._factor_unit(item, value, ("impact", "factors", item))

    def _factor_unit(self, item: str, value: Any, path: tuple) -> str:
        """Reference unit of a user factor '4.2 kg/kg' (kg CO2-eq per kg → 'kg')."""
        if item in self.background.items:
            return self.background.items[item].unit
        sample = value if not isinstance(value, dict) else next(iter(value.values()))
        q = quantity(sample, self.model.where(*path), "a factor in kg CO2-eq per unit")
        return f"{registry().kg / q.units:~}".replace(" ", "")

    # -------------------------------------------------------------- items and amounts
    def item_unit(self, item: str, where: str) -> str | None:
        if item in self.user_units:
            return self.user_units[item]
        if item in self.background.items:
            return self.background.items[item].unit
        names = list(self.background.items) + list(self.user_units)
        self.problems.append(
            Problem(
                where,
                f"'{item}' is not an inventory item of the background '{self.background.name}'",
                f"{nearest(item, names)} Items: {known(names, 40)}; or give its factor under "
                "impact.factors {" + item + ": '2.0 kg/kg'}.",
            )
        )
        return None

    def evaluate(self, scenarios: tuple[str, ...], periods: np.ndarray) -> Inventories:
        spec = self.model.spec
        items: dict[str, str] = {}
        gases: list[str] = []
        allowed_gases = [f for f in self.method.factors if f != AGGREGATED_FLOW]
        layers = []
        for s_name in scenarios:
            overrides = spec.scenarios[s_name].inventories
            for name in overrides:
                if name not in {p.id for p in spec.processes}:
                    self.problems.append(
                        Problem(
                            self.model.where("scenarios", s_name, "inventories", name),
                            f"the model has no process '{name}'",
                            nearest(name, [p.id for p in spec.processes]),
                        )
                    )
            layer = []
            for u, process in enumerate(spec.processes):
                merged: dict[str, tuple[tuple, Any]] = {}
                for item, value in (process.inventory or {}).items():
                    merged[item] = (("processes", u, "inventory", item), value)
                for item, value in overrides.get(process.id, {}).items():
                    if item == DIRECT_EMISSIONS and DIRECT_EMISSIONS in merged:
                        base = dict(merged[item][1])
                        base.update(value)
                        value = base
                    path = ("scenarios", s_name, "inventories", process.id, item)
                    merged[item] = (path, value)
                layer.append(merged)
                for item, (path, value) in merged.items():
                    where = self.model.where(*path)
                    if item == DIRECT_EMISSIONS:
                        for gas in value:
                            if gas not in allowed_gases:
                                self.problems.append(
                                    Problem(
                                        f"{where}.{gas}",
                                        f"'{gas}' is not a gas the method {self.method.name} "
                                        "characterises",
                                        suggest(gas, allowed_gases, "Gases"),
                                    )
                                )
                            elif gas not in gases:
                                gases.append(gas)
                    elif item not in items:
                        unit = self.item_unit(item, where)
                        if unit is not None:
                            items[item] = unit
            layers.append(layer)
        self._raise()
        names = list(items)
        n_s, n_p, n_u = len(scenarios), len(periods), len(spec.processes)
        amounts = np.zeros((n_s, n_p, n_u, len(names)))
        direct = np.zeros((n_s, n_p, n_u, len(gases)))
        for s, layer in enumerate(layers):
            for u, merged in enumerate(layer):
                for item, (path, value) in merged.items():
                    where = self.model.where(*path)
                    if item == DIRECT_EMISSIONS:
                        for gas, amount in value.items():
                            if gas in gases:
                                direct[s, :, u, gases.index(gas)] = self._series(
                                    amount, periods, "kg/kg", where + f".{gas}", f"{gas} emitted"
                                )
                    elif item in items:
                        amounts[s, :, u, names.index(item)] = self._series(
                            value, periods, f"{items[item]}/kg", where, f"'{item}'"
                        )
        self._raise()
        return Inventories(
            tuple(names),
            tuple(items[n] for n in names),
            amounts,
            tuple(gases),
            direct,
            tuple(self._basis(u) for u in range(n_u)),
        )

    def _series(self, value: Any, periods: np.ndarray, unit: str, where: str, what: str):
        example = {"kWh/kg": "'180 kWh/t'", "kg/kg": "'0.9 t/t'", "GJ/kg": "'0.4 GJ/t'"}.get(
            unit, f"'1 {unit.split('/')[0]}/t'"
        )
        try:
            return series_of(value, periods, lambda v, w: convert(v, unit, w, what, example), where)
        except CritflowError as exc:
            self.problems.extend(exc.problems)
            return np.zeros(periods.shape)

    def _basis(self, u: int) -> str | int:
        spec = self.model.spec
        process = spec.processes[u]
        basis = process.inventory_basis
        if basis is None:
            return "output" if process.kind == "source" else "input"
        if basis in ("input", "output"):
            return basis
        flows = {f.id: i for i, f in enumerate(spec.flows)}
        linked = [f.id for f in spec.flows if process.id in (f.from_, f.to)]
        if basis not in flows or basis not in linked:
            raise CritflowError(
                self.model.where("processes", u, "inventory_basis"),
                f"'{basis}' is neither 'input', 'output' nor a flow of process '{process.id}'",
                suggest(basis, linked, "Flows of this process"),
            )
        return flows[basis]

    def _raise(self) -> None:
        if self.problems:
            raise CritflowError(list(dict.fromkeys(self.problems)))

    # -------------------------------------------------------------- factors
    def item_factors(
        self,
        inventories: Inventories,
        scenarios: tuple[str, ...],
        periods: np.ndarray,
        row_values: np.ndarray | None = None,
    ) -> np.ndarray:
        """kg CO2-eq per unit of each item, (S, P, K); with ``row_values`` (n, rows) from
        Monte Carlo draws, (n, S, P, K)."""
        bg = self.background
        rows = bg.rows
        single = row_values is None
        values = bg.row_factors(self.method)[None, :] if single else self.characterise(row_values)
        n = values.shape[0]
        n_s, n_p, n_k = len(scenarios), len(periods), len(inventories.items)
        factors = np.zeros((n, n_s, n_p, n_k))
        item_of_row = rows["item"].to_numpy(str)
        for k, item in enumerate(inventories.items):
            if item == ELECTRICITY:
                continue
            user = self.settings.factors.get(item)
            if user is None:
                factors[..., k] = values[:, item_of_row == item].sum(axis=1)[:, None, None]
        for s, name in enumerate(scenarios):
            override = self.model.spec.scenarios[name].impact
            for k, item in enumerate(inventories.items):
                value, path = self._user_factor(item, override, name)
                if value is not None:
                    factors[:, s, :, k] = self._series(
                        value,
                        periods,
                        f"kg/({inventories.units[k]})",
                        self.model.where(*path),
                        f"the factor of '{item}' (kg CO2-eq per {inventories.units[k]})",
                    )[None, :]
                elif item == ELECTRICITY:
                    factors[:, s, :, k] = self._grid(override, name, periods, values)
        self._raise()
        return factors[0] if single else factors

    def _user_factor(self, item: str, override, scenario: str) -> tuple[Any, tuple]:
        if override is not None and item in override.factors:
            return override.factors[item], ("scenarios", scenario, "impact", "factors", item)
        if item in self.settings.factors:
            return self.settings.factors[item], ("impact", "factors", item)
        return None, ()

    def _grid(self, override, scenario: str, periods: np.ndarray, values: np.ndarray):
        """Grid electricity factor (n, P) for one scenario."""
        if override is not None and override.electricity is not None:
            value = override.electricity
            path: tuple = ("scenarios", scenario, "impact", "electricity")
        else:
            value, path = self.settings.electricity, ("impact", "electricity")
        where = self.model.where(*path)
        if isinstance(value, str) and not looks_like_quantity(value):
            row = self.background.grid_row(value, where)
            self.grid_rows_used.add(row)
            return np.broadcast_to(values[:, row][:, None], (values.shape[0], periods.size))
        return self._series(
            value, periods, "kg/kWh", where, "the grid intensity (kg CO2-eq per kWh)"
        )[None, :]

    def characterise(self, row_amounts: np.ndarray) -> np.ndarray:
        c = self.background.rows["flow"].map(self.method.factors).fillna(0.0).to_numpy(float)
        return row_amounts * c[None, :]

    def unverified(self, inventories: Inventories) -> list[str]:
        """Items whose shipped factor is flagged 'verify' (and not replaced by the user)."""
        rows = self.background.rows
        flagged = rows["verify"] == "verify"
        names = set(rows.loc[flagged & (rows["item"] != ELECTRICITY), "item"])
        if any(flagged.iloc[r] for r in self.grid_rows_used):
            names.add(ELECTRICITY)
        return sorted((names & set(inventories.items)) - set(self.settings.factors))

    def gas_factors(self, inventories: Inventories) -> np.ndarray:
        """kg CO2-eq per kg of each directly emitted gas, (G,)."""
        return np.array([self.method.factors[g] for g in inventories.gases], dtype=float)
