"""Named indicators that rules and comparisons can ask for.

Each indicator returns one value per scenario and period, shape (S, P), as a fraction unless its
unit says otherwise. Some are computed from the model's flows and tags (fates, products, origins);
some are defined by the model itself in its ``indicators:`` block (the CRMA benchmarks need to know
which flows are EU extraction, consumption and so on); the ``*_change`` indicators compare with a
reference scenario.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from critflow import data
from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, known, nearest
from critflow.indicators import circularity
from critflow.indicators.flows import element_index, flow_mask, ratio, system_inputs, total
from critflow.indicators.recovery import recycling_arrays
from critflow.indicators.tracing import origin_masses
from critflow.model.load import Model


class IndicatorNotAvailableError(Exception):
    """An indicator that cannot be computed for this model; the message says why."""


@dataclass
class Context:
    """What indicators read: a model, its solved flows and, optionally, a reference scenario."""

    model: Model
    results: FlowResults
    reference: str | None = None
    _cache: dict = field(default_factory=dict)

    def cached(self, key: str, compute: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def origins(self) -> dict[str, np.ndarray]:
        return self.cached("origins", lambda: origin_masses(self.model, self.results))


@dataclass(frozen=True)
class Indicator:
    name: str
    description: str
    compute: Callable[[Context, str | None], np.ndarray]
    element: str = "optional"  # 'required', 'optional' or 'none'
    unit: str = "fraction"


def _select(values: np.ndarray, ctx: Context, element: str | None, what: str) -> np.ndarray:
    """(S, P, E) → (S, P): one element, or the goods mass (sum over elements)."""
    if element is None:
        return values.sum(axis=-1)
    return values[..., element_index(ctx.model, element, what)]


def _products(ctx: Context) -> np.ndarray:
    mask = flow_mask(ctx.model, lambda f, a, b: f.product is not None)
    if not mask.any():
        raise IndicatorNotAvailableError(
            "the model names no product flows (add product: NAME to its product flows)"
        )
    return mask


def _recycling_efficiency(ctx: Context, element: str | None) -> np.ndarray:
    recycled, entering = recycling_arrays(ctx.model, ctx.results)
    return ratio(
        _select(recycled, ctx, element, "recycling_efficiency"),
        _select(entering, ctx, element, "recycling_efficiency"),
    )


def _material_recovery(ctx: Context, element: str | None) -> np.ndarray:
    return _recycling_efficiency(ctx, element)


def _secondary_share(ctx: Context, element: str | None) -> np.ndarray:
    inputs = system_inputs(ctx.model)
    secondary = flow_mask(
        ctx.model, lambda f, a, b: a == "source" and f.origin in ("pre_consumer", "post_consumer")
    )
    what = "secondary_supply_share"
    return ratio(
        _select(total(ctx.results, secondary), ctx, element, what),
        _select(total(ctx.results, inputs), ctx, element, what),
    )


def _inputs_by_origin(ctx: Context, element: str | None, what: str) -> dict[str, np.ndarray]:
    """Source inflow per origin, (S, P) each."""
    values = {}
    for origin in ("primary", "pre_consumer", "post_consumer"):
        mask = flow_mask(
            ctx.model, lambda f, a, b, o=origin: a == "source" and (f.origin or "primary") == o
        )
        values[origin] = _select(total(ctx.results, mask), ctx, element, what)
    return values


def _recycling_input_rate(ctx: Context, element: str | None) -> np.ndarray:
    v = _inputs_by_origin(ctx, element, "recycling_input_rate")
    return circularity.recycled_content(v["primary"], v["post_consumer"], v["pre_consumer"])


def _old_scrap_ratio(ctx: Context, element: str | None) -> np.ndarray:
    v = _inputs_by_origin(ctx, element, "old_scrap_ratio")
    with np.errstate(invalid="ignore", divide="ignore"):
        return circularity.old_scrap_ratio(v["post_consumer"], v["pre_consumer"])


def _eol_rir(ctx: Context, element: str | None) -> np.ndarray:
    v = _inputs_by_origin(ctx, element, "eol_recycling_input_rate")
    with np.errstate(invalid="ignore", divide="ignore"):
        return circularity.eol_recycling_input_rate(
            v["primary"], v["post_consumer"], v["pre_consumer"]
        )


def _eol_recycling_rate(ctx: Context, element: str | None) -> np.ndarray:
    """Post-consumer material in outputs counted as recycling / post-consumer input (traced)."""
    counted = flow_mask(ctx.model, lambda f, a, b: b == "sink" and f.fate == "recycled")
    post = ctx.origins()["post_consumer"][..., counted].sum(axis=-1)
    inputs = _inputs_by_origin(ctx, element, "eol_recycling_rate")["post_consumer"]
    return ratio(_select(post, ctx, element, "eol_recycling_rate"), inputs)


def _recycled_content(ctx: Context, element: str | None) -> np.ndarray:
    products = _products(ctx)
    origins = ctx.origins()
    recycled = (origins["pre_consumer"] + origins["post_consumer"])[..., products].sum(axis=-1)
    what = "recycled_content"
    return ratio(
        _select(recycled, ctx, element, what),
        _select(total(ctx.results, products), ctx, element, what),
    )


def _waste_per_product(ctx: Context, element: str | None) -> np.ndarray:
    fates = data.table("recycling_fates").set_index("fate")
    waste_fates = {
        f
        for f in fates.index
        if not fates.loc[f, "counts_as_recycling"] and fates.loc[f, "in_input"]
    }
    waste = flow_mask(ctx.model, lambda f, a, b: b == "sink" and f.fate in waste_fates)
    products = _products(ctx)
    what = "waste_per_product"
    return ratio(
        _select(total(ctx.results, waste), ctx, element, what),
        _select(total(ctx.results, products), ctx, element, what),
    )


def crm_elements(model: Model) -> list[int]:
    """Indices of the model's elements that are critical raw materials (CRMA Annex II)."""
    materials = data.table("crma_materials")
    symbols = {
        s for row in materials[materials["critical"]]["elements"].dropna() for s in row.split(";")
    }
    return [i for i, e in enumerate(model.spec.elements) if e in symbols]


def _crm_use(ctx: Context, element: str | None) -> np.ndarray:
    """Primary input of critical raw materials per unit of product mass."""
    crm = (
        crm_elements(ctx.model)
        if element is None
        else [element_index(ctx.model, element, "crm_use")]
    )
    if not crm:
        raise IndicatorNotAvailableError(
            "the model carries no element of the CRMA's critical raw materials"
        )
    primary = flow_mask(
        ctx.model, lambda f, a, b: a == "source" and (f.origin or "primary") == "primary"
    )
    products = _products(ctx)
    return ratio(
        total(ctx.results, primary)[..., crm].sum(axis=-1),
        total(ctx.results, products).sum(axis=-1),
    )


def _material_circularity(ctx: Context, element: str | None) -> np.ndarray:
    """Ellen MacArthur MCI (2019 method, utility X = 1) of the products entering stocks."""
    if element is not None:
        element_index(ctx.model, element, "material_circularity")
    try:
        inputs = ctx.cached("mci", lambda: circularity.model_circularity(ctx.model, ctx.results))
    except circularity.MCINotApplicableError as exc:
        raise IndicatorNotAvailableError(str(exc)) from None
    return np.asarray(inputs.result(element).mci)


def _climate_intensity(ctx: Context, element: str | None) -> np.ndarray:
    from critflow.impact.lca import assess, has_inventories

    if not has_inventories(ctx.model):
        raise IndicatorNotAvailableError(
            "no process declares an inventory (inventory: {electricity: '180 kWh/t', ...})"
        )
    _products(ctx)
    return assess(ctx.model, ctx.results).intensity


def _relative(
    base: Callable[[Context, str | None], np.ndarray], name: str
) -> Callable[[Context, str | None], np.ndarray]:
    def compute(ctx: Context, element: str | None) -> np.ndarray:
        if ctx.reference is None:
            raise IndicatorNotAvailableError(
                f"{name} compares with a reference scenario: give --reference SCENARIO"
            )
        scenarios = list(ctx.results.inputs.scenarios)
        if ctx.reference not in scenarios:
            raise CritflowError(
                "--reference",
                f"the reference scenario '{ctx.reference}' is not among the scenarios run",
                f"{nearest(ctx.reference, scenarios)} Scenarios: {known(scenarios)}.".strip(),
            )
        values = base(ctx, element)
        reference = values[scenarios.index(ctx.reference)][None, :]
        return ratio(values - reference, reference)

    return compute


def _model_defined(name: str) -> Callable[[Context, str | None], np.ndarray]:
    def compute(ctx: Context, element: str | None) -> np.ndarray:
        definition = ctx.model.spec.indicators.get(name)
        if definition is None:
            raise IndicatorNotAvailableError(
                f"the model does not define '{name}' in its indicators: block"
            )
        return model_indicator(ctx, name)

    return compute


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
        "UNEP RC: old and new scrap / all input to the system",
        _recycling_input_rate,
    ),
    Indicator(
        "old_scrap_ratio", "UNEP OSR: old scrap / (old + new scrap) in the input", _old_scrap_ratio
    ),
    Indicator("eol_recycling_input_rate", "EU EoL-RIR: post-consumer scrap / all input", _eol_rir),
    Indicator(
        "eol_recycling_rate",
        "UNEP EOL-RR: post-consumer input that leaves in outputs counted as recycling (traced)",
        _eol_recycling_rate,
    ),
    Indicator(
        "recycling_efficiency",
        "mass of outputs counted as recycling / input mass (Battery Regulation)",
        _recycling_efficiency,
    ),
    Indicator(
        "material_recovery",
        "element mass in outputs counted as recycling / in the input",
        _material_recovery,
        "required",
    ),
    Indicator(
        "secondary_supply_share",
        "share of the input from pre- and post-consumer scrap",
        _secondary_share,
    ),
    Indicator(
        "recycled_content",
        "share of pre- and post-consumer material in the product flows (traced)",
        _recycled_content,
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

INDICATORS: dict[str, Indicator] = {i.name: i for i in _BUILT_IN} | {
    name: Indicator(name, "defined by the model's indicators: block", _model_defined(name), "none")
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


__all__ = [
    "INDICATORS",
    "MODEL_DEFINED",
    "Context",
    "Indicator",
    "IndicatorNotAvailableError",
    "evaluate_indicator",
    "lookup",
]
