"""The value-chain model file (YAML or JSON), as pydantic models.

A model is a system of processes joined by flows; every flow carries a mass of each element.
Values are mass flows in the model's ``unit`` unless a quantity string such as ``'12 kt/a'`` says
otherwise. ``critflow schema`` prints the JSON Schema generated from these classes.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from critflow.errors import field_path, validation_message
from critflow.model.uncertainty import Uncertain, is_uncertain_mapping

FORMAT_VERSION = 1
REMAINDER = "rest"
"""Name of the remainder element: goods mass = sum of all elements, 'rest' included."""

_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")
_EXPANDED_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*(\[[A-Za-z0-9_\-.,>]+\])?$")
"""An id a model with dimensions generates for each coordinate ('refining[FL]', 'refined[CN>FL]',
critflow.model.dimensions); accepted only when validating such an expanded model."""
EXPANDED = "expanded"
"""Validation context key: the data is a model expanded from its dimensions."""


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _check_id(value: Any, info: ValidationInfo) -> str:
    pattern = _EXPANDED_ID if (info.context or {}).get(EXPANDED) else _ID
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(
            f"{value!r} is not a valid id: use letters, digits, '_', '-' or '.', "
            "starting with a letter or '_' (for example 'black_mass')"
        )
    return value


def _check_uncertain(value: Any) -> Uncertain:
    """A value with a distribution {value, distribution, low, high, sd, …}."""
    try:
        return Uncertain.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        at = field_path(first["loc"])
        raise ValueError(f"{at + ': ' if at else ''}{validation_message(first, False)}") from None


_PLAIN_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
"""A number written as text ('1.5e3', quoted or read so by an older YAML reader)."""


_NOT_FINITE = re.compile(r"^\s*[-+]?(nan|inf|infinity)\s*$", re.IGNORECASE)


def _finite(value: int | float | str) -> float:
    """``value`` as a finite float; NaN, infinity and overflow are refused."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(
            f"expected a finite number, got {value!r}: critflow refuses NaN and infinity "
            "(and numbers beyond 1.8e308) in a model"
        )
    return number


def _check_number(value: Any) -> float:
    if isinstance(value, str) and (_PLAIN_NUMBER.match(value) or _NOT_FINITE.match(value)):
        return _finite(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {_type_name(value)} {value!r}")
    return _finite(value)


def _check_coefficient(value: Any, uncertain: bool = True) -> float | str | Uncertain:
    if uncertain and is_uncertain_mapping(value):
        return _check_uncertain(value)
    if isinstance(value, bool):
        raise ValueError(f"expected a number or an expression, got {value!r}")
    if isinstance(value, int | float) or (
        isinstance(value, str) and (_PLAIN_NUMBER.match(value) or _NOT_FINITE.match(value))
    ):
        return _finite(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(
        "expected a number (0.93) or an expression of parameters ('1 - li_leach_yield'), "
        f"got {_type_name(value)}"
    )


def _is_year(key: Any) -> bool:
    return (isinstance(key, int) and not isinstance(key, bool)) or (
        isinstance(key, str) and key.strip().isdigit()
    )


def _check_series_or_scalar(value: Any, allow_text: bool, uncertain: bool = False) -> Any:
    """A number (or, when allowed, a string), a time series {year: value}, or (when allowed) a
    value with a distribution."""
    if uncertain and is_uncertain_mapping(value):
        return _check_uncertain(value)
    if isinstance(value, dict):
        if not value:
            raise ValueError("a time series needs at least one {year: value} entry")
        series: dict[int, Any] = {}
        for key, item in value.items():
            if type(key) is int and type(item) is float and math.isfinite(item):
                series[key] = item  # the common case, as the checks below would give it
                continue
            if not _is_year(key):
                raise ValueError(f"time-series key {key!r} is not a year (write {{2025: 1000}})")
            series[int(key)] = (
                _check_coefficient(item, uncertain=False) if allow_text else _check_number(item)
            )
        return dict(sorted(series.items()))
    return _check_coefficient(value, uncertain) if allow_text else _check_number(value)


def _check_flow_value(value: Any) -> Any:
    """Goods mass (number, quantity, expression or time series) or per-element values."""
    if is_uncertain_mapping(value):
        return _check_uncertain(value)
    if isinstance(value, dict) and value and not all(_is_year(k) for k in value):
        if any(_is_year(k) for k in value):
            raise ValueError(
                "mixes years and element names as keys: write either a time series "
                "{2025: 1000, 2030: 1500} or per-element values {Co: 520, Ni: 480}"
            )
        return {
            str(k): _check_series_or_scalar(v, allow_text=True, uncertain=True)
            for k, v in value.items()
        }
    return _check_series_or_scalar(value, allow_text=True)


def is_per_element(value: Any) -> bool:
    """True for a validated flow value given per element ({Co: 520}), not a time series."""
    return isinstance(value, dict) and not all(isinstance(k, int) for k in value)


_UNCERTAIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "a value with a distribution: {value, distribution: triangular|normal|"
    "lognormal|uniform|beta|empirical, low, high, sd, alpha, beta, file, column}",
    "required": ["distribution"],
}


_SCALAR_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {"type": "string", "description": "a quantity ('12 kt/a') or an expression of parameters"},
    ]
}
_SERIES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "time series {year: value}; linear interpolation between years, "
    "constant before the first and after the last year",
    "patternProperties": {r"^\d+$": _SCALAR_SCHEMA},
    "additionalProperties": False,
}

Id = Annotated[
    str, PlainValidator(_check_id), WithJsonSchema({"type": "string", "pattern": _ID.pattern})
]
Coefficient = Annotated[
    float | str | Uncertain,
    PlainValidator(_check_coefficient),
    WithJsonSchema(
        {
            "anyOf": [*_SCALAR_SCHEMA["anyOf"], _UNCERTAIN_SCHEMA],
            "description": "a number, an expression of parameters ('1 - yield') or a distribution",
        }
    ),
]
ParameterValue = Annotated[
    float | dict[int, float] | Uncertain,
    PlainValidator(lambda v: _check_series_or_scalar(v, allow_text=False, uncertain=True)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                _UNCERTAIN_SCHEMA,
                {**_SERIES_SCHEMA, "patternProperties": {r"^\d+$": {"type": "number"}}},
            ]
        }
    ),
]
FlowValue = Annotated[
    Any,
    PlainValidator(_check_flow_value),
    WithJsonSchema(
        {
            "description": "goods mass as a number (in the model's unit), a quantity string "
            "('12 kt/a'), an expression, a time series {year: value}, or per-element values "
            "{Co: 520, Ni: 480} (each itself a number, quantity or time series)",
            "anyOf": [
                *_SCALAR_SCHEMA["anyOf"],
                _SERIES_SCHEMA,
                _UNCERTAIN_SCHEMA,
                {
                    "type": "object",
                    "additionalProperties": {
                        "anyOf": [*_SCALAR_SCHEMA["anyOf"], _SERIES_SCHEMA, _UNCERTAIN_SCHEMA]
                    },
                },
            ],
        }
    ),
]


SeriesValue = Annotated[
    Any,
    PlainValidator(lambda v: _check_series_or_scalar(v, allow_text=True)),
    WithJsonSchema({"anyOf": [*_SCALAR_SCHEMA["anyOf"], _SERIES_SCHEMA]}),
]
"""A number, quantity, expression of parameters, or a time series {year: value}."""


Fate = Literal[
    "recycled",
    "lost",
    "intermediate",
    "energy_recovery",
    "backfilling",
    "landfill",
    "incineration",
    "excluded",
]
"""Fates of outputs, as the Battery Regulation's recycling-efficiency method tells them apart
(``critflow/data/recycling_fates.csv`` says which count and why)."""
Origin = Literal["primary", "pre_consumer", "post_consumer", "residue"]
"""Origins of material: primary, new (pre-consumer) scrap, old (post-consumer) scrap, or
production residues (slags, sludges, ashes, mining waste, waste water) taken back in."""
AS_ENTERED = "as_entered"
"""Origin of a stock's outflow that keeps the origins its cohorts had when they entered (a
stockpile); a stock of products in use releases post-consumer material by default."""
Role = Literal["feed", "additive", "fuel", "energy_carrier", "water"]
"""What a flow out of a source is, for the recycling-efficiency counting: the waste being recycled
(feed, the default) or something the process adds (``critflow/data/recycling_counting.csv``)."""


def _check_fate(value: Any) -> str | dict[str, str]:
    """A fate, or fates per element {default: recycled, Nd: lost}."""
    fates = Fate.__args__
    if isinstance(value, str):
        if value not in fates:
            raise ValueError(f"'{value}' is not a fate: use one of {', '.join(fates)}")
        return value
    if isinstance(value, dict) and value:
        checked = {}
        for key, item in value.items():
            if not isinstance(item, str) or item not in fates:
                raise ValueError(
                    f"fate of '{key}': {item!r} is not a fate: use one of {', '.join(fates)}"
                )
            checked[str(key)] = item
        if "default" not in checked:
            raise ValueError(
                "fates per element need a default for the elements not listed: "
                "{default: recycled, Nd: lost}"
            )
        return checked
    raise ValueError(
        f"a fate is one of {', '.join(fates)}, or fates per element such as "
        "{default: recycled, Nd: lost}"
    )


FateValue = Annotated[
    str | dict[str, str],
    PlainValidator(_check_fate),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(Fate.__args__)},
                {
                    "type": "object",
                    "required": ["default"],
                    "additionalProperties": {"enum": list(Fate.__args__)},
                    "description": "fate per element: {default: recycled, Nd: lost}",
                },
            ]
        }
    ),
]


def fate_of(fate: str | dict[str, str] | None, element: str) -> str | None:
    """The fate of ``element`` in a flow whose fate is ``fate`` (one fate or per element)."""
    if isinstance(fate, dict):
        return fate.get(element, fate["default"])
    return fate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class TimeSpan(_Strict):
    """Periods of the model: every year from ``start`` to ``end`` inclusive."""

    start: int = Field(ge=1, le=9999, description="first year")
    end: int = Field(
        ge=1, le=9999, description="last year (equal to start for a single steady-state period)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> TimeSpan:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


def _check_inventory(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(
            "an inventory is a mapping {item: amount per tonne processed}, such as "
            "{electricity: '180 kWh/t', sulfuric_acid: '0.9 t/t'}"
        )
    checked: dict[str, Any] = {}
    for item, amount in value.items():
        if item == DIRECT_EMISSIONS:
            if not isinstance(amount, dict) or not amount:
                raise ValueError(
                    f"{DIRECT_EMISSIONS} is a mapping {{gas: amount}}, such as {{CO2: '0.01 t/t'}}"
                )
            checked[item] = {
                str(gas): _check_series_or_scalar(v, allow_text=True) for gas, v in amount.items()
            }
        else:
            checked[str(item)] = _check_series_or_scalar(amount, allow_text=True)
    return checked


DIRECT_EMISSIONS = "direct_emissions"
"""Inventory key of a process's own emissions {gas: amount per tonne processed}."""

Inventory = Annotated[
    dict[str, Any],
    PlainValidator(_check_inventory),
    WithJsonSchema(
        {
            "type": "object",
            "description": "amount of each background item per unit of what the process "
            "processes: {electricity: '180 kWh/t', sulfuric_acid: '0.9 t/t', natural_gas: "
            "'0.4 GJ/t', direct_emissions: {CO2: '0.01 t/t'}}; a time series {year: amount} "
            "is allowed",
            "additionalProperties": {
                "anyOf": [*_SCALAR_SCHEMA["anyOf"], _SERIES_SCHEMA, {"type": "object"}]
            },
        }
    ),
]


class ProcessCost(_Strict):
    """Costs of a process for life-cycle costing, in a currency pint knows (EUR, kEUR, MEUR)."""

    capex: SeriesValue | None = Field(None, description="investment, e.g. '45 MEUR'")
    lifetime: SeriesValue | None = Field(None, description="economic lifetime, e.g. '20 a'")
    opex_fixed: SeriesValue | None = Field(
        None, description="fixed operating cost per year (labour, maintenance), e.g. '3 MEUR/a'"
    )


Activity = Literal["extraction", "processing", "recycling"]
"""Value-chain activities of Regulation (EU) 2024/1252 Art. 5(1)(a)."""
Stage = Literal["ore", "concentrate", "refined", "intermediate", "product", "scrap"]
"""Stages at which material is traded (CRMA Art. 5(1)(b): 'at any relevant stage of processing')."""


class Dimension(_Strict):
    """A dimension of a model beyond element and period: its coordinates and named groups."""

    coordinates: list[str] = Field(min_length=1, description="coordinates, e.g. [FL, BE-other, CN]")
    groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="named groups of coordinates, e.g. {EU: [FL, BE-other, EU-other]}; the group "
        "named by scope.region (EU by default) is the Union of the CRMA indicators",
    )
    aggregates: list[str] = Field(
        default_factory=list,
        description="coordinates that stand for several countries (RoW): never 'a single third "
        "country' in the largest third-country share",
    )


class _ProcessBase(_Strict):
    id: Id
    name: str | None = Field(None, description="display name")
    description: str | None = None
    consumption: bool = Field(
        False,
        description="true for the process whose inputs are the system's demand (a region's "
        "consumption): shares of supply from recycling are taken on them; without it, the "
        "outputs of the model's one market are the demand",
    )
    inventory: Inventory | None = None
    inventory_basis: str | None = Field(
        None,
        description="what the inventory is per: 'input' (goods mass entering, the default), "
        "'output' (goods mass leaving, the default for sources) or the id of one flow",
    )
    cost: ProcessCost | None = None
    over: list[str] | dict[str, list[str]] | None = Field(
        None,
        description="dimensions the process spans (a model with dimensions:): [region] for every "
        "coordinate, or {region: [FL, BE-other]} for some; one process per coordinate",
    )
    activity: Activity | None = Field(
        None,
        description="what the process does in the CRMA's terms (extraction, processing, "
        "recycling): its outputs other than losses count as that stage's production; on the "
        "source of a balancing supply split by origin_shares, each origin's part counts at that "
        "origin (EU refiners among the origins of refined supply)",
    )


class SourceProcess(_ProcessBase):
    """Where material enters the system (mine, import, collection)."""

    kind: Literal["source"]


class SinkProcess(_ProcessBase):
    """Where material leaves the system (product market, landfill, export, emissions)."""

    kind: Literal["sink"]


class TransferProcess(_ProcessBase):
    """A unit operation or sector that splits what enters over its outputs."""

    kind: Literal["transfer"]
    transfer: dict[str, dict[str, Coefficient]] | None = Field(
        None,
        description="per output flow id: share of each element entering that leaves by that flow, "
        "{default: 0.06, Li: 0.85}; for every element the shares over all outputs sum to 1. "
        "May be left out when the process has a single output.",
    )


class MarketProcess(_ProcessBase):
    """Balances supply and demand; the declared balancing input closes the balance."""

    kind: Literal["market"]
    balancing: Id = Field(
        description="id of the input flow that closes the balance (primary supply, import)"
    )


class Lifetime(_Strict):
    """How long products stay in use (years). Which parameters a distribution takes:
    fixed: mean; normal: mean, std; folded_normal: mean, std (of the normal before folding);
    lognormal: mean, std (of the lifetime itself); weibull: shape, scale; exponential: mean.
    A time series {year: value} makes a parameter vary by the year a cohort enters."""

    distribution: Literal["fixed", "normal", "folded_normal", "lognormal", "weibull", "exponential"]
    mean: SeriesValue | None = Field(None, description="mean lifetime, years")
    std: SeriesValue | None = Field(None, description="standard deviation, years")
    shape: SeriesValue | None = Field(None, description="Weibull shape k")
    scale: SeriesValue | None = Field(None, description="Weibull scale, years")


class InitialStock(_Strict):
    """What is in use at the end of the year before the model's first year."""

    total: SeriesValue | None = Field(
        None, description="goods mass in use, in the model's mass unit ('t' for 't/a') or '2 Mt'"
    )
    age_distribution: Literal["from_lifetime"] = Field(
        "from_lifetime",
        description="spread the total over ages as a stock fed by a steady inflow would hold it",
    )
    cohorts: dict[int, SeriesValue] | None = Field(
        None, description="goods mass still in use by the year it entered {2012: 3.0e4, …}"
    )
    composition: dict[str, Coefficient] | None = Field(
        None, description="mass fractions of the elements in the stock; the inflow's by default"
    )


class DrivenSwitch(_Strict):
    """Drive a stock by one quantity up to a year and by the other after it."""

    until: int = Field(description="last year driven by the other quantity")
    then: Literal["inflow", "stock"] = Field(description="what drives the stock after 'until'")


class StockProcess(_ProcessBase):
    """Products in use: cohorts enter by the single input flow and leave, at the end of their
    lifetime, by the single output flow."""

    kind: Literal["stock"]
    lifetime: Lifetime
    lifetime_by_element: dict[str, Lifetime] = Field(
        default_factory=dict, description="a different lifetime for some elements (rare)"
    )
    driven_by: Literal["inflow", "stock"] | DrivenSwitch = Field(
        "inflow",
        description="inflow: the input flow comes from the system; stock: the inflow is what it "
        "takes to hold `stock`; {until: 2025, then: stock} switches",
    )
    stock: SeriesValue | None = Field(
        None,
        description="target goods mass in use (stock-driven years), in the model's mass unit "
        "('t' for 't/a'), a quantity ('1.2 Mt') or a series {2020: 1.2e6, 2050: 9e6}",
    )
    initial_stock: InitialStock | None = None
    negative_inflow: Literal["clip", "error"] = Field(
        "clip",
        description="when a target falls faster than cohorts leave: clip the inflow to 0 and "
        "retire the surplus from all cohorts in proportion, or stop with an error",
    )

    def stock_driven_years(self, periods: list[int]) -> list[bool]:
        """True for each period the stock target drives."""
        if isinstance(self.driven_by, str):
            return [self.driven_by == "stock"] * len(periods)
        after = self.driven_by.then == "stock"
        return [(year > self.driven_by.until) == after for year in periods]


Process = Annotated[
    SourceProcess | SinkProcess | TransferProcess | MarketProcess | StockProcess,
    Field(discriminator="kind"),
]


class FlowSettings(_Strict):
    """Value settings of a flow, also used by scenarios to override a flow."""

    value: FlowValue | None = Field(None, description="given (exogenous or measured) value")
    unit: str | None = Field(
        None, description="unit of this flow's numbers; the model's unit by default"
    )
    composition: dict[str, Coefficient] | None = Field(
        None, description="mass fraction of each element in the goods mass; 'rest' = 1 - sum"
    )


class Flow(FlowSettings):
    """A flow of goods from one process to another, carrying a mass of each element."""

    id: Id
    from_: Id = Field(alias="from", description="id of the process it leaves")
    to: Id = Field(description="id of the process it enters")
    name: str | None = None
    description: str | None = None
    fate: FateValue | None = Field(
        None,
        description="what happens to a flow into a sink (Battery Regulation counting): recycled, "
        "lost, intermediate, energy_recovery, backfilling, landfill, incineration or excluded; "
        "or per element, {default: recycled, Nd: lost} (a steel scrap recycled for its Fe, in "
        "which the Nd is lost)",
    )
    product: str | None = Field(
        None, description="product name of an output flow, for recovery per product"
    )
    compound: str | None = Field(
        None,
        description="chemical formula the product is sold as (NiSO4·6H2O, Li2CO3, CoSO4*7H2O): a "
        "lot passport's mass and composition follow from its molar mass; balances stay on elements",
    )
    origin: Origin | Literal["as_entered"] | None = Field(
        None,
        description="origin of a flow out of a source: primary (the default), pre_consumer (new "
        "scrap), post_consumer (old scrap) or residue (production residues); of a flow out of a "
        "stock: post_consumer by default (end-of-life products), or as_entered for a stockpile "
        "that releases what entered it",
    )
    role: Role | None = Field(
        None,
        description="what a flow out of a source is, for the recycling efficiency: feed (the "
        "waste being recycled, the default), additive (reagent, flux, reductant), fuel, "
        "energy_carrier or water; only feed is the input fraction, and only feed-derived mass "
        "counts in the outputs",
    )
    price: PriceValue | None = Field(
        None,
        description="price per mass of this flow ('30 EUR/kg'): revenue for a flow into a sink, "
        "purchase cost for a flow out of a source; {value, distribution, low, high} for Monte Carlo",
    )
    gate_fee: PriceValue | None = Field(
        None, description="fee the plant is paid per mass received on a flow out of a source"
    )
    stage: Stage | None = Field(
        None,
        description="stage of the material (ore, concentrate, refined, intermediate, product, "
        "scrap): a trade flow's stage, for the largest third-country share per stage",
    )
    trade: dict[str, dict[str, list[str]]] | None = Field(
        None,
        description="a flow between coordinates: {region: {CN: [FL, EU-other]}} joins the from "
        "process in each origin (CN) with the to process in each destination; values may be keyed "
        "by the pair {region: {CN>FL: 120}}",
    )
    origin_shares: dict[str, dict[str, Coefficient]] | None = Field(
        None,
        description="a market's balancing import split by origin: {region: {CN: 0.6, CL: 0.4}} "
        "(shares summing to 1); the flow is a trade flow from a source",
    )
    displaces: str | Displacement | None = Field(
        None,
        description="primary material this output replaces, for avoided-burden and CFF credits: "
        "'primary' (each element by its primary metal), a background item "
        "('primary_aluminium'), or {material: ..., ratio: Qs/Qp}",
    )

    @model_validator(mode="after")
    def _compound_formula(self) -> Flow:
        if self.compound is not None:
            from critflow.model.compound import parse_compound

            try:
                parse_compound(self.compound)
            except ValueError as exc:
                raise ValueError(f"flow '{self.id}': compound {exc}") from None
        return self


class Displacement(_Strict):
    """The primary material an output replaces, and how well (PEF quality ratio Qs/Qp)."""

    material: str = Field(
        description="'primary' (each element by its primary metal) or a background item"
    )
    ratio: float = Field(1.0, gt=0, le=1, description="Qs/Qp: quality of secondary vs primary")


class UncertainPrice(_Strict):
    """A price with a distribution, for Monte Carlo on prices."""

    value: str | float = Field(description="the central value ('30 EUR/kg')")
    distribution: Literal["triangular", "uniform", "normal", "lognormal"]
    low: str | float | None = Field(None, description="minimum (triangular, uniform)")
    high: str | float | None = Field(None, description="maximum (triangular, uniform)")
    sd: str | float | None = Field(
        None, description="standard deviation (normal) or geometric sd factor (lognormal, >1)"
    )


def _check_price(value: Any) -> Any:
    if isinstance(value, dict) and "value" in value:
        return UncertainPrice.model_validate(value)
    return _check_series_or_scalar(value, allow_text=True)


PriceValue = Annotated[
    Any,
    PlainValidator(_check_price),
    WithJsonSchema(
        {
            "anyOf": [
                *_SCALAR_SCHEMA["anyOf"],
                _SERIES_SCHEMA,
                {"type": "object", "required": ["value", "distribution"]},
            ]
        }
    ),
]
"""A price ('30 EUR/kg'), a time series of prices, or {value, distribution, low, high}."""


EndOfLife = Literal["cut-off", "avoided-burden", "cff"]


class ImpactSettings(_Strict):
    """How the model's inventories are turned into impacts (LCA)."""

    background: str = Field("critflow-default", description="background factor set")
    method: str = Field("ipcc-ar6-gwp100", description="impact assessment method")
    electricity: SeriesValue = Field(
        "BE-2023",
        description="grid mix: GEO-YEAR from the background ('BE-2023', 'BE-2023-market', "
        "'EU-2023'), an intensity ('120 g/kWh') or a time series of intensities (a grid path)",
    )
    allocation: Literal["mass", "economic", "cut-off", "avoided-burden", "cff"] = Field(
        "mass",
        description="how burdens are shared among products: by mass or economic value; "
        "cut-off, avoided-burden and cff choose the end-of-life rule (mass partition)",
    )
    end_of_life: EndOfLife | None = Field(
        None, description="end-of-life rule when allocation is mass or economic (cut-off default)"
    )
    cff_a: float = Field(
        0.5,
        ge=0,
        le=1,
        alias="cff_A",
        description="PEF Circular Footprint Formula allocation factor A",
    )
    factors: dict[str, SeriesValue] = Field(
        default_factory=dict,
        description="your own factors, overriding or adding to the background: "
        "{sx_extractant: '4.2 kg/kg'} in kg CO2-eq per unit of the item",
    )


class Economics(_Strict):
    """Life-cycle costing settings and item prices."""

    currency: str = Field("EUR", description="currency of the results")
    discount_rate: float = Field(0.08, gt=-1, lt=1, description="real discount rate per year")
    lifetime: SeriesValue | None = Field(
        None,
        description="project lifetime ('20 a'); the longest process lifetime by default",
    )
    prices: dict[str, PriceValue] = Field(
        default_factory=dict,
        description="price of each inventory item: {electricity: '0.12 EUR/kWh', "
        "sulfuric_acid: '0.15 EUR/kg'}",
    )


class ImpactOverride(_Strict):
    """Scenario changes to the impact settings (decarbonisation levers)."""

    electricity: SeriesValue | None = Field(
        None, description="grid mix or intensity path, as in impact.electricity"
    )
    factors: dict[str, SeriesValue] = Field(default_factory=dict)


class Measurement(_Strict):
    """A measured flow: its goods mass, an element's mass, or an element's concentration."""

    flow: Id = Field(description="id of the measured flow")
    element: str | None = Field(None, description="element measured; the goods mass when absent")
    value: float | str | None = Field(
        None, description="measured mass flow, in the model's unit or a quantity ('480 t/a')"
    )
    concentration: float | None = Field(
        None, ge=0, le=1, description="measured mass fraction of `element` in the flow"
    )
    sd: float | str = Field(
        description="standard deviation, in the unit of the value (a fraction for a "
        "concentration), or relative: '2 %'"
    )
    period: int | None = Field(None, description="year of the measurement; every period if absent")
    scenario: str | None = Field(None, description="scenario it belongs to; every one if absent")

    @model_validator(mode="after")
    def _one_quantity(self) -> Measurement:
        if (self.value is None) == (self.concentration is None):
            raise ValueError("give exactly one of value (a mass flow) and concentration")
        if self.concentration is not None and self.element is None:
            raise ValueError("a concentration is measured for an element: add element: Co")
        if isinstance(self.sd, float | int) and self.sd <= 0:
            raise ValueError(
                f"the standard deviation must be positive (got {self.sd}); a value known exactly "
                "is a flow value, not a measurement"
            )
        return self


class SupplyShare(_Strict):
    """One country's share of a material's supply at a stage (a criticality input override)."""

    material: str
    stage: Literal["extraction", "processing"]
    scope: Literal["global", "EU"] = Field("EU", description="global supply or EU sourcing")
    country: str = Field(description="ISO 3166 alpha-2 code or name")
    share: float = Field(ge=0, le=1)
    source: str = Field("model file", description="where the share comes from")


class CriticalityInputs(_Strict):
    """The model's own criticality inputs, replacing the shipped 2023 ones for the same material,
    stage and scope (e.g. a company's sourcing)."""

    shares: list[SupplyShare] = Field(default_factory=list)


class IndicatorDefinition(_Strict):
    """A model's own indicator: a ratio of flow sums, or the largest single flow of a group.

    ``{numerator: [eu_recycling], denominator: [eu_consumption], element: Li}`` or
    ``{largest_of: [imports_cl, imports_cn], denominator: [eu_consumption], element: Li}``.
    """

    description: str | None = None
    element: str | None = Field(
        None, description="element the ratio is taken for; goods mass if absent"
    )
    numerator: list[Id] | None = Field(None, description="flows summed above the line")
    largest_of: list[Id] | None = Field(None, description="flows of which the largest is taken")
    denominator: list[Id] = Field(min_length=1, description="flows summed below the line")

    @model_validator(mode="after")
    def _one_numerator(self) -> IndicatorDefinition:
        if (self.numerator is None) == (self.largest_of is None):
            raise ValueError("give exactly one of 'numerator' and 'largest_of'")
        return self


class Scenario(_Strict):
    """Changes against the base model: parameter values and given flow values."""

    description: str | None = None
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    flows: dict[str, FlowSettings] = Field(default_factory=dict)
    inventories: dict[str, Inventory] = Field(
        default_factory=dict,
        description="per process, inventory items replaced or added "
        "{smelter: {coke: '0 kg/t', hydrogen_green: '45 kg/t'}}",
    )
    impact: ImpactOverride | None = None
    prices: dict[str, PriceValue] = Field(default_factory=dict, description="item prices")


class ModelFile(_Strict):
    """A critflow model: processes, flows, elements, periods, parameters and scenarios."""

    critflow: Literal[1] = Field(description="format version")
    name: str
    description: str | None = None
    time: TimeSpan
    unit: str = Field(
        "t/a", description="default unit of flow values (a pint mass flow: t/a, kt/a)"
    )
    elements: list[str] = Field(
        min_length=1, description="elements carried by every flow; 'rest' is the remainder"
    )
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    processes: list[Process] = Field(min_length=1)
    flows: list[Flow] = Field(min_length=1)
    scope: dict[str, str] = Field(
        default_factory=dict,
        description="what the model is about, for rules: {battery_chemistry: lithium-based} or "
        "{material: cobalt, region: EU}",
    )
    indicators: dict[str, IndicatorDefinition] = Field(
        default_factory=dict,
        description="the model's own indicators (e.g. the CRMA benchmarks' eu_recycling_share)",
    )
    criticality: CriticalityInputs | None = Field(
        None, description="own criticality inputs (critflow criticality --model)"
    )
    measurements: list[Measurement] = Field(
        default_factory=list,
        description="measured flows for data reconciliation (critflow reconcile)",
    )
    impact: ImpactSettings | None = Field(
        None, description="LCA settings; processes declare inventories"
    )
    economics: Economics | None = Field(None, description="life-cycle costing settings")
    scenarios: dict[str, Scenario] = Field(default_factory=lambda: {"baseline": Scenario()})
    dimensions: dict[str, Dimension | list[str]] = Field(
        default_factory=dict,
        description="dimensions beyond element and period, e.g. {region: [FL, BE-other, EU-other, "
        "CN]} or {region: {coordinates: [...], groups: {EU: [...]}}}; processes span them with "
        "over:, values vary along them as {region: {FL: 0.9, default: 0.8}}",
    )
    _expansion: Any = PrivateAttr(None)
    """The labels of a model with dimensions (critflow.model.dimensions.Expansion): what each
    generated process and flow stands for. None for a model without dimensions."""
