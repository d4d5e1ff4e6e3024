"""Dynamic stock models on labelled or plain arrays: inflow-driven, stock-driven, or switching.

Time is the first axis (or the ``time`` dimension of an :class:`xarray.DataArray`); every other
axis is a batch of independent series (regions, products, elements, samples …) computed together.
Flows are per year; stocks at the end of each year, in the same mass unit as the flows × 1 year.

>>> import numpy as np
>>> from critflow.stocks import Lifetime, inflow_driven
>>> result = inflow_driven(np.full(50, 100.0), Lifetime.of("weibull", shape=2.3, scale=15.5))
>>> round(float(result.stock[-1]), 1)  # inflow × mean lifetime, 100 × 15.5 Γ(1 + 1/2.3)
1373.2
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from critflow.errors import CritflowError

if TYPE_CHECKING:
    import xarray as xr
from critflow.stocks.cohorts import INFLOW_AT, CohortStocks, NegativeInflowError, survival_kernel
from critflow.stocks.lifetimes import Lifetime

MAX_HISTORY = 400
"""Most years of cohorts an initial stock built from the lifetime may reach back."""


@dataclass
class StockResult:
    """Stock (end of year), inflow and outflow (per year) of every series; same shape as the input.

    ``retired`` is the surplus the negative-inflow policy took out (it is part of ``outflow``);
    ``clipped`` is True in the years and series where that happened.
    """

    stock: np.ndarray | xr.DataArray
    inflow: np.ndarray | xr.DataArray
    outflow: np.ndarray | xr.DataArray
    retired: np.ndarray | xr.DataArray
    clipped: np.ndarray | xr.DataArray
    initial_stock: np.ndarray | xr.DataArray
    _cohorts: CohortStocks = field(repr=False)
    _wrap: object = field(repr=False)

    def stock_by_cohort(self) -> np.ndarray:
        """Stock of each cohort at the end of each year: (T, history + T, *series)."""
        table = self._cohorts.stock_by_cohort()
        return table.reshape(table.shape[:2] + self._series_shape)

    @property
    def _series_shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.stock)[1:])

    def balance(self) -> float:
        """Largest |Σ inflow − Σ outflow − (final stock − initial stock)| relative to the stock."""
        stock = np.asarray(self.stock)
        gap = (
            np.asarray(self.inflow).sum(axis=0)
            - np.asarray(self.outflow).sum(axis=0)
            - (stock[-1] - np.asarray(self.initial_stock))
        )
        scale = max(float(np.abs(stock).max(initial=0.0)), 1e-300)
        return float(np.abs(gap).max(initial=0.0) / scale)


def _is_dataarray(value: object) -> bool:
    """True for an xarray DataArray, without importing xarray (a caller who passes one has)."""
    xarray = sys.modules.get("xarray")
    return xarray is not None and isinstance(value, xarray.DataArray)


class _Arrays:
    """Flatten inputs to (T, N) and wrap results back into the caller's type and shape."""

    def __init__(self, template: np.ndarray | xr.DataArray) -> None:
        if _is_dataarray(template):
            time = "time" if "time" in template.dims else template.dims[0]
            self.template = template.transpose(time, ...)
            values = self.template.values
        else:
            self.template = None
            values = np.asarray(template, dtype=float)
        if values.ndim == 0:
            raise CritflowError("inflow/stock", "needs a time axis", "Give one value per year.")
        self.shape = values.shape
        self.n_periods = values.shape[0]
        self.n_series = int(np.prod(values.shape[1:], dtype=np.int64))

    def flat(self, values: np.ndarray | xr.DataArray | None) -> np.ndarray | None:
        if values is None:
            return None
        if _is_dataarray(values) and self.template is not None:
            values = values.broadcast_like(self.template).transpose(*self.template.dims).values
        array = np.broadcast_to(np.asarray(values, dtype=float), self.shape)
        return array.reshape(self.n_periods, self.n_series)

    def series(self, values) -> np.ndarray:
        """A parameter broadcast over the series axes, flattened to (N,)."""
        if _is_dataarray(values) and self.template is not None:
            values = values.broadcast_like(self.template.isel({self.template.dims[0]: 0})).values
        return np.broadcast_to(np.asarray(values, dtype=float), self.shape[1:]).reshape(-1)

    def cohort_series(self, values, history: int) -> np.ndarray:
        """A cohort-varying parameter (T, ...) flattened and padded back by ``history`` years."""
        flat = self.flat(values)
        return np.concatenate([np.repeat(flat[:1], history, axis=0), flat])

    def wrap(self, flat: np.ndarray, name: str):
        values = flat.reshape(self.shape)
        if self.template is None:
            return values
        return self.template.copy(data=values).rename(name)

    def wrap_series(self, flat: np.ndarray, name: str):
        values = flat.reshape(self.shape[1:])
        if self.template is None:
            return values
        first = self.template.isel({self.template.dims[0]: 0}, drop=True)
        return first.copy(data=values).rename(name)


def _flat_lifetime(lifetime: Lifetime, arrays: _Arrays, history: int) -> Lifetime:
    if lifetime.cohort_varying:
        params = {k: arrays.cohort_series(v, history) for k, v in lifetime.parameters.items()}
    else:
        params = {k: arrays.series(v) for k, v in lifetime.parameters.items()}
    return Lifetime(lifetime.distribution, params, lifetime.cohort_varying)


def history_length(lifetime: Lifetime, initial_cohorts: np.ndarray | None) -> int:
    """Years of cohorts an initial stock needs before the first period."""
    if initial_cohorts is not None:
        return int(np.shape(initial_cohorts)[0])
    return min(MAX_HISTORY, math.ceil(lifetime.longest_age()) + 1)


def history_weights(
    cohorts: CohortStocks, total: np.ndarray | None, by_age: np.ndarray | None
) -> np.ndarray:
    """Effective inflows (history, N) of an initial stock, oldest cohort first.

    ``total`` (N,) spreads the stock over ages like a stock fed by a constant inflow (the lifetime's
    steady state); ``by_age`` (history, N) gives the mass of each cohort, oldest first.
    """
    k = cohorts.history
    survived = cohorts.kernel.survival_rows(np.array([k - 1]))[0, :k]  # (k, N) at end of year -1
    if by_age is not None:
        return np.divide(by_age, survived, out=np.zeros_like(by_age), where=survived > 0)
    per_inflow = survived.sum(axis=0)
    level = np.divide(total, per_inflow, out=np.zeros_like(total), where=per_inflow > 0)
    return np.broadcast_to(level, (k, level.size)).copy()


def dynamic_stock(
    lifetime: Lifetime,
    inflow=None,
    stock=None,
    stock_driven=None,
    initial_stock=None,
    initial_cohorts=None,
    negative_inflow: str = "clip",
    inflow_at: str = "middle",
) -> StockResult:
    """A dynamic stock model of many series at once.

    Give ``inflow`` (inflow-driven), ``stock`` (stock-driven), or both with ``stock_driven`` a
    boolean per year saying which one drives that year. ``initial_stock`` (per series, at the end
    of the year before the first) is spread over ages by the lifetime; ``initial_cohorts``
    (years × series, oldest first) gives it by cohort instead.
    """
    template = inflow if inflow is not None else stock
    if template is None:
        raise CritflowError(
            "dynamic_stock", "needs an inflow or a stock", "Give inflow=…, stock=… or both."
        )
    if inflow_at not in INFLOW_AT:
        raise CritflowError(
            "inflow_at", f"'{inflow_at}' is not a point of the year", f"Use {', '.join(INFLOW_AT)}."
        )
    if negative_inflow not in ("clip", "error"):
        raise CritflowError(
            "negative_inflow",
            f"'{negative_inflow}' is not a policy",
            "Use 'clip' (retire the surplus from all cohorts) or 'error'.",
        )
    arrays = _Arrays(template)
    n_t, n = arrays.n_periods, arrays.n_series
    if stock_driven is None:
        stock_driven = np.full(n_t, inflow is None)
    stock_driven = np.broadcast_to(np.asarray(stock_driven, dtype=bool), (n_t,))
    if stock_driven.any() and stock is None:
        raise CritflowError("stock", "stock-driven years need a stock", "Give stock=….")
    if (~stock_driven).any() and inflow is None:
        raise CritflowError("inflow", "inflow-driven years need an inflow", "Give inflow=….")
    has_initial = initial_stock is not None or initial_cohorts is not None
    history = history_length(lifetime, initial_cohorts) if has_initial else 0
    # the parameters spread over every cohort and series live only while the kernel is built
    kernel = survival_kernel(_flat_lifetime(lifetime, arrays, history), history + n_t, n, inflow_at)
    cohorts = CohortStocks(kernel, history, n_t, negative_inflow)
    if has_initial:
        by_age = None
        if initial_cohorts is not None:
            by_age = np.asarray(initial_cohorts, dtype=float).reshape(history, n)
        total = None if initial_stock is None else arrays.series(initial_stock)
        if by_age is not None and total is not None and not np.allclose(by_age.sum(0), total):
            raise CritflowError(
                "initial_stock",
                f"the cohorts sum to {by_age.sum(0).max():.6g}, not the total {total.max():.6g}",
                "Make the cohorts add up to the total, or give only one of them.",
            )
        cohorts.set_history(history_weights(cohorts, total, by_age))
    inflow_flat = arrays.flat(inflow)
    stock_flat = arrays.flat(stock)
    for t in range(n_t):
        if stock_driven[t]:
            try:
                cohorts.reach_stock(t, stock_flat[t])
            except NegativeInflowError as exc:
                raise CritflowError(
                    "stock",
                    f"the stock falls faster than its cohorts leave in period {t} "
                    f"({exc.series.size} series): it would need a negative inflow",
                    "Use negative_inflow='clip' to retire the surplus, or raise the target.",
                ) from None
        else:
            cohorts.add_inflow(t, inflow_flat[t])
    return StockResult(
        stock=arrays.wrap(cohorts.stock, "stock"),
        inflow=arrays.wrap(cohorts.inflow, "inflow"),
        outflow=arrays.wrap(cohorts.outflow, "outflow"),
        retired=arrays.wrap(cohorts.retired, "retired"),
        clipped=arrays.wrap(cohorts.clipped_periods(), "clipped"),
        initial_stock=arrays.wrap_series(cohorts.initial_stock, "initial_stock"),
        _cohorts=cohorts,
        _wrap=arrays,
    )


def inflow_driven(inflow, lifetime: Lifetime, **options) -> StockResult:
    """Stock and outflow from a given inflow (T, …); see :func:`dynamic_stock` for options."""
    return dynamic_stock(lifetime, inflow=inflow, **options)


def stock_driven(stock, lifetime: Lifetime, **options) -> StockResult:
    """Inflow and outflow that keep a given stock (T, …); see :func:`dynamic_stock`."""
    return dynamic_stock(lifetime, stock=stock, **options)
