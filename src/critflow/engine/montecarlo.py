"""Monte Carlo: every sample of the uncertain inputs solved as blocks of one system, in chunks.

Samples are drawn in chunks (``chunk_size`` each); chunk c always gets the same draws for the same
seed (its own child of the seed's ``SeedSequence``, or the Sobol points c·size … (c+1)·size − 1),
wherever it runs. Each chunk is evaluated with a sample axis, solved in one factorisation, and
reduced to mergeable statistics; raw samples are kept only on request. Chunks run in this process
or on Dask distributed workers; statistics are merged in chunk order either way, so a distributed
run gives exactly the numbers of an in-process run.

Drawn transfer coefficients follow one rule (:func:`critflow.engine.compile.check_drawn_shares`):
within a process and element the shares that vary keep their draws and the fixed shares absorb the
difference; nothing else is rescaled. The rule is checked over the distributions' support before
the first sample, and a sample that still breaks it is refused by its number and drawn values.

Models with stock processes run alike: a chunk's samples are more scenarios of the period-by-period
stock solve (lifetimes, targets, inflow compositions and initial stocks drawn like every other
number), and the stocks in use at the end of each year get statistics of their own ("stocks",
(scenario, period, element, stock) in the model's mass unit) beside the flows.

Statistics per quantity: count, mean and the sum of squared deviations (merged with Chan et al.'s
parallel formula), minimum and maximum, and a 512-bin histogram over a range fixed by the first
chunk (its minimum and maximum widened by half their span each side; values outside fall into the
end bins). Quantiles are read from the merged histogram by linear interpolation within a bin, so
they are exact to one bin width (range / 512, about 0.4 % of the sampled range) whatever the
number of samples or workers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from critflow.engine import solve_inputs
from critflow.engine.compile import check_drawn_shares, evaluate
from critflow.engine.results import FlowResults
from critflow.errors import CritflowError
from critflow.model.core import Model
from critflow.model.uncertainty import SAMPLERS, Sampler, collect

BINS = 512
QUANTILES = (0.05, 0.5, 0.95)
DEFAULT_CHUNK = 500

Extras = Callable[[Model, FlowResults], dict[str, np.ndarray]]
"""Computes more per-sample quantities from a chunk's results: name → (S·N, P, …) arrays."""


@dataclass
class Statistics:
    """Mergeable statistics of Q quantities over samples."""

    count: int
    mean: np.ndarray
    m2: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    low: np.ndarray
    width: np.ndarray
    counts: np.ndarray  # (Q, BINS)

    @classmethod
    def of(
        cls, values: np.ndarray, low: np.ndarray | None = None, width: np.ndarray | None = None
    ) -> Statistics:
        """Statistics of ``values`` (n, Q); without a range, one is fixed from these values."""
        n = values.shape[0]
        mean = values.mean(axis=0)
        m2 = ((values - mean) ** 2).sum(axis=0)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            # a quantity undefined in every sample (0/0) is NaN: no warning ("All-NaN slice")
            warnings.simplefilter("ignore", RuntimeWarning)
            vmin, vmax = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        if low is None or width is None:
            span = np.nan_to_num(vmax - vmin)
            span = np.where(span > 0, span, np.maximum(np.nan_to_num(np.abs(vmax)), 1.0) * 1e-9)
            vmin = np.nan_to_num(vmin)
            low = vmin - 0.5 * span
            width = 2.0 * span / BINS
        q = values.shape[1]
        counts = np.zeros((q, BINS), dtype=np.uint32)
        step = 2048  # quantities per pass: the bin counts of a pass stay in cache
        for start in range(0, q, step):  # a loop over blocks of quantities, not samples
            part = values[:, start : start + step]
            finite = np.isfinite(part)
            position = np.where(
                finite, (part - low[start : start + step]) / width[start : start + step], 0.0
            )
            index = np.clip(position.astype(np.int64), 0, BINS - 1)
            m = part.shape[1]
            flat = (index + np.arange(m) * BINS)[finite]
            counts[start : start + m] = np.bincount(flat, minlength=m * BINS).reshape(m, BINS)
        return cls(n, mean, m2, vmin, vmax, low, width, counts)

    def merge(self, other: Statistics) -> Statistics:
        """Chan et al. (1979) pairwise update; histograms add."""
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / n
        m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / n
        return Statistics(
            n,
            mean,
            m2,
            np.minimum(self.minimum, other.minimum),
            np.maximum(self.maximum, other.maximum),
            self.low,
            self.width,
            self.counts + other.counts,
        )

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.count - 1, 1))

    def quantiles(self, qs: tuple[float, ...] = QUANTILES) -> np.ndarray:
        """(len(qs), Q) from the histogram: linear within the bin, clipped to [min, max]."""
        cumulative = np.cumsum(self.counts, axis=1)
        out = np.empty((len(qs), self.counts.shape[0]))
        for i, q in enumerate(qs):
            target = q * self.count
            b = np.argmax(cumulative >= target, axis=1)
            before = np.where(
                b > 0, np.take_along_axis(cumulative, np.maximum(b - 1, 0)[:, None], 1)[:, 0], 0
            )
            inside = np.take_along_axis(self.counts, b[:, None], 1)[:, 0]
            frac = np.where(inside > 0, (target - before) / np.maximum(inside, 1), 0.5)
            out[i] = np.clip(self.low + (b + frac) * self.width, self.minimum, self.maximum)
        return out


@dataclass
class ChunkResult:
    """What one chunk returns: statistics per named quantity, and raw values when kept."""

    chunk: int
    stats: dict[str, Statistics]
    shapes: dict[str, tuple[int, ...]]
    raw: dict[str, np.ndarray] | None = None


@dataclass
class MonteCarloResult:
    """Merged statistics: per quantity name, arrays shaped like one sample's result."""

    scenarios: tuple[str, ...]
    samples: int
    seed: int
    sampler: str
    inputs: list[str]
    stats: dict[str, Statistics]
    shapes: dict[str, tuple[int, ...]]
    raw: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def mean(self, name: str) -> np.ndarray:
        return self.stats[name].mean.reshape(self.shapes[name])

    def sd(self, name: str) -> np.ndarray:
        return self.stats[name].sd.reshape(self.shapes[name])

    def quantile(self, name: str, q: float) -> np.ndarray:
        return self.stats[name].quantiles((q,))[0].reshape(self.shapes[name])


class _OrderedMerge:
    """Merges chunk statistics in chunk order as they arrive, holding only the chunks that came
    early (memory stays bounded by the number of chunks in flight, not the number of samples)."""

    def __init__(self, first: ChunkResult) -> None:
        self.merged = dict(first.stats)
        self.raw = {name: [v] for name, v in (first.raw or {}).items()}
        self.next = first.chunk + 1
        self.waiting: dict[int, ChunkResult] = {}

    def add(self, found: ChunkResult) -> None:
        self.waiting[found.chunk] = found
        while self.next in self.waiting:
            chunk = self.waiting.pop(self.next)
            self.merged = {name: self.merged[name].merge(chunk.stats[name]) for name in self.merged}
            for name, values in (chunk.raw or {}).items():
                self.raw[name].append(values)
            self.next += 1

    def result(self) -> tuple[dict[str, Statistics], dict[str, list[np.ndarray]]]:
        return self.merged, self.raw


def _ranges(first: ChunkResult) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {name: (s.low, s.width) for name, s in first.stats.items()}


def run_chunk(
    model: Model,
    scenarios: list[str] | None,
    chunk: int,
    size: int,
    chunk_size: int,
    seed: int,
    sampler: str,
    ranges: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    extras: Extras | None = None,
    keep: bool = False,
) -> ChunkResult:
    """Draw, evaluate, solve and summarise chunk ``chunk`` (``size`` samples). Runs anywhere."""
    inputs = collect(model.spec)
    draws = Sampler(tuple(inputs), seed, sampler).draws(chunk, size, chunk_size)
    evaluated = evaluate(model, scenarios, draws)
    results = solve_inputs(evaluated)
    n_s = len(evaluated.scenarios) // size
    quantities = {"flows": results.mass_kg / evaluated.kg_per_unit}  # (S·N, P, E, F)
    if results.stocks is not None:  # goods in use at the end of each year, (S·N, P, E, K)
        quantities["stocks"] = results.stocks.stock_kg / evaluated.kg_per_unit
    if extras is not None:
        quantities.update(extras(model, results))
    stats, shapes, raw = {}, {}, {}
    for name, values in quantities.items():
        per_sample = values.reshape(n_s, size, *values.shape[1:])  # (S, N, …)
        flat = np.moveaxis(per_sample, 1, 0).reshape(size, -1)  # (N, S·…)
        low, width = ranges[name] if ranges and name in ranges else (None, None)
        stats[name] = Statistics.of(flat, low, width)
        shapes[name] = (n_s, *values.shape[1:])
        if keep:
            raw[name] = flat
    return ChunkResult(chunk, stats, shapes, raw if keep else None)


def chunks(samples: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    for c, start in enumerate(range(0, samples, chunk_size)):
        yield c, min(chunk_size, samples - start)


def monte_carlo(
    model: Model,
    samples: int,
    seed: int = 1,
    sampler: str = "random",
    scenarios: list[str] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    extras: Extras | None = None,
    keep: bool = False,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> MonteCarloResult:
    """Run ``samples`` Monte Carlo samples of ``model`` (in this process, or on the Dask
    ``client``'s workers) and merge their statistics in chunk order."""
    if sampler not in SAMPLERS:
        raise CritflowError(
            "sampler=", f"'{sampler}' is not a sampler", f"Use {', '.join(SAMPLERS)}."
        )
    if samples < 2:
        raise CritflowError(
            "samples=", f"{samples} samples are too few", "Give at least 2 samples."
        )
    inputs = collect(model.spec)
    if not inputs:
        raise CritflowError(
            model.where(),
            "the model has no value with a distribution, so every sample would be the same",
            "Give some parameters, shares or flow values a distribution, e.g. "
            "{value: 0.93, distribution: triangular, low: 0.88, high: 0.97}.",
        )
    base = model.path.parent if model.path else None
    for item in inputs:
        item.value.load(base, model.where(*item.path))
    # the central values solve, and every share stays a share over the distributions' support:
    # refused here, before any sample, rather than in sample k of chunk c
    evaluate(model, scenarios)
    check_drawn_shares(model, scenarios)
    plan = list(chunks(samples, chunk_size))
    common = dict(extras=extras, keep=keep)
    first = run_chunk(model, scenarios, 0, plan[0][1], chunk_size, seed, sampler, **common)
    ranges = _ranges(first)
    merger = _OrderedMerge(first)
    done = plan[0][1]
    if progress:
        progress(done, samples)
    rest = plan[1:]
    if client is not None and rest:
        from distributed import as_completed

        model_future = client.scatter(model, broadcast=True)
        futures = [
            client.submit(
                run_chunk,
                model_future,
                scenarios,
                c,
                n,
                chunk_size,
                seed,
                sampler,
                ranges,
                pure=False,
                **common,
            )
            for c, n in rest
        ]
        for future in as_completed(futures):
            found = future.result()
            future.release()
            merger.add(found)
            done += found.stats["flows"].count
            if progress:
                progress(done, samples)
    else:
        for c, n in rest:
            merger.add(
                run_chunk(model, scenarios, c, n, chunk_size, seed, sampler, ranges, **common)
            )
            done += n
            if progress:
                progress(done, samples)
    merged, raw = merger.result()
    names = tuple(scenarios or model.spec.scenarios)
    return MonteCarloResult(
        names, samples, seed, sampler, [i.label for i in inputs], merged, first.shapes, raw
    )


STAT_COLUMNS = ["mean", "sd", "p5", "p50", "p95"]


def _stat_columns(result: MonteCarloResult, name: str) -> dict[str, np.ndarray]:
    s = result.stats[name]
    q = s.quantiles(QUANTILES)
    return {"mean": s.mean, "sd": s.sd, "p5": q[0], "p50": q[1], "p95": q[2]}


def _tidy_statistics(
    result: MonteCarloResult, name: str, column: str, ids: list[str], topology, periods, unit: str
):
    """Tidy table of the (S, P, E, K) quantity ``name``: scenario, period, ``column`` (the id of
    each K), element, mean, sd, p5, p50, p95, unit, samples."""
    import pandas as pd

    n_s, n_p, n_e, n_k = result.shapes[name]
    grid = np.indices((n_s, n_p, n_e, n_k)).reshape(4, -1)
    frame = pd.DataFrame(
        {
            "scenario": np.array(result.scenarios, dtype=object)[grid[0]],
            "period": periods[grid[1]],
            column: np.array(ids, dtype=object)[grid[3]],
            "element": np.array(topology.elements, dtype=object)[grid[2]],
        }
    )
    for stat, values in _stat_columns(result, name).items():
        frame[stat] = values
    frame["unit"] = unit
    frame["samples"] = result.samples
    return frame


def flow_statistics(result: MonteCarloResult, topology, periods: np.ndarray, unit: str):
    """Tidy table: scenario, period, flow, element, mean, sd, p5, p50, p95, unit (the model's
    mass-flow unit, t/a)."""
    return _tidy_statistics(
        result, "flows", "flow", list(topology.flow_ids), topology, periods, unit
    )


def stock_statistics(result: MonteCarloResult, topology, periods: np.ndarray, unit: str):
    """Tidy table of the stocks in use at the end of each year: scenario, period, stock, element,
    mean, sd, p5, p50, p95, unit (the model's mass unit, t); None for a model without stocks."""
    if "stocks" not in result.stats:
        return None
    ids = [topology.process_ids[u] for u in topology.stock_process]
    return _tidy_statistics(result, "stocks", "stock", ids, topology, periods, unit)


def indicator_statistics(result: MonteCarloResult, periods: np.ndarray, prefix: str = "indicator:"):
    """Tidy table: scenario, period, indicator, element, mean, sd, p5, p50, p95."""
    import pandas as pd

    frames = []
    for name in result.stats:
        if not name.startswith(prefix):
            continue
        indicator, _, element = name.removeprefix(prefix).partition(":")
        n_s, n_p = result.shapes[name]
        grid = np.indices((n_s, n_p)).reshape(2, -1)
        frame = pd.DataFrame(
            {
                "scenario": np.array(result.scenarios, dtype=object)[grid[0]],
                "period": periods[grid[1]],
                "indicator": indicator,
                "element": element or None,
            }
        )
        for column, values in _stat_columns(result, name).items():
            frame[column] = values
        frames.append(frame)
    columns = ["scenario", "period", "indicator", "element", *STAT_COLUMNS]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
