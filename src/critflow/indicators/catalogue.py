"""Named indicators that rules and comparisons can ask for.

Each indicator returns one value per scenario and period, shape (S, P), as a fraction unless its
unit says otherwise. Some are computed from the model's flows and tags (fates, products, origins,
roles); some are defined by the model itself in its ``indicators:`` block (the CRMA benchmarks need
to know which flows are EU extraction, consumption and so on); the ``*_change`` indicators compare
with a reference scenario or a reference year.

Shares of supply from recycling are taken on the system's demand (the inputs of the processes
marked ``consumption: true``, or the outputs of its one market), with the origin of every flow
traced by mass balance through loops and stocks; a model that does not represent demand gets
"not available, because …", never 0 % or 100 %. An element argument may name one element or a
group: ``SRM`` (the strategic raw materials the model carries, summed) or ``CRM``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, nearest, suggest
from critflow.indicators import circularity
from critflow.indicators.flows import (
    IndicatorNotAvailableError,
    demand_flows,
    element_index,
    element_indices,
    flow_mask,
    group_elements,
    ratio,
    system_inputs,
    total,
)
from critflow.indicators.recovery import fate_mask, recycling_arrays
from critflow.indicators.tracing import SECONDARY, origin_labels, origin_masses, role_masses
from critflow.model.core import Model


@dataclass
class Context:
    """What indicators read: a model, its solved flows and, optionally, what relative indicators
    compare with: a reference scenario, or a reference year of the same scenario.

    A ``reference`` that is no scenario of the results but a year ('2023') is a reference year.
    ``cache`` holds what several indicators read (origins, the MCI inputs, the LCA); contexts of
    the same model and results may share one (a :class:`critflow.analysis.Run` shares its own).
    """

    model: Model
    results: FlowResults
    reference: str | None = None
    reference_year: int | None = None
    cache: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (
            self.reference is not None
            and self.reference not in self.results.inputs.scenarios
            and re.fullmatch(r"\d{4}", self.reference.strip())
        ):
            self.reference_year, self.reference = int(self.reference), None

    def cached(self, key: str, compute: Callable[[], object]):
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def origins(self) -> dict[str, np.ndarray]:
        return self.cached("origins", lambda: origin_masses(self.model, self.results))

    def mci_inputs(self) -> circularity.ModelCircularity:
        """The MCI inputs of the products entering stocks (raises MCINotApplicableError)."""
        return self.cached("mci", lambda: circularity.model_circularity(self.model, self.results))

    def impacts(self):
        """The LCA of the solved flows (:func:`critflow.impact.assess`), computed once per cache;
        None when no process declares an inventory."""
        from critflow.impact.lca import assess, has_inventories

        if not has_inventories(self.model):
            return None
        return self.cached("impacts", lambda: assess(self.model, self.results))


@dataclass(frozen=True)
class Indicator:
    name: str
    description: str
    compute: Callable[[Context, str | None], np.ndarray]
    element: str = "optional"  # 'required', 'optional' or 'none'
    unit: str = "fraction"


def _select(values: np.ndarray, ctx: Context, element: str | None, what: str) -> np.ndarray:
    """(S, P, E) → (S, P): one element, a group of elements (SRM, CRM) summed, or the goods mass
    (sum over all elements)."""
    if element is None:
        return values.sum(axis=-1)
    return values[..., element_indices(ctx.model, element, what)].sum(axis=-1)


def _products(ctx: Context) -> np.ndarray:
    """(F, E) True for the element masses that are products: flows with ``product:``, without an
    element whose fate says it is not recovered there (Nd dissolved in a steel scrap)."""
    mask = flow_mask(ctx.model, lambda f, a, b: f.product is not None)
    if not mask.any():
        raise IndicatorNotAvailableError(
            "the model names no product flows (add product: NAME to its product flows)"
        )
    has_fate = np.array([f.fate is not None for f in ctx.model.spec.flows])[:, None]
    not_recovered = has_fate & ~fate_mask(ctx.model, "counts_as_recycling", outputs_only=False)
    return mask[:, None] & ~not_recovered


def _masked(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(S, P, E, F) summed over the flows of an (F, E) or (F,) mask → (S, P, E)."""
    if mask.ndim == 1:
        return values[..., mask].sum(axis=-1)
    return (values * mask.T[None, None]).sum(axis=-1)


def _recycling_efficiency(ctx: Context, element: str | None) -> np.ndarray:
    recycled, entering = ctx.cached("recycling", lambda: recycling_arrays(ctx.model, ctx.results))
    return ratio(
        _select(recycled, ctx, element, "recycling_efficiency"),
        _select(entering, ctx, element, "recycling_efficiency"),
    )


def _material_recovery(ctx: Context, element: str | None) -> np.ndarray:
    return _recycling_efficiency(ctx, element)


def _demand_by_origin(
    ctx: Context, element: str | None, what: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Mass of each origin in the system's demand, and the demand, (S, P) each (traced)."""
    mask = demand_flows(ctx.model)
    origins = ctx.origins()
    by_origin = {
        o: _select(m[..., mask].sum(axis=-1), ctx, element, what) for o, m in origins.items()
    }
    return by_origin, _select(total(ctx.results, mask), ctx, element, what)


def _secondary_share(ctx: Context, element: str | None) -> np.ndarray:
    v, demand = _demand_by_origin(ctx, element, "secondary_supply_share")
    return ratio(sum(v[o] for o in SECONDARY), demand)


def _residue_share(ctx: Context, element: str | None) -> np.ndarray:
    demand_flows(ctx.model)  # a model without demand says so first
    if not flow_mask(ctx.model, lambda f, a, b: f.origin in ("residue", "pre_consumer")).any():
        raise IndicatorNotAvailableError(
            "the model takes in no production residues or manufacturing scrap (no flow with "
            "origin: residue or pre_consumer), so it says nothing about their recycling"
        )
    v, demand = _demand_by_origin(ctx, element, "production_residue_share")
    return ratio(v["residue"] + v["pre_consumer"], demand)


def _recycling_input_rate(ctx: Context, element: str | None) -> np.ndarray:
    v, demand = _demand_by_origin(ctx, element, "recycling_input_rate")
    return ratio(v["pre_consumer"] + v["post_consumer"], demand)


def _old_scrap_ratio(ctx: Context, element: str | None) -> np.ndarray:
    v, _ = _demand_by_origin(ctx, element, "old_scrap_ratio")
    return ratio(v["post_consumer"], v["post_consumer"] + v["pre_consumer"])


def _eol_rir(ctx: Context, element: str | None) -> np.ndarray:
    v, demand = _demand_by_origin(ctx, element, "eol_recycling_input_rate")
    return ratio(v["post_consumer"], demand)


def _eol_recycling_rate(ctx: Context, element: str | None) -> np.ndarray:
    """Post-consumer material that is functionally recycled — in outputs whose fate (per element)
    counts as recycling, or back in the system's demand — / post-consumer material entering the
    system (sources marked post_consumer, end-of-life outflows of stocks), traced."""
    what = "eol_recycling_rate"
    recycled = fate_mask(ctx.model, "counts_as_recycling")
    demand = np.zeros(len(ctx.model.spec.flows), bool)
    with contextlib.suppress(IndicatorNotAvailableError):
        demand = demand_flows(ctx.model)
    # counted where it first arrives: material in the demand goes no further in this trace, so
    # what circles through a loop downstream of the demand (home scrap), or then leaves in a
    # product counted as recycling, is not counted again
    post = (
        origin_masses(ctx.model, ctx.results, absorb=demand)["post_consumer"]
        if demand.any()
        else ctx.origins()["post_consumer"]
    )
    recycled = recycled | demand[:, None]
    entering = np.array(origin_labels(ctx.model), dtype=object) == "post_consumer"
    return ratio(
        _select(_masked(post, recycled), ctx, element, what),
        _select(_masked(post, entering), ctx, element, what),
    )


def _recycled_content(ctx: Context, element: str | None) -> np.ndarray:
    products = _products(ctx)
    origins = ctx.origins()
    recycled = _masked(origins["pre_consumer"] + origins["post_consumer"], products)
    what = "recycled_content"
    return ratio(
        _select(recycled, ctx, element, what),
        _select(_masked(ctx.results.mass_kg, products), ctx, element, what),
    )


def _feed(ctx: Context) -> np.ndarray:
    """(F,) flows out of sources that bring in what is processed (role feed, the default)."""
    return flow_mask(ctx.model, lambda f, a, b: a == "source" and (f.role or "feed") == "feed")


def _product_yield(ctx: Context, element: str | None) -> np.ndarray:
    """Feed-derived mass in the products / feed: a flux or reagent that ends up in a product (a
    slag holding the flux) is no yield of the feed, so the value stays at most 1 kg/kg for a plant
    (a value chain whose feed is primary supply can exceed 1: products per primary input)."""
    what = "product_yield"
    feed = _feed(ctx)
    sources = system_inputs(ctx.model)
    if (sources & ~feed).any():  # additives, fuels or water enter: count what comes from feed
        from_feed = ctx.cached("roles", lambda: role_masses(ctx.model, ctx.results))["feed"]
    else:
        from_feed = ctx.results.mass_kg
    return ratio(
        _select(_masked(from_feed, _products(ctx)), ctx, element, what),
        _select(total(ctx.results, feed), ctx, element, what),
    )


def _waste_per_product(ctx: Context, element: str | None) -> np.ndarray:
    waste = fate_mask(ctx.model, "waste")
    what = "waste_per_product"
    return ratio(
        _select(_masked(ctx.results.mass_kg, waste), ctx, element, what),
        _select(_masked(ctx.results.mass_kg, _products(ctx)), ctx, element, what),
    )


def crm_elements(model: Model) -> list[int]:
    """Indices of the model's elements that are critical raw materials (CRMA Annex II)."""
    return group_elements(model, "CRM")


def _crm_use(ctx: Context, element: str | None) -> np.ndarray:
    """Primary input of critical raw materials per unit of product mass."""
    crm = (
        crm_elements(ctx.model)
        if element is None
        else element_indices(ctx.model, element, "crm_use")
    )
    if not crm:
        raise IndicatorNotAvailableError(
            "the model carries no element of the CRMA's critical raw materials"
        )
    primary = flow_mask(
        ctx.model, lambda f, a, b: a == "source" and (f.origin or "primary") == "primary"
    )
    return ratio(
        total(ctx.results, primary)[..., crm].sum(axis=-1),
        _masked(ctx.results.mass_kg, _products(ctx)).sum(axis=-1),
    )


def _material_circularity(ctx: Context, element: str | None) -> np.ndarray:
    """Ellen MacArthur MCI (2019 method, utility X = 1) of the products entering stocks."""
    if element is not None:
        element_index(ctx.model, element, "material_circularity")
    try:
        inputs = ctx.mci_inputs()
    except circularity.MCINotApplicableError as exc:
        raise IndicatorNotAvailableError(str(exc)) from None
    return np.asarray(inputs.result(element).mci)


def _climate_intensity(ctx: Context, element: str | None) -> np.ndarray:
    from critflow.impact.lca import has_inventories

    if not has_inventories(ctx.model):
        raise IndicatorNotAvailableError(
            "no process declares an inventory (inventory: {electricity: '180 kWh/t', ...})"
        )
    _products(ctx)
    return ctx.impacts().intensity


def reference_values(ctx: Context, values: np.ndarray, what: str) -> np.ndarray:
    """What each value (S, P) is compared with: the same period of the reference scenario, or
    the reference year of the same scenario; (S, P)."""
    if ctx.reference is not None:
        scenarios = list(ctx.results.inputs.scenarios)
        if ctx.reference not in scenarios:
            raise CritflowError(
                "reference=",
                f"the reference scenario '{ctx.reference}' is not among the scenarios run",
                suggest(ctx.reference, scenarios, "Scenarios"),
            )
        return np.broadcast_to(values[scenarios.index(ctx.reference)][None, :], values.shape)
    if ctx.reference_year is not None:
        periods = [int(p) for p in ctx.results.inputs.periods]
        if ctx.reference_year not in periods:
            raise IndicatorNotAvailableError(
                f"{what} compares with the reference year {ctx.reference_year}, which is not a "
                f"period of the model ({periods[0]}–{periods[-1]}): model that year, or give a "
                "reference scenario (reference=, a scenario of the state of the art)"
            )
        return np.broadcast_to(values[:, [periods.index(ctx.reference_year)]], values.shape)
    raise IndicatorNotAvailableError(
        f"{what} compares with a reference: give a reference scenario or year (reference=)"
    )


def _relative(
    base: Callable[[Context, str | None], np.ndarray], name: str
) -> Callable[[Context, str | None], np.ndarray]:
    def compute(ctx: Context, element: str | None) -> np.ndarray:
        if ctx.reference is None and ctx.reference_year is None:
            raise IndicatorNotAvailableError(
                f"{name} compares with a reference scenario or year: give one (reference=, "
                "a scenario or a year such as 2023)"
            )
        values = base(ctx, element)
        reference = reference_values(ctx, values, name)
        return ratio(values - reference, reference)

    return compute


def _model_defined(name: str) -> Callable[[Context, str | None], np.ndarray]:
    def compute(ctx: Context, element: str | None) -> np.ndarray:
        definition = ctx.model.spec.indicators.get(name)
        if definition is None and name in REGIONAL and ctx.model.spec._expansion is not None:
            return _regional(ctx, name, element)
        if definition is None:
            raise IndicatorNotAvailableError(
                f"the model does not define '{name}' in its indicators: block"
                + (" and has no region dimension to compute it from" if name in REGIONAL else "")
            )
        return model_indicator(ctx, name)

    return compute


def _regional(ctx: Context, name: str, element: str | None) -> np.ndarray:
    """A CRMA benchmark computed from a regional model's labels (:mod:`.regional`)."""
    from critflow.indicators import regional

    if name == regional.DEPENDENCY_INDICATOR:
        return regional.largest_third_country_share(ctx.model, ctx.results, element, ctx.cache)
    activity = regional.SHARE_INDICATORS[name]
    return regional.activity_share(ctx.model, ctx.results, activity, element, ctx.cache)


def model_indicator(ctx: Context, name: str) -> np.ndarray:
    """Value (S, P) of an indicator defined in the model's ``indicators:`` block."""
    definition = ctx.model.spec.indicators[name]
    index = ctx.results.inputs.topology.flow_index
    mass = ctx.results.mass_kg
    if definition.element is not None:
        mass = mass[:, :, ctx.model.spec.elements.index(definition.element)]
    else:
        mass = mass.sum(axis=2)  # (S, P, F)
    denominator = mass[..., [index[f] for f in definition.denominator]].sum(axis=-1)
    if definition.numerator is not None:
        numerator = mass[..., [index[f] for f in definition.numerator]].sum(axis=-1)
    else:
        numerator = mass[..., [index[f] for f in definition.largest_of]].max(axis=-1)
    return ratio(numerator, denominator)


_BUILT_IN = [
    Indicator(
        "recycling_input_rate",
        "UNEP RC: old and new scrap in the system's demand / the demand (traced)",
        _recycling_input_rate,
    ),
    Indicator(
        "old_scrap_ratio",
        "UNEP OSR: old scrap / (old + new scrap) in the system's demand (traced)",
        _old_scrap_ratio,
    ),
    Indicator(
        "eol_recycling_input_rate",
        "EU EoL-RIR: post-consumer material in the system's demand / the demand (traced)",
        _eol_rir,
    ),
    Indicator(
        "eol_recycling_rate",
        "UNEP EOL-RR: end-of-life material recycled (outputs counted as recycling, or back in "
        "the demand) / end-of-life material entering (traced)",
        _eol_recycling_rate,
    ),
    Indicator(
        "recycling_efficiency",
        "feed-derived mass of outputs counted as recycling / input fraction (Battery "
        "Regulation Art. 3(60); additives, fuels, water not counted)",
        _recycling_efficiency,
    ),
    Indicator(
        "material_recovery",
        "element mass in outputs counted as recycling (fate per element) / in the input fraction",
        _material_recovery,
        "required",
    ),
    Indicator(
        "secondary_supply_share",
        "share of the system's demand supplied by secondary material (pre-, post-consumer, "
        "residues), traced through loops and stocks",
        _secondary_share,
    ),
    Indicator(
        "production_residue_share",
        "share of the system's demand supplied from production residues and manufacturing "
        "scrap (origins residue, pre_consumer), traced",
        _residue_share,
    ),
    Indicator(
        "recycled_content",
        "share of pre- and post-consumer material in the product flows (traced)",
        _recycled_content,
    ),
    Indicator(
        "product_yield",
        "feed-derived mass of products per mass of feed (production efficiency)",
        _product_yield,
        unit="kg/kg",
    ),
    Indicator(
        "waste_per_product",
        "mass of outputs to waste fates per mass of products",
        _waste_per_product,
        unit="kg/kg",
    ),
    Indicator(
        "crm_use",
        "primary critical-raw-material input per mass of products",
        _crm_use,
        unit="kg/kg",
    ),
    Indicator(
        "material_circularity",
        "Ellen MacArthur MCI (2019; X = 1) of the products entering stocks: recycled feedstock, "
        "end of life collected and recycled",
        _material_circularity,
    ),
    Indicator(
        "climate_intensity",
        "climate-change impact (GWP100) of the system per mass of products",
        _climate_intensity,
        "none",
        unit="kg CO2-eq/kg",
    ),
    Indicator(
        "climate_intensity_change",
        "relative change of climate_intensity against the reference scenario",
        _relative(_climate_intensity, "climate_intensity_change"),
        "none",
    ),
    Indicator(
        "crm_use_change",
        "relative change of crm_use against the reference scenario",
        _relative(_crm_use, "crm_use_change"),
    ),
    Indicator(
        "waste_per_product_change",
        "relative change of waste_per_product against the reference scenario",
        _relative(_waste_per_product, "waste_per_product_change"),
    ),
]
MODEL_DEFINED = (
    "eu_extraction_share",
    "eu_processing_share",
    "eu_recycling_share",
    "largest_third_country_share",
    "responsible_mining_share",
)
"""Indicators rules may name that each model defines for itself (which flows are which)."""

REGIONAL = (
    "eu_extraction_share",
    "eu_processing_share",
    "eu_recycling_share",
    "largest_third_country_share",
)
"""Model-defined indicators a model with a region dimension gets without defining them: Union
output / Union consumption per activity, and the largest third-country share of consumption at any
stage (each SRM's worst when no element is named)."""

INDICATORS: dict[str, Indicator] = {i.name: i for i in _BUILT_IN} | {
    name: Indicator(
        name,
        "defined by the model's indicators: block"
        + (", or computed from a regional model (worst SRM)" if name in REGIONAL else ""),
        _model_defined(name),
        "optional" if name in REGIONAL else "none",
    )
    for name in MODEL_DEFINED
}


def lookup(name: str, model: Model | None = None, where: str = "indicator") -> Indicator:
    """The indicator called ``name``: built in, or defined by the model; a clear error otherwise."""
    if name in INDICATORS:
        return INDICATORS[name]
    if model is not None and name in model.spec.indicators:
        return Indicator(
            name,
            model.spec.indicators[name].description or "defined by the model",
            _model_defined(name),
            "none",
        )
    names = sorted(INDICATORS) + sorted(model.spec.indicators if model else [])
    raise CritflowError(
        where,
        f"'{name}' is not an indicator critflow knows",
        f"{nearest(name, names)} Indicators: {', '.join(names)}; a model may define its own under indicators:.".strip(),
    )


def evaluate_indicator(
    ctx: Context, name: str, element: str | None = None, where: str = "indicator"
) -> np.ndarray:
    """Values (S, P) of indicator ``name`` (for ``element`` where it takes one)."""
    indicator = lookup(name, ctx.model, where)
    if indicator.element == "required" and element is None:
        raise CritflowError(
            where, f"'{name}' is computed per element", "Name the element (element: Co)."
        )
    return indicator.compute(ctx, element)


TRACED: frozenset[str] = frozenset(
    {
        "eol_recycling_rate",
        "recycled_content",
        "secondary_supply_share",
        "production_residue_share",
        "recycling_input_rate",
        "old_scrap_ratio",
        "eol_recycling_input_rate",
    }
)
"""Indicators that trace origins through the whole system (a second solve of the flows)."""

__all__ = [
    "INDICATORS",
    "MODEL_DEFINED",
    "TRACED",
    "Context",
    "Indicator",
    "IndicatorNotAvailableError",
    "evaluate_indicator",
    "lookup",
]
