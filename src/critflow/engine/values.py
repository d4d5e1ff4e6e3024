"""A model's numbers over periods and samples: interpolated time series, parameters, expressions.

The small public interface between :mod:`critflow.engine.compile` and
:mod:`critflow.engine.stock_inputs` (and what :mod:`critflow.impact.inventory` interpolates with).
A number is evaluated with a leading sample axis N (1 without Monte Carlo).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from critflow.errors import CritflowError
from critflow.model.core import Model
from critflow.model.expressions import parse_expression
from critflow.model.uncertainty import Draws, Uncertain
from critflow.units import looks_like_quantity, parse_mass_flow, shown


def interpolate(series: dict[int, float], periods: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``{year: value}`` at ``periods``; constant outside the given years."""
    years = np.fromiter(series.keys(), dtype=float)
    values = np.fromiter(series.values(), dtype=float)
    return np.interp(periods.astype(float), years, values)


def interpolation_weights(years: list[int], periods: np.ndarray) -> np.ndarray:
    """W (Y, P) with value(p) = Σ_y v_y W[y, p]: linear between the years, constant outside."""
    eye = np.eye(len(years))
    return np.stack([np.interp(periods.astype(float), years, row) for row in eye])


class ParameterValues(dict):
    """Parameter values (N or 1, P) over the model's periods, by name; :meth:`at_year` gives them at
    any other year (a time series point written before the model's start, say)."""

    def __init__(self, merged: dict[str, Any], periods: np.ndarray, draws: Draws | None) -> None:
        super().__init__()
        self._merged, self._draws = merged, draws
        for name, v in merged.items():
            self[name] = self._value(v, periods)

    def _value(self, v: Any, periods: np.ndarray) -> np.ndarray:
        if isinstance(v, dict):
            return interpolate(v, periods)[None, :]
        if isinstance(v, Uncertain):
            draws = self._draws
            column = draws.of(v)[:, None] if draws is not None else np.array([[v.central]])
            return np.broadcast_to(column, (column.shape[0], periods.size))
        return np.full((1, periods.size), float(v))

    def at_year(self, year: float) -> dict[str, np.ndarray]:
        """Every parameter at ``year``, (N or 1, 1): a time series interpolated at that year."""
        at = np.array([float(year)])
        return {name: self._value(v, at) for name, v in self._merged.items()}


def parameter_values(
    model: Model, scenario: str, periods: np.ndarray, draws: Draws | None = None
) -> ParameterValues:
    """Parameter values of ``scenario`` (N or 1, P): time series interpolated, distributions drawn."""
    merged = {**model.spec.parameters, **model.spec.scenarios[scenario].parameters}
    return ParameterValues(merged, periods, draws)


def _at_year(env: dict[str, np.ndarray], year: float, periods: np.ndarray) -> dict[str, np.ndarray]:
    """Values at ``year`` (N or 1, 1) of (N or 1, P) arrays over ``periods``. Parameters are taken
    at the year itself (also before the first or after the last period); other names (an
    environment built otherwise) are interpolated between periods, held constant outside them."""
    at = interpolation_weights(list(periods.astype(float)), np.array([float(year)]))[:, 0]
    values = {name: (arr @ at)[:, None] for name, arr in env.items()}
    if isinstance(env, ParameterValues) and not periods[0] <= year <= periods[-1]:
        values.update(env.at_year(year))
    return values


def _number(
    value: Any,
    env: dict[str, np.ndarray],
    kg_per_unit: float | None,
    where: str,
    draws: Draws | None = None,
) -> Any:
    """A number, a distribution, a quantity string (when kg_per_unit is given) or an expression,
    evaluated: a float or an array broadcastable to (N, P)."""
    if isinstance(value, Uncertain):
        base = draws.of(value)[:, None] if draws is not None else value.central
        return base * (kg_per_unit or 1.0)
    if isinstance(value, float | int):
        return float(value) * (kg_per_unit or 1.0)
    if kg_per_unit is not None and looks_like_quantity(value):
        return parse_mass_flow(value, where)
    try:
        return parse_expression(value).evaluate(env) * (kg_per_unit or 1.0)
    except (ZeroDivisionError, FloatingPointError, OverflowError) as exc:
        raise CritflowError(
            where,
            f"'{shown(str(value), 80)}' cannot be evaluated ({exc})",
            "Check the parameters it uses.",
        ) from None


def series_n(
    value: Any,
    env: dict[str, np.ndarray],
    periods: np.ndarray,
    kg_per_unit: float | None,
    where: str,
    draws: Draws | None = None,
) -> np.ndarray:
    """A value or time series evaluated over all samples and periods, shape (N or 1, P)."""
    if type(value) is float or type(value) is int:  # the common case, without broadcasting
        return np.full((1, periods.size), float(value) * (kg_per_unit or 1.0))
    if isinstance(value, dict):
        years = list(value)
        numbers = list(value.values())
        if all(type(v) is float for v in numbers):  # plain numbers: one interpolation, (1, P)
            scaled = np.array(numbers) * (kg_per_unit or 1.0)
            return np.interp(periods, np.array(years, dtype=float), scaled)[None, :]
        weights = interpolation_weights(years, periods)
        points = [
            np.asarray(
                _number(v, _at_year(env, y, periods), kg_per_unit, where, draws), dtype=float
            )
            for y, v in value.items()
        ]
        return sum(
            np.reshape(pt, (-1, 1)) * w[None, :] for pt, w in zip(points, weights, strict=True)
        )
    result = np.asarray(_number(value, env, kg_per_unit, where, draws), dtype=float)
    return np.broadcast_to(result, np.broadcast_shapes(result.shape, (1, periods.size))).copy()


def series(
    value: Any,
    env: dict[str, np.ndarray],
    periods: np.ndarray,
    kg_per_unit: float | None,
    where: str,
) -> np.ndarray:
    """A value or time series evaluated over all periods without sampling, shape (P,)."""
    return series_n(value, env, periods, kg_per_unit, where)[0]
