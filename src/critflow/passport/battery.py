"""The battery passport document: a pydantic model generated from the data-point file, and its
validation per battery category (mandatory, conditional, optional, pending, not to be filled).

A document is ``{"kind": "battery", "category": "ev", "data": {field: value, …}}``; fields are the
``field`` names of ``battery_passport_datapoints.csv``. Quantities are ``{"value": 62.3, "unit":
"kWh"}`` or ``"62.3 kWh"``; percentages are numbers from 0 to 100. A *pending* data point (its
format awaits an implementing act) is left out, not filled; a missing mandatory one is an error.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
)

from critflow.errors import CritflowError, Problem, field_path, nearest, validation_message
from critflow.passport.datapoints import CATEGORIES, DataPoint, by_field, data_points
from critflow.passport.identity import DigitalLink, IdentifierError
from critflow.units import unit_factor

STATUSES = ("original", "repurposed", "re-used", "remanufactured", "waste")
"""Battery status values of Annex XIII 4(c)."""
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is a boolean, not a number")
    return value


Number = Annotated[float, BeforeValidator(_not_bool), Field(strict=True, allow_inf_nan=False)]
"""A finite JSON number: ``true`` is not 1, ``"12"`` is not 12, and NaN or Infinity are no numbers."""


def _fmt(number: float | None) -> str:
    if number is not None and number == int(number) and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:g}"


class Quantity(BaseModel):
    """A number with its unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: Annotated[Number, Field(ge=0)]
    unit: str


def _split_quantity(value: Any) -> Any:
    if isinstance(value, str):
        parts = value.strip().split(None, 1)
        if len(parts) != 2:
            raise ValueError(f"'{value}' is not a number with a unit, such as '450 kg'")
        try:
            return {"value": float(parts[0]), "unit": parts[1]}
        except ValueError:
            raise ValueError(f"'{value}' does not start with a number") from None
    return value


def _in_range(magnitude: float, point: DataPoint, shown: str) -> None:
    """Refuse a value outside the data point's plausible range (from the data file)."""
    low, high = point.plausible_min, point.plausible_max
    unit = f" {point.unit}" if point.unit and point.unit != "percent" else ""
    if not math.isfinite(magnitude) or (
        (low is not None and magnitude < low) or (high is not None and magnitude > high)
    ):
        raise ValueError(
            f"{shown} is outside the plausible range {_fmt(low)} to {_fmt(high)}{unit} of this data "
            "point (battery_passport_datapoints.csv, range_source)"
        )


def _quantity_type(point: DataPoint):
    def check(q: Quantity) -> Quantity:
        factor = unit_factor(q.unit, point.unit)
        magnitude = q.value * factor
        shown = f"{q.value:g} {q.unit}" + (
            f" (= {magnitude:.4g} {point.unit})" if q.unit != point.unit else ""
        )
        _in_range(magnitude, point, shown)
        return q

    return Annotated[Quantity, BeforeValidator(_split_quantity), AfterValidator(check)]


def _bounded(point: DataPoint, base: Any):
    def check(value: Any) -> Any:
        if isinstance(value, TemperatureRange):
            for side in (value.lower, value.upper):
                _in_range(side, point, f"{side:g} {point.unit}")
        else:
            _in_range(value, point, f"{value:g}")
        return value

    return Annotated[base, BeforeValidator(_not_bool), AfterValidator(check)]


def _identifier(value: str) -> str:
    try:
        DigitalLink.parse(value)
    except IdentifierError as exc:
        raise ValueError(str(exc)) from None
    return value


def _month(value: str) -> str:
    if not _MONTH.match(value):
        raise ValueError(f"'{value}' is not a month; write YYYY-MM, such as 2027-03")
    return value


class TemperatureRange(BaseModel):
    """Lower and upper temperature (°C)."""

    model_config = ConfigDict(extra="forbid")
    lower: Number
    upper: Number
    unit: Literal["degC"] = "degC"

    def model_post_init(self, context: Any) -> None:
        if self.lower > self.upper:
            raise ValueError(f"lower ({self.lower}) is above upper ({self.upper})")


class Document(BaseModel):
    """A document by reference."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1)
    title: str | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


Text = Annotated[str, Field(min_length=1)]


def _field_type(point: DataPoint) -> Any:
    kind = point.kind
    if kind == "identifier":
        return Annotated[str, AfterValidator(_identifier)]
    if kind == "quantity":
        return _quantity_type(point)
    if kind == "percent":
        return _bounded(point, Annotated[Number, Field(ge=0, le=100)])
    if kind == "count":
        return _bounded(point, Annotated[int, Field(ge=0)])
    if kind == "month":
        return Annotated[str, AfterValidator(_month)]
    if kind == "category":
        return Literal[CATEGORIES]  # type: ignore[valid-type]
    if kind == "status":
        return Literal[STATUSES]  # type: ignore[valid-type]
    if kind == "temperature_range":
        return _bounded(point, TemperatureRange)
    if kind == "document":
        return Text | Document
    if kind == "list":
        return Annotated[list[Any], Field(min_length=1)]
    if kind == "object":
        return dict[str, Any]
    if kind == "party":
        return Text | dict[str, Text]
    return Text


@lru_cache(maxsize=1)
def battery_data_model() -> type[BaseModel]:
    """Pydantic model of the ``data`` block, one optional field per data point (from the file)."""
    fields = {
        p.field: (
            _field_type(p) | None,
            Field(
                None,
                description=f"{p.name}. Data point {p.nr}, Annex XIII point {p.annex_xiii_point} "
                f"({p.regulation_ref}); {p.access_tier}, {p.level}, {p.lifecycle}"
                + (f"; unit {p.unit}" if p.unit else "")
                + (f"; BatteryPass {p.batterypass_alias}" if p.batterypass_alias else ""),
                json_schema_extra={
                    "x-datapoint": p.nr,
                    "x-annex-xiii-point": p.annex_xiii_point,
                    "x-access-tier": p.access_tier,
                    "x-applicability": p.applicability,
                },
            ),
        )
        for p in data_points()
    }
    return create_model("BatteryPassportData", __config__=ConfigDict(extra="forbid"), **fields)


@lru_cache(maxsize=1)
def battery_document_model() -> type[BaseModel]:
    """Pydantic model of a whole battery passport document."""
    return create_model(
        "BatteryPassport",
        __config__=ConfigDict(extra="forbid"),
        kind=(Literal["battery"], Field(description="document type")),
        category=(Literal[CATEGORIES], Field(description="battery category (Art. 77(1))")),  # type: ignore[valid-type]
        data=(battery_data_model(), ...),
    )


def battery_schema() -> dict[str, Any]:
    """JSON Schema of the battery passport document."""
    return battery_document_model().model_json_schema()


def _describe(err: dict[str, Any]) -> Problem:
    loc = tuple(err["loc"])
    path = field_path(loc)
    fields = by_field()
    point = fields.get(str(loc[1])) if len(loc) > 1 and loc[0] == "data" else None
    label = f" — {point.label}" if point else ""
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        options = list(fields) if loc[:1] == ("data",) else ["kind", "category", "data"]
        hint = nearest(key, options)
        return Problem(
            path,
            f"unknown field '{key}'",
            (hint + " " if hint else "") + "Fields are the data points of "
            "battery_passport_datapoints.csv (`critflow passport schema`).",
        )
    message = validation_message(err, with_input=False)
    expected = ""
    if point is not None:
        if point.kind == "percent":
            expected = "a percentage between 0 and 100"
        elif point.kind == "quantity":
            expected = (
                f"a quantity in {point.unit} (or a unit of the same kind), "
                f"e.g. {{value: 12.5, unit: {point.unit}}}"
            )
        elif point.kind == "identifier":
            expected = "a GS1 Digital Link: https://id.gs1.org/01/<GTIN-14>/21/<serial>"
        elif point.kind in ("category", "status"):
            expected = "one of the allowed values"
        else:
            expected = f"a value of kind '{point.kind}'"
    shown = err.get("input")
    got = f" (got {shown!r})" if not isinstance(shown, dict | list) and shown is not None else ""
    return Problem(path, f"{message}{got}{label}", f"Expected {expected}." if expected else "")


def check_applicability(category: str, data: dict[str, Any]) -> list[Problem]:
    """Missing mandatory data points, and filled pending or not-to-be-filled ones."""
    problems = []
    for point in data_points():
        status = point.applicability[category]
        present = data.get(point.field) is not None
        if status == "mandatory" and not present:
            problems.append(
                Problem(
                    f"data.{point.field}",
                    f"missing: {point.label} is mandatory for {category} batteries ({point.name})",
                    "Add it" + (f" in {point.unit}" if point.unit else "") + ".",
                )
            )
        elif status == "pending" and present:
            problems.append(
                Problem(
                    f"data.{point.field}",
                    f"{point.label} is pending: its format awaits an implementing act, so it is "
                    "not to be filled yet (guidance as of February 2027)",
                    "Leave it out; critflow reports it as pending, not missing.",
                )
            )
        elif status == "not_to_be_filled" and present:
            problems.append(
                Problem(
                    f"data.{point.field}",
                    f"{point.label} is not to be filled for {category} batteries",
                    "Remove it"
                    + (
                        f"; the dynamic data point '{_dynamic_twin(point)}' carries it"
                        if _dynamic_twin(point)
                        else ""
                    )
                    + ".",
                )
            )
    return problems


def _dynamic_twin(point: DataPoint) -> str | None:
    """The dynamic data point that carries a static one: the one keyed under the same BatteryPass
    attribute (``Performance.ratedCapacity.capacity`` → ``…ratedCapacity.ratedCapacityInUse``)."""
    attribute = point.batterypass_alias.split(".")[:2]
    twins = [
        p.field
        for p in data_points()
        if p.lifecycle == "dynamic"
        and p.batterypass_alias
        and p.batterypass_alias.split(".")[:2] == attribute
    ]
    return twins[0] if point.lifecycle == "static" and twins else None


def pending_fields(category: str) -> list[DataPoint]:
    """Data points not to be filled yet for a category (reported as pending, not missing)."""
    return [p for p in data_points() if p.applicability[category] == "pending"]


def validate_battery(document: Any, where: str = "passport") -> BaseModel:
    """Validate a battery passport document; raise :class:`CritflowError` listing every problem."""
    model = battery_document_model()
    try:
        parsed = model.model_validate(document)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        if isinstance(document, dict) and document.get("category") in CATEGORIES:
            data = document.get("data") if isinstance(document.get("data"), dict) else {}
            problems += check_applicability(document["category"], data)
        raise CritflowError(_located(problems, where)) from None
    problems = check_applicability(parsed.category, parsed.data.model_dump(exclude_none=True))
    if problems:
        raise CritflowError(_located(problems, where))
    return parsed


def _located(problems: list[Problem], where: str) -> list[Problem]:
    return [Problem(f"{where}: {p.where}", p.what, p.fix) for p in dict.fromkeys(problems)]
