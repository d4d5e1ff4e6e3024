"""Cohort bookkeeping of in-use stocks, one period at a time, vectorised over all series.

A *series* is one stock of one thing (a region × product, an element of a model's stock, a
scenario …); all series advance together, so the only Python loop runs over periods.

Conventions (the same as flodym's default ``inflow_at="middle"``): a period is a year; what enters in
year c enters at its middle, and the stock is counted at the end of each year, so the survival of
cohort c at the end of year t is ``SF(t - c + 0.5)`` and the outflow of cohort c in year t is
``SF(t - c - 0.5) - SF(t - c + 0.5)`` (``1 - SF(0.5)`` in its first year).

When the lifetime does not vary by cohort the survival table is Toeplitz, ``sf[t, c] = s[t - c]``:
then one survival vector per series is kept (memory O(T·N)). With cohort-varying lifetimes each
period evaluates its own row ``sf[t, :t + 1]`` on the distinct parameter sets only (series that
share their lifetime share the evaluation), so the distribution is evaluated once per cohort and
age of the horizon and parameter set, and memory stays O(T·N): the (T × T × N) table is built
only when stock by cohort is asked for.

A stock that must fall faster than its cohorts leave (stock-driven, target below what survives)
would need a negative inflow. Policy ``clip`` sets the inflow to 0 and retires the surplus from all
cohorts in proportion to their mass (a larger, positive outflow); ``error`` refuses. The periods
where the policy acted are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critflow.stocks.lifetimes import Lifetime, survival_of

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
        self.n_cohorts, self.n_series = self.s.shape
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


class _ByCohort:
    """Survival of cohort-varying lifetimes, one period's row ``sf[t, :t + 1]`` at a time.

    Series that share their parameters in every cohort share one *column*: the distribution is
    evaluated on the columns only, with parameters converted once (a lognormal's σ and scale per
    cohort and column), and only at the ages of the period at hand. No (periods × cohorts × series)
    table is held; :meth:`survival_rows` builds rows of it on request.

    Weights are kept as (columns, M, cohorts): a column holds up to M series, so a period's stock
    and outflow are one batched matrix product over cohorts, ``Σ_c w[u, m, c] · sf[t, c, u]``,
    without spreading the survival to every series. A parameter set shared by more than M series
    spans several columns; with M the mean number of series per distinct parameter set, there
    are at most twice as many places as series.
    """

    def __init__(self, lifetime: Lifetime, n_cohorts: int, n_series: int, offset: float) -> None:
        self.n_cohorts, self.n_series, self.offset = n_cohorts, n_series, offset
        names = list(lifetime.parameters)
        shape = (n_cohorts, n_series)
        values = [np.broadcast_to(np.asarray(lifetime.parameters[k], float), shape) for k in names]
        first, group, counts = _same_columns(np.concatenate(values, axis=0))
        per_column = max(1, n_series // counts.size)
        spans = -(-counts // per_column)  # columns of each parameter set
        start = np.cumsum(spans) - spans
        order = np.argsort(group, kind="stable")
        rank = np.empty(n_series, dtype=np.int64)
        rank[order] = np.arange(n_series) - np.repeat(np.cumsum(counts) - counts, counts)
        self.column = start[group] + rank // per_column  # column of each series, (N,)
        self.place = self.column * per_column + rank % per_column  # in (columns × M)
        source = first[np.repeat(np.arange(counts.size), spans)]  # one series of each column
        columns = Lifetime(
            lifetime.distribution, {k: v[:, source].T for k, v in zip(names, values, strict=True)}
        )
        # (columns, cohorts), converted once
        self._prm = {k: np.ascontiguousarray(v) for k, v in columns.standard_parameters().items()}
        self.distribution = lifetime.distribution
        self._w = np.zeros((spans.sum(), per_column, n_cohorts))
        self._flat_w = self._w.reshape(-1, n_cohorts)
        self._rows: dict[int, np.ndarray] = {}

    def _columns(self, ages: np.ndarray, cohorts: slice) -> np.ndarray:
        prm = {k: v[:, cohorts] for k, v in self._prm.items()}
        return survival_of(self.distribution, ages, prm)

    def _row(self, tau: int) -> np.ndarray:
        """``sf[tau, c]`` of every column for the cohorts c <= tau, (columns, tau + 1)."""
        row = self._rows.get(tau)
        if row is None:
            ages = np.arange(tau, -1, -1, dtype=float) + self.offset
            row = self._columns(ages, slice(0, tau + 1))
            self._rows = {k: v for k, v in self._rows.items() if k in (tau - 1, tau + 1)}
            self._rows[tau] = row
        return row

    def diagonal(self, tau: int) -> tuple[np.ndarray, np.ndarray]:
        s0 = self._row(tau)[self.column, tau]
        return s0, 1.0 - s0

    def past(self, tau: int) -> tuple[np.ndarray, np.ndarray]:
        now = self._row(tau)[:, :tau]
        terms = np.stack([now, self._row(tau - 1)[:, :tau] - now], axis=2)  # (columns, tau, 2)
        both = np.matmul(self._w[:, :, :tau], terms).reshape(-1, 2)[self.place]
        return both[:, 0], both[:, 1]

    def set(self, tau: int, weights: np.ndarray) -> None:
        self._flat_w[self.place, tau] = weights

    def scale_past(self, tau: int, factor: np.ndarray, series: np.ndarray) -> None:
        self._flat_w[self.place[series], :tau] *= np.asarray(factor)[:, None]

    def survival_rows(self, taus: np.ndarray) -> np.ndarray:
        """``sf[t, c]`` for the periods ``taus`` and every cohort: (len(taus), L, N)."""
        age = np.asarray(taus)[:, None] - np.arange(self.n_cohorts)[None, :]
        table = self._columns(np.maximum(age, 0)[:, None, :] + self.offset, slice(None))
        table *= (age >= 0)[:, None, :]
        return table[:, self.column, :].transpose(0, 2, 1)


def _same_columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups of identical columns of ``values`` (rows × N): a first column of each group, the
    group of every column, and the group sizes (as ``np.unique(axis=1)``, without its slow sort of
    whole columns).

    Columns are grouped by a weighted sum of their rows, then every column is checked against its
    group's first; a column that differs (two sums that happen to coincide) becomes a group of its
    own, so a group only ever holds identical columns.
    """
    weights = 1.0 + np.arange(values.shape[0], dtype=float)[::-1] / values.shape[0]
    key = weights @ values
    _, first, group = np.unique(key, return_index=True, return_inverse=True)
    group = group.reshape(-1)
    odd = np.flatnonzero((values != values[:, first[group]]).any(axis=0))
    if odd.size:
        group[odd] = first.size + np.arange(odd.size)
        first = np.concatenate([first, odd])
    return first, group, np.bincount(group, minlength=first.size)


def survival_kernel(
    lifetime: Lifetime, n_cohorts: int, n_series: int, inflow_at: str = "middle"
) -> _Toeplitz | _ByCohort:
    """Survival of every cohort for ``n_cohorts`` periods of ``n_series`` series.

    Lifetime parameters broadcast to ``(n_series,)``; cohort-varying ones to
    ``(n_cohorts, n_series)``.
    """
    offset = 1.0 - INFLOW_AT[inflow_at]
    if not lifetime.cohort_varying:
        ages = np.arange(n_cohorts, dtype=float)[:, None] + offset
        s = np.broadcast_to(lifetime.survival(ages), (n_cohorts, n_series))
        return _Toeplitz(np.array(s, dtype=float))
    return _ByCohort(lifetime, n_cohorts, n_series, offset)


@dataclass
class CohortStocks:
    """Stocks of many series advanced one period at a time.

    ``kernel`` covers ``history + periods`` cohorts: the first ``history`` are the cohorts of an
    initial stock (their weights are set with :meth:`set_history`), the rest the model periods.
    """

    kernel: _Toeplitz | _ByCohort
    history: int
    n_periods: int
    negative_inflow: str = "clip"

    def __post_init__(self) -> None:
        n = self.kernel.n_series
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
        inflow = self.target_inflow(t, target, composition, group)
        self.add_inflow(t, inflow)
        return inflow

    def target_inflow(
        self,
        t: int,
        target: np.ndarray,
        composition: np.ndarray | None = None,
        group: np.ndarray | None = None,
        series: np.ndarray | None = None,
    ) -> np.ndarray:
        """Inflow of :meth:`reach_stock` for the series ``series`` (all by default), without
        recording it: the policy retires surplus cohorts of those series (their carry-over of
        period ``t`` shrinks with them); :meth:`add_inflow` records the inflow afterwards.

        ``composition`` and ``group`` are given for the chosen series only, the groups numbered
        0 … G-1; the other series are left untouched.
        """
        past_stock, past_outflow = self.carry_over(t)
        s0, _ = self.first_year(t)
        if series is not None:
            past_sel, s0 = past_stock[series], s0[series]
        else:
            past_sel = past_stock
        if group is None:
            need = target - past_sel
            per_unit = s0
            goods = np.divide(need, per_unit, out=np.zeros_like(need), where=per_unit > 0)
            inflow = goods
            have_g = past_sel
        else:
            n_groups = target.shape[0]
            have_g = np.bincount(group, weights=past_sel, minlength=n_groups)
            per_unit = np.bincount(group, weights=s0 * composition, minlength=n_groups)
            need = target - have_g
            goods = np.divide(need, per_unit, out=np.zeros_like(need), where=per_unit > 0)
            inflow = goods[group] * composition
        falling = goods < 0
        if falling.any():
            if self.negative_inflow == "error":
                raise NegativeInflowError(t, np.flatnonzero(falling))
            chosen = falling if group is None else falling[group]
            factor_g = np.divide(
                target, have_g, out=np.zeros_like(target), where=(have_g > 0) & falling
            )
            factor = (factor_g if group is None else factor_g[group])[chosen]
            local = np.flatnonzero(chosen)
            idx = local if series is None else np.asarray(series)[local]
            self.kernel.scale_past(self.history + t, factor, idx)
            self.retire_factor[t, idx] = factor
            self.retired[t, idx] = past_stock[idx] * (1.0 - factor)
            # cohorts scaled: the carry-over of this period shrinks with them
            scaled_stock = past_stock.copy()
            scaled_stock[idx] *= factor
            # what leaves: the cohorts' own outflow of the period plus the retired surplus
            self._past[t] = (scaled_stock, past_outflow + self.retired[t])
            inflow = np.where(chosen, 0.0, inflow)
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
        # a retirement in period t' scales every cohort that entered before t': the cohort of
        # period c carries the product of the factors of c < t' <= t (a product, not a ratio of
        # running products, which a factor 0 — a target of 0 — would break)
        entered = np.arange(n_h + n_t) - n_h  # period each cohort entered, history < 0
        applies = np.arange(n_t)[:, None] > entered[None, :]  # (T, L)
        scale = np.where(applies[:, :, None], self.retire_factor[:, None, :], 1.0)
        np.cumprod(scale, axis=0, out=scale)
        table *= weights[None]
        table *= scale
        return table
