"""Uncertain inputs: a value with a distribution, anywhere a number goes in a model file.

    li_leach_yield: {value: 0.99, distribution: triangular, low: 0.97, high: 1.0}
    value: {value: 6000, distribution: normal, sd: 300}                  # truncated at 0
    Li: {value: 0.0222, distribution: uniform, low: 0.020, high: 0.024}   # a composition
    Co: {value: 0.98, distribution: beta, alpha: 40, beta: 1}             # on [low, high], default [0, 1]
    Ni: {distribution: empirical, file: data/ni_yield.csv, column: yield}

Draws are made on the unit hypercube (random, Latin hypercube or Sobol) and mapped through each
distribution's inverse CDF, so every sampler works with every distribution and the same seed gives
the same numbers. Parameters of a distribution are in the same unit as its ``value``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

SAMPLERS = ("random", "lhs", "sobol")


class Uncertain(BaseModel):
    """A value with a distribution (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    value: float | None = Field(None, description="central value (mode, mean or median)")
    distribution: Literal["triangular", "normal", "lognormal", "uniform", "beta", "empirical"]
    low: float | None = Field(None, description="minimum (triangular, uniform, beta)")
    high: float | None = Field(None, description="maximum (triangular, uniform, beta)")
    sd: float | None = Field(
        None, description="standard deviation (normal); geometric sd factor > 1 (lognormal)"
    )
    alpha: float | None = Field(None, description="beta distribution shape α")
    beta: float | None = Field(None, description="beta distribution shape β")
    file: str | None = Field(None, description="empirical: CSV file of samples (relative path)")
    column: str | None = Field(None, description="empirical: column of that file")

    @model_validator(mode="after")
    def _parameters(self) -> Uncertain:
        problem = parameter_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def central(self) -> float:
        """The value used without sampling."""
        if self.value is not None:
            return float(self.value)
        return float(np.median(self._empirical)) if self._empirical is not None else np.nan

    _empirical: np.ndarray | None = PrivateAttr(None)

    def load(self, base: Path | None, where: str, allow_outside_files: bool = False) -> None:
        """Read an empirical distribution's samples (errors name the file and column).

        The file is read as every file a model names (see
        :func:`critflow.model.series_files.open_data_file`): inside the model's folder ``base``
        unless ``allow_outside_files``, a regular file of bounded size."""
        if self.distribution != "empirical" or self._empirical is not None:
            return
        from critflow.errors import CritflowError
        from critflow.model.series_files import open_data_file
        from critflow.model.tables import parse_csv

        text, shown = open_data_file(self.file, base or Path.cwd(), where, allow_outside_files)
        values = parse_csv(text, shown).numbers(self.column, skip_blank=True)
        if values.size < 2:
            raise CritflowError(
                where,
                f"column '{self.column}' of '{shown}' has fewer than 2 numbers",
                "An empirical distribution needs at least two samples.",
            )
        self._empirical = np.sort(values)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF at uniform draws ``u`` (a vector)."""
        d = self.distribution
        if d in ("triangular", "uniform", "normal"):
            return inverse_cdf(np.array([d]), self.value, self.low, self.high, self.sd, u[:, None])[
                :, 0
            ]
        if d == "lognormal":  # geometric sd → the 2.5 and 97.5 percentiles
            low, high = self.value / self.sd**Z_975, self.value * self.sd**Z_975
            return inverse_cdf(np.array([d]), self.value, low, high, None, u[:, None])[:, 0]
        if d == "beta":
            lo = 0.0 if self.low is None else self.low
            hi = 1.0 if self.high is None else self.high
            from scipy.special import betaincinv  # on use: scipy.special costs ~70 ms to import

            return lo + (hi - lo) * betaincinv(self.alpha, self.beta, u)
        values = self._empirical  # empirical: linear interpolation of the sorted samples
        return np.interp(u, np.linspace(0, 1, values.size), values)


Z_975 = 1.959963984540054
"""Standard-normal 97.5 % quantile."""


def inverse_cdf(
    distribution: np.ndarray,
    central: np.ndarray | float,
    low: np.ndarray | float | None,
    high: np.ndarray | float | None,
    sd: np.ndarray | float | None,
    u: np.ndarray,
) -> np.ndarray:
    """Values at uniform draws ``u`` (n, k) for k values, each with its own distribution
    (``""`` keeps the central value). Conventions, shared by model inputs, background factors and
    prices: triangular (low, mode = central, high); uniform (low, high); normal (mean = central,
    ``sd``, truncated at zero — masses, shares and factors are not negative); lognormal (median =
    central, ``low``/``high`` its 2.5 and 97.5 percentiles, so σ = ln(high/low) / (2 × 1.96))."""
    k = u.shape[1]

    def column(x) -> np.ndarray:
        return np.broadcast_to(np.asarray(np.nan if x is None else x, dtype=float), (k,))

    central, low, high, sd = column(central), column(low), column(high), column(sd)
    out = np.broadcast_to(central, u.shape).copy()
    tri = np.flatnonzero(distribution == "triangular")
    if tri.size:
        v, a, c, b = u[:, tri], low[tri], central[tri], high[tri]
        width = np.where(b > a, b - a, 1.0)
        left = a + np.sqrt(v * width * (c - a))
        right = b - np.sqrt((1 - v) * width * (b - c))
        out[:, tri] = np.where(v < (c - a) / width, left, right)
    uni = np.flatnonzero(distribution == "uniform")
    if uni.size:
        out[:, uni] = low[uni] + u[:, uni] * (high[uni] - low[uni])
    logn = np.flatnonzero(distribution == "lognormal")
    norm = np.flatnonzero(distribution == "normal")
    if logn.size or norm.size:
        from scipy.special import ndtr, ndtri  # on use: scipy.special costs ~70 ms to import
    if logn.size:
        sigma = np.log(high[logn] / low[logn]) / (2 * Z_975)
        out[:, logn] = central[logn] * np.exp(sigma * ndtri(u[:, logn]))
    if norm.size:
        lower = ndtr((0.0 - central[norm]) / sd[norm])
        z = ndtri(lower + u[:, norm] * (1 - lower))
        # clipped as well: when the mean is many sd above 0, `lower` underflows to 0 and a draw
        # u = 0 (which every sampler can make) would give -inf
        out[:, norm] = np.maximum(central[norm] + sd[norm] * z, 0.0)
    return out


def parameter_problem(u: Uncertain) -> str | None:
    """What is wrong with a distribution's parameters, or None."""
    d = u.distribution
    if d == "empirical":
        if not u.file or not u.column:
            return "an empirical distribution needs file and column"
        return None
    if u.value is None:
        return f"a {d} distribution needs its central value (value:)"
    if d in ("triangular", "uniform"):
        if u.low is None or u.high is None:
            return f"a {d} distribution needs low and high"
        if not u.low <= u.value <= u.high or u.low >= u.high:
            return f"needs low <= value <= high with low < high (got {u.low}, {u.value}, {u.high})"
    if d == "normal" and (u.sd is None or u.sd <= 0):
        return f"a normal distribution needs a positive standard deviation sd (got {u.sd})"
    if d == "lognormal" and (u.sd is None or u.sd <= 1 or u.value <= 0):
        return "a lognormal distribution needs value > 0 and a geometric sd factor sd > 1"
    if d == "beta":
        if u.alpha is None or u.beta is None or u.alpha <= 0 or u.beta <= 0:
            return "a beta distribution needs positive shapes alpha and beta"
        lo = 0.0 if u.low is None else u.low
        hi = 1.0 if u.high is None else u.high
        if lo >= hi:
            return f"a beta distribution needs low < high (got {lo}, {hi})"
    return None


def is_uncertain_mapping(value: Any) -> bool:
    return isinstance(value, dict) and "distribution" in value


@dataclass(frozen=True)
class UncertainInput:
    """One uncertain value of a model and where it sits (a field path)."""

    path: tuple[str | int, ...]
    value: Uncertain
    name: tuple[str | int, ...] = ()  # the path with list positions replaced by ids

    @property
    def label(self) -> str:
        parts = self.name or self.path
        return ".".join(str(p) for p in parts)


_PLAIN = frozenset({float, int, str, bool, type(None)})
"""Types of values that hold no uncertain value (the leaves of a model)."""


def collect(data: Any, path: tuple = (), name: tuple = ()) -> list[UncertainInput]:
    """Every Uncertain in a validated model (pydantic objects, dicts, lists), in file order."""
    found: list[UncertainInput] = []
    if isinstance(data, Uncertain):
        return [UncertainInput(path, data, name)]
    if isinstance(data, BaseModel):
        for key in type(data).model_fields:
            field = type(data).model_fields[key]
            alias = field.alias or key
            item = getattr(data, key)
            if type(item) not in _PLAIN:
                found += collect(item, (*path, alias), (*name, alias))
    elif isinstance(data, dict):
        for key, item in data.items():
            if type(item) not in _PLAIN:  # (a time series holds numbers only: nothing to visit)
                found += collect(item, (*path, key), (*name, key))
    elif isinstance(data, list | tuple):
        for i, item in enumerate(data):
            found += collect(item, (*path, i), (*name, getattr(item, "id", i)))
    return found


@dataclass
class Draws:
    """Samples of every uncertain input for one chunk: ``values[:, column_of[id(u)]]``.

    ``first`` is the run-wide number of the chunk's first sample (messages name samples by it);
    ``support`` is set when the rows are not random draws but the ends of the distributions'
    support (the check `critflow validate` makes of drawn shares)."""

    values: np.ndarray  # (N, D)
    column_of: dict[int, int]
    first: int = 0
    support: bool = False

    @property
    def n(self) -> int:
        return self.values.shape[0]

    def of(self, uncertain: Uncertain) -> np.ndarray:
        return self.values[:, self.column_of[id(uncertain)]]

    def has(self, uncertain: Uncertain) -> bool:
        return id(uncertain) in self.column_of


U_TOP = float(np.nextafter(1.0, 0.0))
"""The largest uniform draw a sampler can make (draws lie in [0, 1)): ``ppf(U_TOP)`` is the top of
what can be drawn — the support's upper end, or about 8.2 standard deviations for an unbounded one."""


def support_bounds(uncertain: Uncertain) -> tuple[float, float]:
    """Lowest and highest value a sampler can draw from ``uncertain``: ``ppf(0)`` and
    ``ppf(U_TOP)``."""
    low, high = uncertain.ppf(np.array([0.0, U_TOP]))
    return float(low), float(high)


@dataclass(frozen=True)
class Sampler:
    """Draws for chunk ``c`` of ``size`` samples; independent of where the chunk runs."""

    inputs: tuple[UncertainInput, ...]
    seed: int
    method: str = "random"

    def uniforms(self, chunk: int, size: int, chunk_size: int) -> np.ndarray:
        d = len(self.inputs)
        if d == 0:
            return np.zeros((size, 0))
        from scipy.stats import qmc  # only when sampling: scipy.stats costs ~0.5 s to import

        if self.method == "sobol":
            engine = qmc.Sobol(d, scramble=True, seed=self.seed)
            if chunk:
                engine.fast_forward(chunk * chunk_size)
            return engine.random(size)
        rng = np.random.default_rng(np.random.SeedSequence(self.seed).spawn(chunk + 1)[chunk])
        if self.method == "lhs":  # stratified within each chunk
            return qmc.LatinHypercube(d, seed=rng).random(size)
        return rng.random((size, d))

    def draws(self, chunk: int, size: int, chunk_size: int) -> Draws:
        u = self.uniforms(chunk, size, chunk_size)
        with np.errstate(all="ignore"):
            values = (
                np.column_stack([x.value.ppf(u[:, i]) for i, x in enumerate(self.inputs)])
                if self.inputs
                else u
            )
        broken = np.flatnonzero(~np.isfinite(values).all(axis=0)) if self.inputs else []
        if len(broken):
            from critflow.errors import CritflowError, Problem

            raise CritflowError(
                [
                    Problem(
                        self.inputs[i].label,
                        f"the {self.inputs[i].value.distribution} distribution gives draws that "
                        "are not finite numbers (NaN or infinity)",
                        "Check its parameters: values near the float limit (1e308) or shapes near "
                        "zero make its inverse CDF overflow.",
                    )
                    for i in broken
                ]
            )
        return Draws(
            values, {id(x.value): i for i, x in enumerate(self.inputs)}, first=chunk * chunk_size
        )
