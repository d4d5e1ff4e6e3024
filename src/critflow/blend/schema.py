"""The scrap-blending problem file: materials (scrap classes, primary metals, master alloys) and
target products with alloy specifications."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _uncertain(value: Any) -> dict[str, float]:
    """A composition entry: a number (exact), {mean, sd} or {min, max} (uniform), in the file's unit."""
    if isinstance(value, bool):
        raise ValueError("expected a number, {mean: …, sd: …} or {min: …, max: …}")
    if isinstance(value, int | float):
        return {"mean": float(value), "sd": 0.0}
    if isinstance(value, dict):
        keys = set(value)
        if keys <= {"mean", "sd"} and "mean" in keys:
            sd = float(value.get("sd", 0.0))
            if sd < 0:
                raise ValueError("sd must be 0 or more")
            return {"mean": float(value["mean"]), "sd": sd}
        if keys == {"min", "max"}:
            lo, hi = float(value["min"]), float(value["max"])
            if hi < lo:
                raise ValueError(f"max ({hi}) is below min ({lo})")
            return {"mean": (lo + hi) / 2, "sd": (hi - lo) / 12**0.5}  # uniform on [min, max]
    raise ValueError(f"expected a number, {{mean: …, sd: …}} or {{min: …, max: …}}, got {value!r}")


Uncertain = Annotated[
    dict[str, float],
    PlainValidator(_uncertain),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number"}, {"type": "object"}],
            "description": "number, {mean, sd} or {min, max}",
        }
    ),
]


class Material(_Strict):
    """A scrap class, a primary metal or a master alloy."""

    id: str
    kind: Literal["scrap", "primary", "master_alloy"]
    composition: dict[str, Uncertain] = Field(
        description="element content in the problem's composition unit; the remainder element takes the rest"
    )
    available: float | None = Field(None, ge=0, description="t available; unlimited when absent")
    price: float = Field(ge=0, description="price per t (in the problem's currency)")
    co2: float = Field(0.0, ge=0, description="kg CO2-eq per kg of material")
    description: str | None = None


class Product(_Strict):
    """A target product: an alloy specification and a demand."""

    id: str
    spec: str | None = Field(
        None, description="name of a shipped alloy specification (6063, A380.0, C36000 …)"
    )
    limits: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict,
        description="{element: [min, max]} in the composition unit; overrides the spec",
    )
    demand: float = Field(gt=0, description="t to produce")

    @model_validator(mode="after")
    def _has_limits(self) -> Product:
        if self.spec is None and not self.limits:
            raise ValueError("give a shipped spec (spec: 6063) or limits {Mg: [0.45, 0.9]}")
        return self


class BlendProblem(_Strict):
    """What to blend: materials, products, and what to minimise."""

    critflow_blend: Literal[1] = Field(description="format version")
    name: str
    elements: list[str] = Field(
        min_length=2, description="elements tracked; include the remainder element"
    )
    remainder: str = Field(description="element that takes the balance (Al, Zn, Cu …)")
    composition_unit: Literal["percent", "fraction"] = "percent"
    currency: str = "EUR"
    materials: list[Material] = Field(min_length=1)
    products: list[Product] = Field(min_length=1)
    objective: (
        Literal["cost", "primary", "co2"] | dict[Literal["cost", "primary", "co2"], float]
    ) = "cost"
    confidence: float | None = Field(
        None,
        gt=0.5,
        lt=1,
        description="probability with which each spec limit must hold (robust blend)",
    )
