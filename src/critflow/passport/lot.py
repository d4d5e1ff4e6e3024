"""The material-lot passport: what a recycler or refiner ships (a black-mass lot, a batch of
recycled cobalt sulfate) — composition with uncertainty, origin, recycled content, carbon
footprint, and the lots it was made from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from critflow.errors import CritflowError, validation_problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Mass(_Strict):
    value: float = Field(ge=0, description="mass")
    unit: Literal["kg", "t"] = "t"


class ElementContent(_Strict):
    mass_fraction: float = Field(ge=0, le=1, description="kg of the element per kg of the lot")
    sd: float | None = Field(None, ge=0, description="standard deviation of the mass fraction")


class Origin(_Strict):
    process: str = Field(description="process (or model flow) that produced the lot")
    site: str | None = None
    period: str | None = Field(None, description="production period (year, month or date range)")
    model: str | None = Field(None, description="critflow model it was computed from, with SHA-256")


class RecycledContent(_Strict):
    """Shares of the lot's mass from secondary inputs (Battery Regulation Art. 8 wording)."""

    pre_consumer: float = Field(ge=0, le=1, description="from manufacturing waste")
    post_consumer: float = Field(ge=0, le=1, description="from post-consumer waste")
    by_element: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="per element: {pre_consumer, post_consumer} shares"
    )

    @model_validator(mode="after")
    def _at_most_one(self) -> RecycledContent:
        if self.pre_consumer + self.post_consumer > 1 + 1e-9:
            raise ValueError("pre- and post-consumer shares add up to more than 1")
        return self


class CarbonFootprint(_Strict):
    status: Literal["declared", "pending"]
    value: float | None = Field(None, ge=0, description="kg CO2-eq per kg of lot")
    stages: dict[str, float] = Field(
        default_factory=dict, description="kg CO2-eq/kg per life-cycle stage"
    )
    note: str | None = None

    @model_validator(mode="after")
    def _value_when_declared(self) -> CarbonFootprint:
        if self.status == "declared" and self.value is None:
            raise ValueError("a declared carbon footprint needs its value (kg CO2-eq/kg)")
        if self.status == "pending" and self.value is not None:
            raise ValueError("a pending carbon footprint has no value yet; say status: declared")
        return self


class CompoundInfo(_Strict):
    """The compound a lot is sold as: its formula, molar mass, and the element whose modelled
    mass sets the lot's mass (the model's balances count elements, not salts)."""

    formula: str = Field(min_length=1, description="chemical formula, e.g. NiSO4·6H2O")
    molar_mass: float = Field(gt=0, description="g/mol, from IUPAC standard atomic weights")
    basis: str = Field(description="element whose mass in the model flow sets the compound mass")
    mass_fraction_of_lot: float = Field(
        gt=0, le=1, description="kg of compound per kg of lot (the rest: tracked impurities)"
    )

    @model_validator(mode="after")
    def _formula_reads(self) -> CompoundInfo:
        from critflow.model.compound import parse_compound

        if self.basis not in parse_compound(self.formula).atoms:
            raise ValueError(f"the basis element {self.basis} is not in {self.formula}")
        return self


class InputLot(_Strict):
    lot_id: str
    mass: Mass


class LotPassport(_Strict):
    """A material lot's passport."""

    kind: Literal["lot"]
    lot_id: str = Field(min_length=1)
    product: str = Field(min_length=1)
    compound: CompoundInfo | None = Field(
        None, description="the compound the lot is (mass and composition follow its formula)"
    )
    mass: Mass
    composition: dict[str, ElementContent]
    origin: Origin
    recycled_content: RecycledContent
    carbon_footprint: CarbonFootprint
    chain_of_custody: list[InputLot] = Field(default_factory=list)

    @model_validator(mode="after")
    def _composition_at_most_one(self) -> LotPassport:
        total = sum(c.mass_fraction for c in self.composition.values())
        if total > 1 + 1e-9:
            raise ValueError(f"element mass fractions add up to {total:.6g}, more than 1")
        return self


def validate_lot(document: Any, where: str = "passport") -> LotPassport:
    """Validate a material-lot passport; raise :class:`CritflowError` naming each field path."""
    try:
        return LotPassport.model_validate(document)
    except ValidationError as exc:
        raise CritflowError(validation_problems(exc.errors(), where, with_input=False)) from None


def validate_document(document: Any, where: str = "passport"):
    """Validate a battery or material-lot passport by its ``kind``."""
    from critflow.passport.battery import validate_battery

    kind = document.get("kind") if isinstance(document, dict) else None
    if kind == "battery":
        return validate_battery(document, where)
    if kind == "lot":
        return validate_lot(document, where)
    raise CritflowError(
        f"{where}: kind",
        f"'{kind}' is not a passport kind" if kind else "the document has no 'kind'",
        "Write kind: battery (a battery passport) or kind: lot (a material-lot passport).",
    )


def lot_summary(document: dict) -> str:
    """One paragraph on a lot passport, from the document itself (so console and file agree)."""
    compound = document.get("compound")
    what = document["product"] + (f" ({compound['formula']})" if compound else "")
    mass = document["mass"]
    parts = [
        f"{what}: {mass['value']:,.1f} {mass['unit']}",
        ", ".join(
            f"{element} {c['mass_fraction']:.2%}" for element, c in document["composition"].items()
        ),
    ]
    footprint = document["carbon_footprint"]
    if footprint["status"] == "declared":
        parts.append(
            f"carbon footprint {footprint['value']:.4g} kg CO2-eq per kg of lot (declared)"
        )
    else:
        parts.append(f"carbon footprint pending: {footprint.get('note') or 'no value yet'}")
    return "; ".join(parts) + "."
