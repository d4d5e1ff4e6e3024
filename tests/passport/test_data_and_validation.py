"""The data-point file, the generated model, and what a bad passport is told."""

from __future__ import annotations

import copy
import csv

import pytest

from critflow import data
from critflow.errors import CritflowError
from critflow.passport.battery import battery_data_model, battery_schema, validate_battery
from critflow.passport.datapoints import CATEGORIES, data_points
from critflow.passport.samples import sample_battery


def test_the_guidance_counts():
    points = data_points()
    assert [p.nr for p in points] == list(range(1, 72))
    tiers = [p.access_tier for p in points]
    assert (
        tiers.count("public"),
        tiers.count("legitimate_interest"),
        tiers.count("authorities"),
    ) == (44, 26, 1)
    assert sum(p.lifecycle == "dynamic" for p in points) == 21
    expected = {  # mandatory, conditional, optional, pending, not to be filled (guidance, 2026)
        "ev": (51, 8, 1, 4, 7),
        "lmt": (54, 8, 1, 4, 4),
        "industrial": (36, 26, 1, 4, 4),
    }
    for category, counts in expected.items():
        statuses = [p.applicability[category] for p in points]
        got = tuple(
            statuses.count(s)
            for s in ("mandatory", "conditional", "optional", "pending", "not_to_be_filled")
        )
        assert got == counts, category


def test_generated_model_has_one_field_per_data_point():
    fields = set(battery_data_model().model_fields)
    with data.data_path("battery_passport_datapoints.csv").open() as handle:
        rows = [r for r in csv.DictReader(line for line in handle if not line.startswith("#"))]
    assert fields == {r["field"] for r in rows}
    schema = battery_schema()
    data_schema = schema["$defs"]["BatteryPassportData"]["properties"]
    assert data_schema["capacity"]["x-datapoint"] == 11


@pytest.mark.parametrize("category", CATEGORIES)
def test_sample_passports_are_valid(category):
    validate_battery(sample_battery(category))


def _problems(document) -> str:
    with pytest.raises(CritflowError) as info:
        validate_battery(document)
    return str(info.value)


@pytest.fixture()
def ev():
    return copy.deepcopy(sample_battery("ev"))


def test_missing_and_pending_are_different_messages(ev):
    del ev["data"]["battery_mass"]
    ev["data"]["carbon_footprint_declaration"] = {"value": 61.0, "unit": "kg/kWh"}
    message = _problems(ev)
    assert (
        "data.battery_mass: missing: data point 10 (Annex XIII point 1, Annex VI A(5))" in message
    )
    assert (
        "data.carbon_footprint_declaration: data point 17 (Annex XIII point 1, Annex XIII 1(c)) is pending"
        in message
    )
    # left out, a pending data point is no problem at all
    del ev["data"]["carbon_footprint_declaration"]
    ev["data"]["battery_mass"] = {"value": 450, "unit": "kg"}
    validate_battery(ev)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "capacity",
            {"value": 75, "unit": "kWh"},
            "'kWh' is an energy, but an electric charge is required (A*h)",
        ),
        ("recycled_cobalt_share", 120, "less than or equal to 100 (got 120)"),
        (
            "unique_identifier",
            "https://id.gs1.org/01/04054123456780/21/X1",
            "has check digit 0, but its digits give 3",
        ),
        (
            "unique_identifier",
            "https://id.gs1.org/01/04054123456783/21/X 1",
            "outside the GS1 character set 82",
        ),
        ("manufacturing_date", "03/2027", "write YYYY-MM"),
        ("colour", "blue", "unknown field 'colour'"),
        ("state_of_charge", -5, "greater than or equal to 0"),
        ("battery_mass", "450 kgs", "'kgs' is not a unit"),
    ],
)
def test_bad_values_name_field_and_data_point(ev, field, value, expected):
    ev["data"][field] = value
    message = _problems(ev)
    assert expected in message
    assert f"data.{field}" in message


def test_unit_of_the_same_kind_is_accepted(ev):
    ev["data"]["battery_mass"] = "0.45 t"
    ev["data"]["capacity"] = {"value": 720000, "unit": "coulomb"}
    validate_battery(ev)


def test_not_to_be_filled_for_the_category():
    lmt = sample_battery("lmt")
    lmt["data"]["state_of_certified_energy"] = 98.0
    assert (
        "data point 61 (Annex XIII point 4, Annex XIII 4(b)) is not to be filled for lmt"
        in _problems(lmt)
    )
