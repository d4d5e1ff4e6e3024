"""Cohort bookkeeping of in-use stocks, one period at a time, vectorised over all series.

A *series* is one stock of one thing (a region × product, an element of a model's stock, a
scenario …); all series advance together, so the only Python loop runs over periods.

Conventions (the same as flodym's default ``inflow_at="middle"``): a period is a year; what enters in
year c enters at its middle, and the stock is counted at the end of each year, so the survival of
cohort c at the end of year t is ``SF(t - c + 0.5)`` and the outflow of cohort c in year t is
``SF(t - c - 0.5) - SF(t - c + 0.5)`` (``1 - SF(0.5)`` in its first year).

When the lifetime does not vary by cohort the survival table is Toeplitz, ``sf[t, c] = s[t - c]``:
then one survival vector per series is kept (memory O(T·N)). Cohort-varying lifetimes keep the
table (O(T²·N)).

A stock that must fall faster than its cohorts leave (stock-driven, target below what survives)
would need a negative inflow. Policy ``clip`` sets the inflow to 0 and retires the surplus from all
cohorts in proportion to their mass (a larger, positive outflow); ``error`` refuses. The periods
where the policy acted are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critflow.stocks.lifetimes import Lifetime

INFLOW_AT = {"start": 0.0, "middle": 0.5, "end": 1.0}
"""Point of the year at which a cohort enters the stock."""


class NegativeInflowError(ValueError):
    """A stock-driven series needs a negative inflow and the policy is ``error``."""

    def __init__(self, period: int, series: np.ndarray) -> None:
        super().__init__(f"negative inflow needed in period {period}")
        self.period = period
        self.series = series


class _Toeplitz:
    """Survival by age, one vector per series: ``s[a, n]``; cohort weights kept newest-first."""

    def __init__(self, survival: np.ndarray) -> None:
        self.s = np.ascontiguousarray(survival)
        self.p = np.empty_like(self.s)
        self.p[0] = 1.0 - self.s[0]
        self.p[1:] = self.s[:-1] - self.s[1:]
        self.n_cohorts = self.s.shape[0]
        # weights stored newest-first so the cohorts before t are one contiguous slice
        self._w = np.zeros_like(self.s)

    def diagonal(self, tau: int) -> tuple[np.ndarray, np.ndarray]:
        return self.s[0], self.p[0]

    def past(self, tau: int) -> tuple[np.ndarray, np.ndarray]:
        w = self._w[self.n_cohorts - tau :]  # cohorts tau-1, tau-2, ..., 0
        return (
            np.einsum("an,an->n", self.s[1 : tau + 1], w),
            np.einsum("an,an->n", self.p[1 : tau + 1], w),
        )

    def set(self, tau: int, weights: np.ndarray) -> None:
        self._w[self.n_cohorts - 1 - tau] = weights

    def scale_past(self, tau: int, factor: np.ndarray, series: np.ndarray) -> None:
        self._w[self.n_cohorts - tau :, series] *= factor

    def survival_rows(self, taus: np.ndarray) -> np.ndarray:
        """``sf[t, c]`` for the periods ``taus`` and every cohort: (len(taus), L, N)."""
        age = taus[:, None] - np.arange(self.n_cohorts)[None, :]
        table = self.s[np.clip(age, 0, None)]
        table[age < 0] = 0.0
        return table


class _Table:
    """Full survival table ``sf[t, c, n]`` (cohort-varying lifetimes)."""

    def __init__(self, table: np.ndarray) -> None:
        self.sf = table
        self.n_cohorts = table.shape[0]
        self._w = np.zeros((self.n_cohorts, table.shape[2]))

    def diagonal(self, tau: int) -> tuple[np.ndarray, np.ndarray]:
        s0 = self.sf[tau, tau]
        return s0, 1.0 - s0

    def past(self, tau: int) -> tuple[np.ndarray, np.ndarray]:
        w = self._w[:tau]
        stock = np.einsum("cn,cn->n", self.sf[tau, :tau], w)
        outflow = np.einsum("cn,cn->n", self.sf[tau - 1, :tau] - self.sf[tau, :tau], w)
        return stock, outflow

    def set(self, tau: int, weights: np.ndarray) -> None:
        self._w[tau] = weights

    def scale_past(self, tau: int, factor: np.ndarray, series: np.ndarray) -> None:
        self._w[:tau, series] *= factor

    def survival_rows(self, taus: np.ndarray) -> np.ndarray:
        return self.sf[taus]


def survival_kernel(
    lifetime: Lifetime, n_cohorts: int, n_series: int, inflow_at: str = "middle"
) -> _Toeplitz | _Table:
    """Survival of every cohort for ``n_cohorts`` periods of ``n_series`` series.

    Lifetime parameters broadcast to ``(n_series,)``; cohort-varying ones to
    ``(n_cohorts, n_series)``.
    """
    offset = 1.0 - INFLOW_AT[inflow_at]
    if not lifetime.cohort_varying:
        ages = np.arange(n_cohorts, dtype=float)[:, None] + offset
        s = np.broadcast_to(lifetime.survival(ages), (n_cohorts, n_series))
        return _Toeplitz(np.array(s, dtype=float))
    t, c = np.tril_indices(n_cohorts)
    table = np.zeros((n_cohorts, n_cohorts, n_series))
    # parameters of cohort c line up with the rows of the lower triangle
    ages = (t - c).astype(float)[:, None] + offset
    table[t, c] = np.broadcast_to(lifetime.survival(ages, cohort=c), (t.size, n_series))
    return _Table(table)


@dataclass
class CohortStocks:
    """Stocks of many series advanced one period at a time.

    ``kernel`` covers ``history + periods`` cohorts: the first ``history`` are the cohorts of an
    initial stock (their weights are set with :meth:`set_history`), the rest the model periods.
    """

    kernel: _Toeplitz | _Table
    history: int
    n_periods: int
    negative_inflow: str = "clip"

    def __post_init__(self) -> None:
        n = (
            self.kernel.s.shape[1]
            if isinstance(self.kernel, _Toeplitz)
            else self.kernel.sf.shape[2]
        )
        self.n_series = n
        self.stock = np.zeros((self.n_periods, n))
        self.inflow = np.zeros((self.n_periods, n))
        self.outflow = np.zeros((self.n_periods, n))
        self.retired = np.zeros((self.n_periods, n))  # surplus retired by the clip policy
        self.retire_factor = np.ones((self.n_periods, n))
        self.initial_stock = np.zeros(n)
        self._history_w = np.zeros((self.history, n))
        self._past: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def set_history(self, weights: np.ndarray) -> None:
        """Effective inflows of the initial stock's cohorts, (history, N), oldest first."""
        self._history_w = np.array(weights, dtype=float).reshape(self.history, self.n_series)
        for k in range(self.history):
            self.kernel.set(k, weights[k])
        if self.history:
            rows = self.kernel.survival_rows(np.array([self.history - 1]))[0, : self.history]
            self.initial_stock = (rows * weights).sum(axis=0)

    def carry_over(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Stock and outflow in period ``t`` of the cohorts that entered before it."""
        if t not in self._past:
            tau = self.history + t
            if tau == 0:
                zero = np.zeros(self.n_series)
                self._past[t] = (zero, zero)
            else:
                self._past[t] = self.kernel.past(tau)
        return self._past[t]

    def first_year(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Share of an inflow in period ``t`` still in stock at its end, and the share that left."""
        return self.kernel.diagonal(self.history + t)

    def add_inflow(self, t: int, inflow: np.ndarray) -> None:
        """Record the inflow of period ``t`` (N,) and close the period's stock and outflow."""
        past_stock, past_outflow = self.carry_over(t)
        s0, p0 = self.first_year(t)
        self.kernel.set(self.history + t, inflow)
        self.inflow[t] = inflow
        self.stock[t] = past_stock + s0 * inflow
        self.outflow[t] = past_outflow + p0 * inflow
        self._past.pop(t, None)

    def reach_stock(
        self,
        t: int,
        target: np.ndarray,
        composition: np.ndarray | None = None,
        group: np.ndarray | None = None,
    ) -> np.ndarray:
        """Inflow that brings each group of series to ``target`` in period ``t``; returns it (N,).

        Without ``group`` each series is its own stock. With ``group`` (N,) the series of a group
        (the elements of one stock) share one goods target (G,) and enter in proportion to
        ``composition`` (N,). A negative inflow triggers the policy (see the module docstring).
        """
        past_stock, past_outflow = self.carry_over(t)
        s0, _ = self.first_year(t)
        if group is None:
            need = target - past_stock
            per_unit = s0
            goods = np.divide(need, per_unit, out=np.zeros_like(need), where=per_unit > 0)
            inflow = goods
        else:
            n_groups = target.shape[0]
            have = np.bincount(group, weights=past_stock, minlength=n_groups)
            per_unit = np.bincount(group, weights=s0 * composition, minlength=n_groups)
            need = target - have
            goods = np.divide(need, per_unit, out=np.zeros_like(need), where=per_unit > 0)
            inflow = goods[group] * composition
        falling = goods < 0
        if falling.any():
            if self.negative_inflow == "error":
                raise NegativeInflowError(t, np.flatnonzero(falling))
            series = falling if group is None else falling[group]
            have_g = (
                past_stock
                if group is None
                else np.bincount(group, weights=past_stock, minlength=target.shape[0])
            )
            factor_g = np.divide(target, have_g, out=np.zeros_like(target), where=have_g > 0)
            factor = factor_g if group is None else factor_g[group]
            idx = np.flatnonzero(series)
            self.kernel.scale_past(self.history + t, factor[idx], idx)
            self.retire_factor[t, idx] = factor[idx]
            self.retired[t, idx] = past_stock[idx] * (1.0 - factor[idx])
            # cohorts scaled: the carry-over of this period shrinks with them
            scaled_stock = past_stock.copy()
            scaled_stock[idx] *= factor[idx]
            # what leaves: the cohorts' own outflow of the period plus the retired surplus
            self._past[t] = (scaled_stock, past_outflow + self.retired[t])
            inflow = np.where(series, 0.0, inflow)
        self.add_inflow(t, inflow)
        return inflow

    def clipped_periods(self) -> np.ndarray:
        """(T, N) True where the negative-inflow policy retired surplus stock."""
        return self.retire_factor < 1.0

    def stock_by_cohort(self) -> np.ndarray:
        """Stock of every cohort at the end of every period, (T, history + T, N).

        Built from the recorded inflows, so only on request (memory T·(history+T)·N).
        """
        n_t, n_h = self.n_periods, self.history
        table = self.kernel.survival_rows(n_h + np.arange(n_t))  # (T, L, N): sf[t, c]
        weights = np.concatenate([self._history_w, self.inflow])  # (L, N)
        # a retirement in period t' scales every cohort that entered before t'
        cumulative = np.cumprod(self.retire_factor, axis=0)  # (T, N)
        entered = np.concatenate([np.ones((n_h, self.n_series)), cumulative])  # (L, N)
        scale = np.divide(
            cumulative[:, None, :],
            entered[None, :, :],
            out=np.zeros((n_t, n_h + n_t, self.n_series)),
            where=entered[None, :, :] > 0,
        )
        return table * weights[None] * scale
