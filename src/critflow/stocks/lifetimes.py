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
import scipy.stats

from critflow.errors import CritflowError, Problem

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

    def survival(self, ages: np.ndarray, cohort: slice | np.ndarray | None = None) -> np.ndarray:
        """Share of a cohort still in use at ``ages`` (years since it entered).

        ``ages`` broadcasts against the parameters; for cohort-varying lifetimes ``cohort`` selects
        the parameter rows that line up with the leading axis of ``ages``.
        """
        prm = {
            k: (v[cohort] if (self.cohort_varying and cohort is not None) else v)
            for k, v in self.parameters.items()
        }
        d = self.distribution
        if d == "fixed":
            return (ages < prm["mean"]).astype(float)
        if d == "normal":
            return scipy.stats.norm.sf(ages, loc=prm["mean"], scale=prm["std"])
        if d == "folded_normal":
            return scipy.stats.foldnorm.sf(ages, prm["mean"] / prm["std"], 0, scale=prm["std"])
        if d == "lognormal":
            mean2, std2 = prm["mean"] ** 2, prm["std"] ** 2
            mu = np.log(mean2 / np.sqrt(mean2 + std2))
            sigma = np.sqrt(np.log1p(std2 / mean2))
            return scipy.stats.lognorm.sf(ages, s=sigma, loc=0, scale=np.exp(mu))
        if d == "weibull":
            return scipy.stats.weibull_min.sf(ages, c=prm["shape"], loc=0, scale=prm["scale"])
        if d == "exponential":
            return np.exp(-np.maximum(ages, 0.0) / prm["mean"])
        raise AssertionError(d)  # excluded by lifetime_problems

    def longest_age(self, tail: float = 1e-12) -> float:
        """An age (years) by which all but ``tail`` of every cohort has left the stock."""
        p = {k: np.asarray(v, dtype=float) for k, v in self.parameters.items()}
        d = self.distribution
        if d == "fixed":
            ages = p["mean"]
        elif d == "normal":
            ages = scipy.stats.norm.isf(tail, loc=p["mean"], scale=p["std"])
        elif d == "folded_normal":
            ages = p["mean"] + scipy.stats.norm.isf(tail) * p["std"]
        elif d == "lognormal":
            ages = p["mean"] + 200.0 * p["std"]
            ages = np.minimum(ages, 2000.0)
        elif d == "weibull":
            ages = p["scale"] * (-np.log(tail)) ** (1.0 / p["shape"])
        else:
            ages = p["mean"] * -np.log(tail)
        return float(np.max(ages))


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
