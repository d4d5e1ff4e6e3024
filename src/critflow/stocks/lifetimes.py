"""Lifetime distributions of products in use: survival by age, in years.

Each distribution is named as the dynamic-stock literature names it and takes the parameters the
MFA tools take (flodym, ODYM), so a model moves between them without conversion:

==============  ================================================================================
fixed           ``mean``: every unit leaves when it reaches this age
normal          ``mean``, ``std`` of the normal distribution (no truncation at age 0, as in flodym)
folded_normal   ``mean``, ``std`` of the normal distribution *before* folding at age 0
lognormal       ``mean``, ``std`` of the lognormal lifetime itself (not of its logarithm)
weibull         ``shape`` (k), ``scale`` (λ, years)
exponential     ``mean`` (1/hazard rate, years)
==============  ================================================================================

Parameters are numbers or arrays broadcast against the series axes; a leading cohort axis makes
them vary by the year a cohort entered the stock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from critflow.errors import CritflowError, Problem


def ndtr(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (scipy.special, imported on first use: ~70 ms at start-up)."""
    from scipy.special import ndtr as _ndtr

    return _ndtr(x)


def ndtri(p: np.ndarray) -> np.ndarray:
    """Inverse of the standard normal CDF (scipy.special, imported on first use)."""
    from scipy.special import ndtri as _ndtri

    return _ndtri(p)


PARAMETERS: dict[str, tuple[str, ...]] = {
    "fixed": ("mean",),
    "normal": ("mean", "std"),
    "folded_normal": ("mean", "std"),
    "lognormal": ("mean", "std"),
    "weibull": ("shape", "scale"),
    "exponential": ("mean",),
}
"""The parameters each distribution needs."""

_RULES: dict[str, tuple[str, str]] = {
    "mean": ("> 0", "a mean lifetime in years above 0, such as 12"),
    "std": ("> 0", "a standard deviation in years above 0, such as 3"),
    "shape": ("> 0", "a Weibull shape above 0 (typically 1.5 to 4)"),
    "scale": ("> 0", "a Weibull scale in years above 0, such as 15"),
}


@dataclass(frozen=True)
class Lifetime:
    """A lifetime distribution with its parameters (years).

    ``cohort_varying`` is True when the parameters carry a leading cohort axis (one value per
    inflow year); then the survival of a cohort depends on the year it entered.
    """

    distribution: str
    parameters: dict[str, np.ndarray] = field(default_factory=dict)
    cohort_varying: bool = False

    @classmethod
    def of(cls, distribution: str, where: str = "lifetime", cohort_varying: bool = False, **values):
        """Check and build a lifetime: ``Lifetime.of('weibull', shape=2.3, scale=15.5)``."""
        problems = lifetime_problems(distribution, values, where)
        if problems:
            raise CritflowError(problems)
        arrays = {name: np.asarray(values[name], dtype=float) for name in PARAMETERS[distribution]}
        return cls(distribution, arrays, cohort_varying)

    def standard_parameters(
        self, cohort: slice | np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The parameters in the form the survival formulas take, at the parameters' own shape.

        Conversions (a lognormal's mean and std to its log-scale σ and scale) happen here once, not
        on an array expanded to every age; ``cohort`` selects rows of cohort-varying parameters.
        """
        prm = {
            k: (v[cohort] if (self.cohort_varying and cohort is not None) else v)
            for k, v in self.parameters.items()
        }
        if self.distribution == "lognormal":
            mean2, std2 = prm["mean"] ** 2, prm["std"] ** 2
            mu = np.log(mean2 / np.sqrt(mean2 + std2))
            return {"s": np.sqrt(np.log1p(std2 / mean2)), "scale": np.exp(mu)}
        if self.distribution == "folded_normal":
            return {"c": prm["mean"] / prm["std"], "scale": prm["std"]}
        return prm

    def survival(self, ages: np.ndarray, cohort: slice | np.ndarray | None = None) -> np.ndarray:
        """Share of a cohort still in use at ``ages`` (years since it entered).

        ``ages`` broadcasts against the parameters; for cohort-varying lifetimes ``cohort`` selects
        the parameter rows that line up with the leading axis of ``ages``.
        """
        return survival_of(self.distribution, ages, self.standard_parameters(cohort))

    def longest_age(self, tail: float = 1e-12) -> float:
        """An age (years) by which all but ``tail`` of every cohort has left the stock."""
        p = {k: np.asarray(v, dtype=float) for k, v in self.parameters.items()}
        d = self.distribution
        if d == "fixed":
            ages = p["mean"]
        elif d == "normal" or d == "folded_normal":
            ages = p["mean"] - ndtri(tail) * p["std"]
        elif d == "lognormal":
            ages = p["mean"] + 200.0 * p["std"]
            ages = np.minimum(ages, 2000.0)
        elif d == "weibull":
            ages = p["scale"] * (-np.log(tail)) ** (1.0 / p["shape"])
        else:
            ages = p["mean"] * -np.log(tail)
        return float(np.max(ages))


def survival_of(distribution: str, ages: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Survival at ``ages`` (>= 0) from :meth:`Lifetime.standard_parameters`.

    The formulas are scipy.stats' ``sf`` written out (the same operations, so the same numbers to
    the last bit, checked in the tests) without its argument checks and broadcasting machinery,
    which cost more than the special function on large arrays.
    """
    if distribution == "fixed":
        return (ages < p["mean"]).astype(float)
    if distribution == "normal":
        return ndtr(-((ages - p["mean"]) / p["std"]))
    if distribution == "exponential":
        return np.exp(-np.maximum(ages, 0.0) / p["mean"])
    if distribution == "lognormal":
        with np.errstate(divide="ignore"):  # log(0) = -inf: survival 1 at age 0
            sf = ndtr(-(np.log(ages / p["scale"]) / p["s"]))
    elif distribution == "weibull":
        sf = np.exp(-np.power(ages / p["scale"], p["shape"]))
    elif distribution == "folded_normal":
        x = ages / p["scale"]
        sf = ndtr(-(x - p["c"])) + ndtr(-(x + p["c"]))
    else:
        raise AssertionError(distribution)  # excluded by lifetime_problems
    if np.any(np.asarray(ages) <= 0):  # scipy.stats: survival 1 at and below the support's start
        sf = np.where(ages <= 0, 1.0, sf)
    return sf


def lifetime_problems(distribution: str, values: dict, where: str) -> list[Problem]:
    """What is wrong with a distribution name and its parameters (empty when all is well)."""
    if distribution not in PARAMETERS:
        return [
            Problem(
                f"{where}.distribution",
                f"'{distribution}' is not a lifetime distribution critflow knows",
                f"Use one of {', '.join(PARAMETERS)}.",
            )
        ]
    needed = PARAMETERS[distribution]
    problems = []
    for name in needed:
        if name not in values or values[name] is None:
            problems.append(
                Problem(
                    where,
                    f"the {distribution} lifetime needs '{name}'",
                    f"Add {name}: {_RULES[name][1]} (a {distribution} lifetime takes "
                    f"{', '.join(needed)}).",
                )
            )
            continue
        array = np.asarray(values[name], dtype=float)
        bad = ~np.isfinite(array) | (array <= 0)
        if bad.any():
            problems.append(
                Problem(
                    f"{where}.{name}",
                    f"{name} = {array[bad].flat[0]:g} is impossible for a {distribution} lifetime",
                    f"Give {_RULES[name][1]}.",
                )
            )
    for name in values:
        if name not in needed and values[name] is not None:
            problems.append(
                Problem(
                    f"{where}.{name}",
                    f"a {distribution} lifetime has no parameter '{name}'",
                    f"A {distribution} lifetime takes {', '.join(needed)}.",
                )
            )
    return problems
